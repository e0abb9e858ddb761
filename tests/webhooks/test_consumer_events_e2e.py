"""Consumer webhooks with real processes: the API and the sandbox on the live server,
a Celery worker on the real broker delivering to a consumer HTTP server, each event
verified with the Standard Webhooks library."""

import time

import pytest
import requests

from tests.e2e.conftest import Worker, post, wait_final
from tests.factories import INBOUND_SMS, SMS
from webhooks.events import webhooks_sweep
from webhooks.models import Delivery

pytestmark = pytest.mark.e2e

WEBHOOK_WORKER_SETTINGS = {
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0.2,0.2,0.2",
    "WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS": "0",
    "WEBHOOK_REPUBLISH_AFTER_SECONDS": "1",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def webhook_e2e(e2e, settings):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0.2, 0.2, 0.2]
    settings.WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS = 0
    settings.WEBHOOK_REPUBLISH_AFTER_SECONDS = 1
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    return e2e


def _register(live_server, consumer, event_types=()) -> dict:
    response = requests.post(
        f"{live_server.url}/api/webhook-endpoints",
        json={"url": consumer.url, "event_types": list(event_types)},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _wait_for(consumer, secret: str, types: set[str], timeout: float = 60, sweep: bool = False) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = consumer.events(secret)
        if types <= {e["type"] for e in events}:
            return events
        assert time.monotonic() < deadline, f"got only {[e['type'] for e in events]}"
        if sweep:
            webhooks_sweep()
        time.sleep(0.2)


def test_a_consumer_gets_every_event_signed_and_retried_through_a_real_worker(webhook_e2e, consumer):
    endpoint = _register(webhook_e2e, consumer)
    consumer.first_event_answers = [500, 500]  # the first event lands at its third try
    worker = Worker(webhook_e2e.url, **WEBHOOK_WORKER_SETTINGS).start()
    try:
        sent = post(webhook_e2e, "/api/messages/sms", SMS)
        wait_final([sent["id"]], timeout=30)
        post(webhook_e2e, "/api/webhooks/sms", INBOUND_SMS)
        post(webhook_e2e, "/api/webhooks/sms", INBOUND_SMS | {"body": " stop ", "messaging_provider_id": "stop-1"})
        wanted = {"message.queued", "message.sent", "message.delivered", "message.received", "optout.created"}
        events = _wait_for(consumer, endpoint["secret"], wanted)
    finally:
        worker.stop()

    first = consumer.received[0].headers["webhook-id"]
    assert [r.headers["webhook-id"] for r in consumer.received].count(first) == 3  # 500, 500, then 200
    # Retries reorder arrivals (the queued event landed last): the event's time orders them.
    mine = {e["id"]: e for e in events if e["type"].startswith("message.") and e["data"]["id"] == sent["id"]}
    ordered = sorted(mine.values(), key=lambda e: e["timestamp"])
    assert [e["type"] for e in ordered] == ["message.queued", "message.sent", "message.delivered"]
    assert [e["data"]["status"] for e in ordered] == ["queued", "sent", "delivered"]
    (optout,) = [e for e in events if e["type"] == "optout.created"]
    assert (optout["data"]["address"], optout["data"]["sender"], optout["data"]["keyword"]) == (
        INBOUND_SMS["from"],
        INBOUND_SMS["to"],
        "STOP",
    )
    received = [e for e in events if e["type"] == "message.received"]
    assert {e["data"]["body"] for e in received} == {INBOUND_SMS["body"], " stop "}
    delivery = Delivery.objects.get(event_id=first.removeprefix("evt_"))
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)


def test_a_worker_killed_mid_delivery_loses_no_event(webhook_e2e, consumer):
    endpoint = _register(webhook_e2e, consumer, ["message.queued"])
    consumer.delays = [1.5]  # the first post is in flight when the worker dies
    worker = Worker(webhook_e2e.url, **WEBHOOK_WORKER_SETTINGS).start()
    try:
        post(webhook_e2e, "/api/messages/sms", SMS)
        deadline = time.monotonic() + 30
        while not consumer.received:
            assert time.monotonic() < deadline, "nothing was posted"
            time.sleep(0.05)
        worker.kill()
        assert Delivery.objects.get().status == "delivering"

        worker = Worker(webhook_e2e.url, **WEBHOOK_WORKER_SETTINGS).start()
        # Beat's sweep publishes it again once its lease has run out.
        deadline = time.monotonic() + 60
        while Delivery.objects.get().status != "succeeded":
            assert time.monotonic() < deadline, "the delivery was not tried again"
            webhooks_sweep()
            time.sleep(0.2)
    finally:
        worker.stop()

    # The same event twice: the consumer sees one webhook-id and drops the copy.
    assert len(consumer.received) == 2
    assert len({r.headers["webhook-id"] for r in consumer.received}) == 1
    assert consumer.types(endpoint["secret"]) == ["message.queued"] * 2
    assert Delivery.objects.get().attempts == 2
