"""Real processes: a Celery worker started as a subprocess against the real broker and
the test database, and the live server serving both our API and the provider sandbox
over HTTP. Nothing here is mocked: messages go API -> broker -> worker -> HTTP ->
sandbox -> signed callback -> webhook."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from conversations.selectors import account_development
from messaging.models import FINAL_STATUSES, Message
from messaging.services import NewMessage, message_send, messages_sweep
from providers.sandbox.models import SandboxMessage
from tests.conftest import QUEUES, purge_queues

BASE_DIR = Path(settings.BASE_DIR)
WORKER_SETTINGS = {
    "PROVIDER_TIMEOUT_SECONDS": "2",
    "MESSAGING_RETRY_BASE_SECONDS": "0.1",
    "MESSAGING_RETRY_MAX_SECONDS": "0.5",
    "MESSAGING_LEASE_SECONDS": "8",
    "MESSAGING_REQUEUE_AFTER_SECONDS": "3",
    "BROKER_VISIBILITY_TIMEOUT": "15",
    "BROKER_RESTORE_INTERVAL": "2",
    # The live server opens a database connection per request it serves: keep the
    # workers' calls to its sandbox within PostgreSQL's connection limit.
    "PROVIDER_MAX_IN_FLIGHT": "4",
    # Bursts from one number, at 1 message a second, would only slow these tests down;
    # tests/e2e/test_pacing.py measures pacing with it on.
    "PACING_ENABLED": "false",
}


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, public_url: str, concurrency: int = 2, queues: str = QUEUES, **env):
        self.log = Path(settings.VAR_DIR) / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.env = (
            os.environ
            | WORKER_SETTINGS
            | {
                "DATABASE_URL": database_url(),
                "VAR_DIR": str(settings.VAR_DIR),
                "PUBLIC_BASE_URL": public_url,
                "CELERY_SKIP_CHECKS": "1",
            }
            | env
        )
        self.concurrency, self.queues = concurrency, queues
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"e2e-{uuid.uuid4().hex[:6]}@%h",
            "-l",
            "INFO",
        ]
        with self.log.open("ab") as log:
            # Its own process group, so a kill reaches the pool's children too.
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def terminate(self, timeout: float = 60) -> int:
        """As `docker stop` or systemd do: SIGTERM to the main process only (a warm
        shutdown); returns its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def records(self) -> list[dict]:
        """Its log lines, when it logs JSON (LOG_FORMAT=json)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def kill(self) -> None:
        """As if the machine died: SIGKILL to the worker and every pool process."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def e2e(live_server, transactional_db, settings):
    """Settings the live server (the API and the sandbox) shares with the worker."""
    settings.PUBLIC_BASE_URL = live_server.url
    for name, value in WORKER_SETTINGS.items():
        if value in ("true", "false"):
            setattr(settings, name, value == "true")
        else:
            setattr(settings, name, float(value) if "." in value else int(value))
    settings.PROVIDERS = {
        name: config | {"base_url": f"{live_server.url}/sandbox/{name}"} for name, config in settings.PROVIDERS.items()
    }
    purge_queues()
    return live_server


@pytest.fixture
def worker(e2e):
    worker = Worker(e2e.url).start()
    yield worker
    worker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(live_server, path: str, payload: dict) -> dict:
    response = requests.post(f"{live_server.url}{path}", json=payload, timeout=10)
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def wait_final(ids: list[int], timeout: float = 60, sweep: bool = False, settled=FINAL_STATUSES) -> dict[int, Message]:
    """Wait until every message reaches a final status, or one of `settled` (running the
    sweep, as beat would, when asked). Fails with the stragglers' states on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        messages = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
        waiting = [m for m in messages.values() if m.status not in settled]
        if not waiting:
            return messages
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(waiting)} not final: {[(m.pk, m.status, m.attempts) for m in waiting[:10]]}")
        if sweep:
            messages_sweep()
        time.sleep(0.5)


@contextmanager
def broker_unreachable():
    """Point this process's Celery at a broker that refuses connections, for real.
    (Celery reads CELERY_BROKER_WRITE_URL from the environment before its settings.)"""
    conf = celery_app.conf
    saved_options = dict(conf.broker_transport_options or {})
    saved_env = os.environ.get("CELERY_BROKER_WRITE_URL")
    if conf.broker_url.startswith("filesystem"):
        conf.broker_transport_options = saved_options | {"data_folder_out": "/nonexistent/broker"}
    else:
        os.environ["CELERY_BROKER_WRITE_URL"] = conf.broker_url.split("://")[0] + "://127.0.0.1:9//"
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    try:
        yield
    finally:
        conf.broker_transport_options = saved_options
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_WRITE_URL", None)
        else:
            os.environ["CELERY_BROKER_WRITE_URL"] = saved_env
        celery_app._pool, celery_app.amqp._producer_pool = None, None


def send_batch(count: int, tag: str) -> list[int]:
    """`count` SMS sent through the service layer (no HTTP), tagged in their bodies."""
    account = account_development()
    return [
        message_send(
            account=account,
            new=NewMessage(
                type="sms", from_address="+12016661234", to_address=f"+1804555{i % 10000:04d}", body=f"{tag} {i}"
            ),
        ).pk
        for i in range(count)
    ]


def assert_each_reached_the_provider_once(ids: list[int]) -> None:
    sends = Counter(
        SandboxMessage.objects.filter(reference__in=[str(i) for i in ids]).values_list("reference", flat=True)
    )
    assert len(sends) == len(ids), f"{len(ids) - len(sends)} never reached the provider"
    assert {ref: n for ref, n in sends.items() if n > 1} == {}, "sent twice"
