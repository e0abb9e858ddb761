import time

import pytest

from messaging.models import Message
from providers.breaker import BreakerState, CircuitBreaker
from tests.factories import SMS

COOLDOWN = 3.0


@pytest.fixture
def fast_breaker(settings):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    # Long enough that draining a few messages on a loaded machine stays inside it.
    settings.BREAKER_COOLDOWN_SECONDS = COOLDOWN
    return CircuitBreaker("twilio")


def test_opens_after_repeated_failures(fast_breaker):
    for _ in range(2):
        fast_breaker.record_failure()
    assert fast_breaker.state() is BreakerState.CLOSED

    fast_breaker.record_failure()

    assert fast_breaker.state() is BreakerState.OPEN
    assert not fast_breaker.allow()


def test_half_open_lets_one_trial_through_then_closes_on_success(fast_breaker):
    for _ in range(3):
        fast_breaker.record_failure()
    time.sleep(COOLDOWN + 0.05)

    assert fast_breaker.state() is BreakerState.HALF_OPEN
    assert fast_breaker.allow()
    assert not fast_breaker.allow()  # one trial at a time
    fast_breaker.record_success()

    assert fast_breaker.state() is BreakerState.CLOSED and fast_breaker.allow()


def test_failed_trial_opens_it_again(fast_breaker):
    for _ in range(3):
        fast_breaker.record_failure()
    time.sleep(COOLDOWN + 0.05)
    assert fast_breaker.allow()

    fast_breaker.record_failure()

    assert fast_breaker.state() is BreakerState.OPEN


def test_success_resets_the_failure_count(fast_breaker):
    fast_breaker.record_failure()
    fast_breaker.record_failure()
    fast_breaker.record_success()
    fast_breaker.record_failure()

    assert fast_breaker.state() is BreakerState.CLOSED


def _down(sandbox, label, down=True):
    sandbox.client.post("/sandbox/control", {"label": label, "down": down}, content_type="application/json")


def test_dispatch_fails_over_while_the_primary_is_open_and_returns_after(api, sandbox, fast_breaker):
    _down(sandbox, "twilio")
    ids = [api.post("/api/messages/sms", SMS | {"body": f"m{i}"}, format="json").json()["id"] for i in range(4)]

    for message_id in ids:
        sandbox.drain(message_id)

    first, *rest = Message.objects.filter(pk__in=ids).order_by("id")
    # The first got a 503 (ambiguous): it waits for the primary to answer a lookup
    # rather than risk a second copy through the backup...
    assert first.status == "queued" and first.needs_reconcile and first.provider == "twilio"
    # ...while the breaker, open after 3 failures, sends the rest to the backup.
    assert [(m.status, m.provider) for m in rest] == [("delivered", "twilio-backup")] * 3
    assert fast_breaker.state() is BreakerState.OPEN

    _down(sandbox, "twilio", down=False)
    time.sleep(COOLDOWN + 0.05)
    first = sandbox.drain(first.pk)

    assert first.status == "delivered"
    assert sandbox.client.get(f"/sandbox/messages?reference={first.pk}").json()["count"] == 1
    assert fast_breaker.state() is BreakerState.CLOSED
    after = api.post("/api/messages/sms", SMS | {"body": "after"}, format="json").json()["id"]
    assert sandbox.drain(after).provider == "twilio"


def test_every_attempt_records_the_provider_it_used(api, sandbox, fast_breaker):
    fast_breaker.record_failure()
    fast_breaker.record_failure()
    fast_breaker.record_failure()
    message_id = api.post("/api/messages/sms", SMS, format="json").json()["id"]

    message = sandbox.drain(message_id)

    assert list(message.delivery_attempts.values_list("provider", "outcome")) == [("twilio-backup", "success")]
    assert message.provider == "twilio-backup"
