"""Graceful shutdown with real processes: SIGTERM, as `docker stop`, systemd or honcho
send it, lets the Celery worker finish the tasks it is running and hand back the ones it
had only reserved, and lets gunicorn finish the requests it is serving."""

import base64
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.conf import settings

from messaging.models import Message
from tests.e2e.conftest import (
    Worker,
    assert_each_reached_the_provider_once,
    database_url,
    free_port,
    send_batch,
    wait_final,
)

pytestmark = pytest.mark.e2e


def test_sigterm_mid_batch_loses_nothing(e2e, settings):
    settings.SANDBOX_LATENCY_MS = 150  # tries take as long as a real provider's answer
    ids = send_batch(80, "drain")
    # Small dispatch batches, so the worker holds some tasks it has not started yet.
    worker = Worker(e2e.url, concurrency=4, MESSAGING_DISPATCH_BATCH_SIZE="5").start()
    try:
        deadline = time.monotonic() + 60
        while Message.objects.filter(pk__in=ids, status__in=["sent", "delivered"]).count() < 12:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)

        started = time.monotonic()
        code = worker.terminate(timeout=60)
        stopped_in = time.monotonic() - started
        after_stop = Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True))

        assert code == 0, worker.log.read_text()[-3000:]
        assert after_stop["sending"] == 0, "a try was abandoned mid-flight"
        assert after_stop["queued"] > 0, "the batch finished before the SIGTERM; nothing was tested"

        # A new worker gets every task back from the broker: no sweep runs here, so a
        # task the first worker had taken and dropped would leave its message queued.
        worker = Worker(e2e.url, concurrency=4, MESSAGING_DISPATCH_BATCH_SIZE="5").start()
        messages = wait_final(ids, timeout=120, sweep=False)
    finally:
        worker.stop()

    assert stopped_in < 30
    assert Counter(m.status for m in messages.values()) == {"delivered": 80}
    assert_each_reached_the_provider_once(ids)


def test_gunicorn_finishes_in_flight_requests_on_sigterm(transactional_db):
    port = free_port()
    env = os.environ | {
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(settings.VAR_DIR),
        "SANDBOX_LATENCY_MS": "1500",  # each create call takes 1.5 s
        "RATE_LIMIT_ENABLED": "false",
    }
    log = Path(settings.VAR_DIR) / f"gunicorn-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/health", server, log)
        auth = base64.b64encode(f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode()).decode()
        url = f"{base}/sandbox/twilio/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"
        answers = []

        def slow_request():
            form = {"To": "+18045551234", "From": "+12016661234", "Body": "in flight"}
            answers.append(requests.post(url, data=form, headers={"Authorization": f"Basic {auth}"}, timeout=20))

        client = threading.Thread(target=slow_request)
        client.start()
        time.sleep(0.5)  # the request is now inside the worker, asleep in the sandbox
        server.terminate()
        client.join(20)
        code = server.wait(20)
    finally:
        if server.poll() is None:
            server.kill()

    assert [a.status_code for a in answers] == [201], log.read_text()[-3000:]
    assert code == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/health", timeout=2)


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
