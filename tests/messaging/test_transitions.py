"""The dispatch decision, one case per outcome, without a database."""

from datetime import UTC, datetime, timedelta

import pytest

from messaging.services.transitions import Claim, Policy, decide, retry_delay
from providers.base import OutboundMessage, Outcome, SendResult

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POLICY = Policy(max_attempts=3, retry_base_seconds=2, retry_max_seconds=300)


def _claim(attempt: int = 1, reconcile_pending: bool = False) -> Claim:
    outbound = OutboundMessage(
        reference="7", type="sms", from_address="+12015550100", to_address="+18045551234", body="hi"
    )
    return Claim(
        message_id=7,
        type="sms",
        direction="outbound",
        attempt=attempt,
        provider="twilio",
        claimed_at=NOW,
        reconcile_pending=reconcile_pending,
        outbound=outbound,
        created_at=NOW,
    )


def test_an_accepted_try_is_sent_with_the_provider_id():
    transition = decide(_claim(), SendResult(Outcome.SUCCESS, provider_message_id="SM1"), now=NOW, policy=POLICY)

    assert transition.outcome == "sent"
    assert transition.updates | {"updated_at": None} == {
        "status": "sent",
        "provider_message_id": "SM1",
        "sent_at": NOW,
        "needs_reconcile": False,
        "error_code": "",
        "last_error": "",
        "lease_expires_at": None,
        "updated_at": None,
    }
    assert transition.event == ("status", "sent", {"provider_message_id": "SM1", "reconciled": False})
    assert transition.attempt_outcome == "success"


def test_a_try_found_by_reconciling_is_sent_and_recorded_as_reconciled():
    result = SendResult(Outcome.SUCCESS, provider_message_id="SM1")
    transition = decide(_claim(reconcile_pending=True), result, now=NOW, policy=POLICY, reconciled=True)

    assert (transition.outcome, transition.attempt_outcome) == ("sent", "reconciled")
    assert transition.event[2]["reconciled"] is True


def test_a_refused_try_is_a_dead_letter_at_once():
    result = SendResult(Outcome.PERMANENT, error="invalid number", error_code="21211")
    transition = decide(_claim(), result, now=NOW, policy=POLICY)

    assert transition.outcome == "failed" and transition.failure_reason == "permanent"
    assert transition.updates["status"] == "failed" and transition.updates["failed_at"] == NOW
    assert (transition.updates["error_code"], transition.updates["needs_reconcile"]) == ("21211", False)


@pytest.mark.parametrize(("outcome", "unresolved"), [(Outcome.TRANSIENT, False), (Outcome.AMBIGUOUS, True)])
def test_a_failed_try_within_the_budget_is_retried_unpublished(outcome, unresolved):
    transition = decide(_claim(attempt=1), SendResult(outcome, error="503"), now=NOW, policy=POLICY, jitter=0.0)

    assert transition.outcome == "retry" and transition.delay == 1.0  # half of 2 s, no jitter
    assert transition.updates["status"] == "queued"
    assert transition.updates["next_attempt_at"] == NOW + timedelta(seconds=1)
    assert transition.updates["enqueued_at"] is None  # the relay publishes it when due
    assert transition.updates["needs_reconcile"] is unresolved
    assert transition.event[:2] == ("retry", "queued")


def test_a_retry_honours_retry_after():
    result = SendResult(Outcome.TRANSIENT, retry_after=7.5)
    transition = decide(_claim(), result, now=NOW, policy=POLICY)

    assert transition.delay == 7.5 and transition.event[2]["delay_seconds"] == 7.5


def test_a_lookup_that_could_not_answer_keeps_the_message_unresolved():
    result = SendResult(Outcome.TRANSIENT, error="lookup failed")
    transition = decide(_claim(reconcile_pending=True), result, now=NOW, policy=POLICY, reconcile_pending=True)

    assert transition.outcome == "retry" and transition.updates["needs_reconcile"] is True


@pytest.mark.parametrize(("outcome", "unresolved"), [(Outcome.TRANSIENT, False), (Outcome.AMBIGUOUS, True)])
def test_the_last_try_of_the_budget_is_a_dead_letter(outcome, unresolved):
    transition = decide(_claim(attempt=3), SendResult(outcome, error="boom"), now=NOW, policy=POLICY)

    assert transition.outcome == "failed" and transition.failure_reason == "exhausted"
    assert transition.updates["needs_reconcile"] is unresolved  # a replay looks before it resends


def test_backoff_doubles_with_equal_jitter_up_to_the_cap():
    delays = [retry_delay(attempt=n, retry_after=None, base=2, cap=30, jitter=0.0) for n in range(1, 7)]
    assert delays == [1, 2, 4, 8, 15, 15]
    assert retry_delay(attempt=3, retry_after=None, base=2, cap=30, jitter=0.999) == pytest.approx(8, abs=0.01)
    assert 4 <= retry_delay(attempt=3, retry_after=None, base=2, cap=30) < 8
