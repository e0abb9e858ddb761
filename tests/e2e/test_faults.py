"""Faults with real processes: a worker killed mid-batch, the broker unreachable while
the API takes sends, the database dropping the worker's connections. Each time no
message is lost: every one reaches the provider exactly once and ends delivered."""

import time
from collections import Counter

import pytest
import requests
from django.db import connection

from messaging.models import FINAL_STATUSES, Message
from messaging.services import messages_sweep, outbox_relay
from tests.e2e.conftest import (
    Worker,
    assert_each_reached_the_provider_once,
    broker_unreachable,
    post,
    send_batch,
    wait_final,
)
from tests.factories import SMS

pytestmark = pytest.mark.e2e


def _wait_receipts(ids: list[int], quiet: float, timeout: float) -> dict[int, Message]:
    """Wait until every message is delivered, or until no receipt has arrived for
    `quiet` seconds (the ones still missing are gone with the killed worker)."""
    deadline, last, changed = time.monotonic() + timeout, None, time.monotonic()
    while True:
        messages = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
        statuses = Counter(m.status for m in messages.values())
        if statuses != last:
            last, changed = statuses, time.monotonic()
        now = time.monotonic()
        if statuses["delivered"] == len(ids) or now - changed > quiet or now > deadline:
            return messages
        time.sleep(0.25)


def test_killed_worker_loses_nothing_and_sends_nothing_twice(e2e):
    ids = send_batch(300, "batch")
    worker = Worker(e2e.url, concurrency=4).start()
    try:
        deadline = time.monotonic() + 60
        while Message.objects.filter(pk__in=ids, status__in=["sent", "delivered"]).count() < 60:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)
        worker.kill()  # SIGKILL, mid-batch: tasks in flight, claims held, receipts pending
        in_flight = Message.objects.filter(pk__in=ids, status__in=["queued", "sending"]).count()
        assert in_flight > 0, "the batch finished before the kill; nothing was tested"

        worker = Worker(e2e.url, concurrency=4).start()
        # The test runs the sweep, as beat would. `sent` counts as settled: a delivery
        # receipt the sandbox had handed to the killed worker is gone with it on the
        # file-system broker, and the sandbox, like Twilio, does not post receipts twice.
        wait_final(ids, timeout=120, sweep=True, settled={"sent", *FINAL_STATUSES})
        # Every send is out; the receipts of the last ones may still be on their way.
        messages = _wait_receipts(ids, quiet=5, timeout=60)
    finally:
        worker.stop()

    statuses = Counter(m.status for m in messages.values())
    assert set(statuses) <= {"sent", "delivered"}, statuses
    assert statuses["delivered"] >= 290, statuses
    assert_each_reached_the_provider_once(ids)


def test_sends_accepted_while_the_broker_is_unreachable_are_all_delivered_once(e2e):
    with broker_unreachable():
        responses = [
            requests.post(f"{e2e.url}/api/messages/sms", json=SMS | {"body": f"outage {i}"}, timeout=30)
            for i in range(20)
        ]
        assert [r.status_code for r in responses] == [202] * 20
        ids = [r.json()["id"] for r in responses]
        assert outbox_relay() == 0  # the relay cannot publish them...
        unpublished = Message.objects.filter(pk__in=ids, status="queued", enqueued_at__isnull=True)
        assert unpublished.count() == 20  # ...and keeps them for later

    worker = Worker(e2e.url).start()  # the broker is back: the worker's relay publishes them
    try:
        messages = wait_final(ids, timeout=60)
    finally:
        worker.stop()

    assert {m.status for m in messages.values()} == {"delivered"}
    assert_each_reached_the_provider_once(ids)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL): SQLite has no server connection to drop"
)
def test_worker_recovers_when_the_database_drops_its_connections(worker, e2e):
    first = post(e2e, "/api/messages/sms", SMS)["id"]
    wait_final([first], timeout=30)  # the worker now holds persistent connections

    def drop_every_other_connection():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    assert drop_every_other_connection() > 0
    ids = send_batch(30, "after-drop")
    time.sleep(0.5)
    drop_every_other_connection()  # again, while that batch is in flight
    messages_sweep()

    messages = wait_final(ids, timeout=90, sweep=True)

    assert {m.status for m in messages.values()} == {"delivered"}
    assert_each_reached_the_provider_once(ids)
