"""Our own metrics, counted where things happen and read from /metrics (multiprocess
mode: the same files a worker on this machine writes into)."""

import pytest
from django.core.cache import cache

from providers.breaker import CircuitBreaker
from tests.factories import SMS
from tests.metrics_helpers import samples, value


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def _send(api, payload) -> int:
    response = api.post("/api/messages/sms", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_a_delivered_send_moves_the_message_provider_and_attempt_counters(api, sandbox, client):
    before = _scrape(client)

    sandbox.drain(_send(api, SMS))
    after = _scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    outbound = {"direction": "outbound", "channel": "sms"}
    assert [moved("messages_total", status=s, **outbound) for s in ("queued", "sending", "sent", "delivered")] == [
        1,
        1,
        1,
        1,
    ]
    assert moved("provider_requests_total", provider="twilio", operation="send", outcome="success") == 1
    assert moved("provider_request_duration_seconds_count", provider="twilio", operation="send") == 1
    assert moved("delivery_attempts_total", channel="sms", provider="twilio", outcome="success") == 1
    assert moved("webhook_events_total", provider="twilio", kind="status", outcome="processed") >= 1


def test_retries_and_dead_letters_are_counted(api, sandbox, client, settings):
    settings.MESSAGING_MAX_ATTEMPTS = 3
    settings.BREAKER_FAILURE_THRESHOLD = 100
    before = _scrape(client)

    message = sandbox.drain(_send(api, SMS | {"to": "+15005550002"}))  # 500 on every try
    after = _scrape(client)

    assert message.status == "failed"
    assert (
        value(after, "message_retries_total", channel="sms") - value(before, "message_retries_total", channel="sms")
        == 2
    )
    assert (
        value(after, "dead_letters_total", channel="sms", reason="exhausted")
        - value(before, "dead_letters_total", channel="sms", reason="exhausted")
        == 1
    )
    assert value(after, "messages_outstanding", channel="sms", status="failed") >= 1


def test_bad_webhook_signatures_are_counted(api, client, settings):
    settings.WEBHOOK_SECRETS = ["s3cret"]
    before = _scrape(client)

    response = api.post(
        "/api/webhooks/sms",
        {"from": "+18045551234", "to": "+12016661234", "type": "sms", "body": "x", "messaging_provider_id": "m1"},
        format="json",
        HTTP_X_SIGNATURE="sha256=00",
        HTTP_X_SIGNATURE_TIMESTAMP="1",
    )
    after = _scrape(client)

    assert response.status_code == 401
    labels = {"webhook": "sms", "reason": "stale"}
    assert (
        value(after, "webhook_signature_failures_total", **labels)
        - value(before, "webhook_signature_failures_total", **labels)
        == 1
    )


@pytest.mark.django_db
def test_breaker_state_and_queue_depth_are_read_when_scraped(client, settings):
    settings.BREAKER_FAILURE_THRESHOLD = 1
    cache.clear()
    before = _scrape(client)
    assert value(before, "circuit_breaker_state", provider="twilio", state="closed") == 1

    CircuitBreaker("twilio").record_failure()
    after = _scrape(client)

    assert value(after, "circuit_breaker_state", provider="twilio", state="open") == 1
    assert (
        value(after, "circuit_breaker_opened_total", provider="twilio")
        - value(before, "circuit_breaker_opened_total", provider="twilio")
        == 1
    )
    queues = {dict(labels)["queue"] for name, labels in samples(after) if name == "queue_depth"}
    assert queues >= {"sms", "mms", "email", "maintenance"}
    assert value(after, "metrics_source_up", source="broker") == 1
    assert value(after, "metrics_source_up", source="database") == 1


@pytest.mark.django_db
def test_an_unreachable_source_is_reported_not_fatal(client, monkeypatch):
    def broken():
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("config.metrics._queue_depth", broken)

    text = _scrape(client)

    assert value(text, "metrics_source_up", source="broker") == 0
    assert value(text, "metrics_source_up", source="database") == 1
    assert "django_http_requests_total_by_method_total" in text
