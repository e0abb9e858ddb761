"""Each sandbox recipient ends in the right status, after the right number of tries,
having reached the provider the right number of times (the in-process sandbox)."""

import pytest

from messaging.models import DeliveryAttempt, Message
from tests.factories import EMAIL, SMS


def _send(api, payload, path="/api/messages/sms"):
    response = api.post(path, payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.mark.parametrize(
    ("to", "status", "attempts", "provider_sends"),
    [
        ("+18045551234", "delivered", 1, 1),
        ("+15005550001", "failed", 1, 0),
        ("+15005550002", "failed", 6, 0),
        ("+15005550003", "delivered", 3, 1),
        ("+15005550004", "delivered", 2, 1),
        ("+15005550005", "undelivered", 1, 1),
    ],
)
def test_sms_recipient_behaviours(api, sandbox, to, status, attempts, provider_sends):
    message = sandbox.drain(_send(api, SMS | {"to": to}))

    assert message.status == status
    assert message.attempts == attempts
    assert sandbox.sent_to(to) == provider_sends
    assert DeliveryAttempt.objects.filter(message=message).count() == attempts


@pytest.mark.parametrize(
    ("to", "status", "attempts", "provider_sends"),
    [
        ("contact@gmail.com", "delivered", 1, 1),
        ("permanent@fail.test", "failed", 1, 0),
        ("error500@fail.test", "failed", 6, 0),
        ("ratelimit@fail.test", "delivered", 3, 1),
        ("timeout@fail.test", "delivered", 2, 1),
        ("bounce@fail.test", "undelivered", 1, 1),
    ],
)
def test_email_recipient_behaviours(api, sandbox, to, status, attempts, provider_sends):
    message = sandbox.drain(_send(api, EMAIL | {"to": to}, "/api/messages/email"))

    assert message.status == status
    assert message.attempts == attempts
    assert sandbox.sent_to(to) == provider_sends


def test_permanent_failure_is_a_dead_letter_with_the_providers_reason(api, sandbox):
    message = sandbox.drain(_send(api, SMS | {"to": "+15005550001"}))

    assert message.failure_reason == "permanent"
    assert message.error_code == "21211"
    assert "not a valid phone number" in message.last_error
    assert message.failed_at is not None


def test_exhausted_retries_are_a_dead_letter(api, sandbox):
    message = sandbox.drain(_send(api, SMS | {"to": "+15005550002"}))

    assert message.failure_reason == "exhausted"
    outcomes = list(DeliveryAttempt.objects.filter(message=message).values_list("outcome", flat=True))
    assert outcomes == ["ambiguous"] * 6
    assert message.needs_reconcile  # a 5xx may have gone out: replay looks it up first


def test_timeout_is_reconciled_not_resent(api, sandbox):
    message = sandbox.drain(_send(api, SMS | {"to": "+15005550004"}))

    outcomes = list(DeliveryAttempt.objects.filter(message=message).order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["ambiguous", "reconciled"]
    assert message.events.filter(kind="reconcile").count() == 1
    assert message.provider_message_id.startswith("SM")


def test_rate_limit_honours_retry_after(api, sandbox):
    message_id = _send(api, SMS | {"to": "+15005550003"})
    Message.objects.filter(pk=message_id).update(next_attempt_at=None)

    from messaging.services import message_dispatch

    assert message_dispatch(message_id=message_id) == "retry"
    message = Message.objects.get(pk=message_id)
    wait = (message.next_attempt_at - message.updated_at).total_seconds()
    assert 0.9 <= wait <= 1.1  # Retry-After: 1
    assert message.events.filter(kind="retry").last().detail["outcome"] == "transient"


def test_delivered_message_records_times_and_the_provider_id(api, sandbox):
    message = sandbox.drain(_send(api, SMS))

    assert message.provider == "twilio"
    assert message.sent_at and message.delivered_at and message.sent_at <= message.delivered_at
    statuses = list(message.events.exclude(status="").order_by("id").values_list("status", flat=True))
    assert statuses == ["queued", "sending", "sent", "delivered"]
