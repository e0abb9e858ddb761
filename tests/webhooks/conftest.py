"""A consumer of our event webhooks: a small HTTP server that records every request and
answers as it is told (e.g. 500 twice, then 200)."""

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from config.celery import app as celery_app
from tests.e2e.conftest import e2e  # noqa: F401 (the live server and settings a worker shares)
from webhooks.events import subscriptions


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict
    body: bytes

    def verified(self, secret: str) -> dict:
        """The event, verified with the Standard Webhooks library (raises if it fails)."""
        return Webhook(secret).verify(self.body, self.headers)


class Consumer:
    def __init__(self):
        self.received: list[Received] = []
        self.answers: list[int] = []  #: status codes to answer with, in order; then 200
        self.first_event_answers: list[int] = []  #: the same, for the first event's tries only
        self.delays: list[float] = []  #: seconds to wait before each answer, in order; then none
        self.lock = threading.Lock()
        consumer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with consumer.lock:
                    consumer.received.append(Received(self.path, dict(self.headers.items()), body))
                    first = consumer.received[0].headers.get("webhook-id")
                    if consumer.first_event_answers and self.headers.get("webhook-id") == first:
                        status = consumer.first_event_answers.pop(0)
                    else:
                        status = consumer.answers.pop(0) if consumer.answers else 200
                    delay = consumer.delays.pop(0) if consumer.delays else 0
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"not now")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def events(self, secret: str) -> list[dict]:
        """Every request's event, each verified with `secret`."""
        with self.lock:
            return [r.verified(secret) for r in self.received]

    def types(self, secret: str) -> list[str]:
        return [e["type"] for e in self.events(secret)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def consumer():
    consumer = Consumer()
    yield consumer
    consumer.close()


@pytest.fixture
def eager_webhooks(settings, django_capture_on_commit_callbacks):
    """Fan-out and deliveries run in this process as soon as what recorded them commits
    (the test's transaction never does: its on-commit callbacks are run by hand)."""
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0.01, 0.01, 0.01]
    settings.WEBHOOK_FAN_OUT_LINGER_SECONDS = 0  # eager tasks ignore countdowns: fan out each commit
    settings.WEBHOOK_TIMEOUT_SECONDS = 10  # generous: a loaded machine must not turn a slow answer into a retry
    saved = {name: celery_app.conf[name] for name in ("task_always_eager", "task_eager_propagates")}
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=True)
    subscriptions.forget()

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    yield run
    celery_app.conf.update(saved)
