import io
import json
import logging
import os
import re
import time
from contextlib import suppress
from pathlib import Path

import pytest
import responses
from django.core.cache import cache
from rest_framework.test import APIClient

from config.celery import app as celery_app
from config.logs import formatter_for
from conversations.selectors import recent_reads_forget
from messaging.services.pacing import sender_rates_forget
from providers import registry
from tests.sandbox_harness import InProcessSandbox
from webhooks.events import subscriptions

QUEUES = "sms,mms,email,voice,maintenance,sandbox,webhooks"


def pytest_sessionstart(session):
    """Forget the Prometheus files of test processes that ended a while ago (workers,
    servers of earlier runs), so scrapes do not slow down run after run. Production never
    does this: there a dead process's counts stay in the sums until the next start."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if not folder.name or not folder.is_dir():
        return
    for path in folder.glob("*.db"):
        pid = re.search(r"_(\d+)\.db$", path.name)
        if pid and not _alive(int(pid[1])) and time.time() - path.stat().st_mtime > 600:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits, breakers, sandbox counters and remembered keys and senders start
    from nothing in every test."""
    cache.clear()
    subscriptions.forget()
    registry.reset()
    recent_reads_forget()
    sender_rates_forget()
    yield
    registry.reset()
    recent_reads_forget()
    sender_rates_forget()


@pytest.fixture(autouse=True)
def _unpaced(settings):
    """Pacing is on by default (a long code sends 1 message a second), and most tests
    send bursts from one number to test something else: tests/messaging/test_pacing.py
    turns it on."""
    settings.PACING_ENABLED = False


@pytest.fixture
def api(db) -> APIClient:
    return APIClient()


@pytest.fixture
def sandbox(db, settings):
    """The provider sandbox, in-process (see sandbox_harness.py)."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.MESSAGING_RETRY_BASE_SECONDS = 0.01
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield InProcessSandbox(mock)


@pytest.fixture
def json_logs():
    """A function returning every line logged in this process since the test began, as
    the production handler writes them (JSON, masked), parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def purge_queues() -> None:
    """Tasks left by earlier tests would point at rows that no longer exist."""
    if celery_app.conf.broker_url.startswith("filesystem"):
        folder = Path(celery_app.conf.broker_transport_options["data_folder_in"])
        for task in folder.glob("*.msg"):
            task.unlink(missing_ok=True)
        return
    for queue in QUEUES.split(","):
        # A queue that was never declared has nothing to purge (amqp raises NOT_FOUND).
        with celery_app.connection_for_write() as conn, suppress(Exception):
            conn.default_channel.queue_purge(queue)


@pytest.fixture
def empty_queues():
    """The real broker's queues, emptied before and after the test."""
    purge_queues()
    yield
    purge_queues()


@pytest.fixture
def published(monkeypatch, empty_queues):
    """(message id, queue) of every dispatch the relay publishes (in batches)."""
    calls = []
    monkeypatch.setattr(
        "messaging.services.outbox.celery_app.send_task",
        lambda name, args, queue: calls.extend((pk, queue) for pk in args[0]),
    )
    return calls
