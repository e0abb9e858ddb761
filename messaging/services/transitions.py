"""What a try's result does to a message, decided without I/O.

`decide` takes a claim and what the provider said and returns the `Transition` to
apply: `sent`, `retry` (with its delay) or `failed` (a dead letter), the fields to write
and the audit event. dispatch.py applies transitions in bulk; nothing else decides.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from messaging.models import DeliveryAttempt, FailureReason, Message, MessageEvent
from providers.base import OutboundMessage, Outcome, SendResult


@dataclass
class Claim:
    """One message a worker holds for one try."""

    message_id: int
    type: str
    direction: str
    attempt: int  #: the fencing token: the writer requires attempts == this
    provider: str  #: the instance this try goes to
    claimed_at: datetime
    reconcile_pending: bool  #: an earlier try may have reached the provider
    outbound: OutboundMessage
    created_at: datetime
    refused: str = ""  #: a FailureReason that keeps it from the provider (its recipient opted out)
    account_id: int = 0
    segments: int | None = None  #: SMS/MMS: what it costs its sender's throughput when pacing counts segments
    not_before: float = 0.0  #: time.monotonic() before which its turn (pacing) has not come


@dataclass(frozen=True)
class Policy:
    """The settings a decision depends on (settings.MESSAGING_*)."""

    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float


@dataclass(frozen=True)
class Transition:
    outcome: str  #: sent, retry or failed
    updates: dict  #: the message's new field values
    event: tuple[str, str, dict]  #: kind, status, detail of its audit event
    attempt_outcome: str  #: the DeliveryAttempt's outcome
    failure_reason: str = ""
    delay: float | None = None


def retry_delay(
    *, attempt: int, retry_after: float | None, base: float, cap: float, jitter: float | None = None
) -> float:
    """Seconds before the next try: the provider's Retry-After when it gave one, else
    exponential backoff with equal jitter (`jitter` in [0, 1), random if not given), capped."""
    if retry_after is not None:
        return retry_after
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + (random.random() if jitter is None else jitter) * ceiling / 2


def decide(
    claim: Claim,
    result: SendResult,
    *,
    now: datetime,
    policy: Policy,
    reconciled: bool = False,
    reconcile_pending: bool = False,
    jitter: float | None = None,
) -> Transition:
    """The transition for `claim` after a try that ended in `result`.

    `reconciled`: the result is an earlier try found at the provider, not a new send.
    `reconcile_pending`: the lookup for an earlier try could not be answered, so the
    next try must look again before sending.
    """
    base = {"lease_expires_at": None, "updated_at": now}
    if claim.refused:
        return _refused(claim, base, now)
    attempt_outcome = DeliveryAttempt.Outcome.RECONCILED if reconciled else result.outcome.value
    if result.outcome is Outcome.SUCCESS:
        return Transition(
            outcome="sent",
            updates=base
            | {
                "status": Message.Status.SENT,
                "provider_message_id": result.provider_message_id,
                "sent_at": now,
                "needs_reconcile": False,
                "error_code": "",
                "last_error": "",
            },
            event=(
                MessageEvent.Kind.STATUS,
                Message.Status.SENT,
                {"provider_message_id": result.provider_message_id, "reconciled": reconciled},
            ),
            attempt_outcome=attempt_outcome,
        )
    unresolved = result.outcome is Outcome.AMBIGUOUS or reconcile_pending
    errors = {"needs_reconcile": unresolved, "error_code": result.error_code, "last_error": result.error}
    if result.outcome is Outcome.PERMANENT or claim.attempt >= policy.max_attempts:
        reason = FailureReason.PERMANENT if result.outcome is Outcome.PERMANENT else FailureReason.EXHAUSTED
        return Transition(
            outcome="failed",
            updates=base | errors | {"status": Message.Status.FAILED, "failed_at": now, "failure_reason": reason},
            event=(
                MessageEvent.Kind.STATUS,
                Message.Status.FAILED,
                {"reason": reason, "error": result.error, "error_code": result.error_code},
            ),
            attempt_outcome=attempt_outcome,
            failure_reason=reason,
        )
    delay = retry_delay(
        attempt=claim.attempt,
        retry_after=result.retry_after,
        base=policy.retry_base_seconds,
        cap=policy.retry_max_seconds,
        jitter=jitter,
    )
    return Transition(
        outcome="retry",
        # Not published: the outbox relay publishes it when it is due.
        updates=base
        | errors
        | {"status": Message.Status.QUEUED, "next_attempt_at": now + timedelta(seconds=delay), "enqueued_at": None},
        event=(
            MessageEvent.Kind.RETRY,
            Message.Status.QUEUED,
            {"outcome": result.outcome.value, "error": result.error, "delay_seconds": round(delay, 3)},
        ),
        attempt_outcome=attempt_outcome,
        delay=delay,
    )


def _refused(claim: Claim, base: dict, now: datetime) -> Transition:
    """A message its recipient may no longer get (it opted out, or its address was
    suppressed, after the message was queued): failed without a provider call."""
    error = {
        FailureReason.OPTED_OUT: "the recipient opted out of this sender before the message left",
        FailureReason.SUPPRESSED: "the recipient's address was suppressed before the message left",
    }[claim.refused]
    return Transition(
        outcome="failed",
        updates=base
        | {
            "status": Message.Status.FAILED,
            "failed_at": now,
            "failure_reason": claim.refused,
            "needs_reconcile": False,
            "error_code": claim.refused,
            "last_error": error,
        },
        event=(MessageEvent.Kind.STATUS, Message.Status.FAILED, {"reason": claim.refused, "error": error}),
        attempt_outcome="",
        failure_reason=claim.refused,
    )


class CancelOutcome(StrEnum):
    """What a cancel did to a message."""

    CANCELED = "canceled"  #: it was scheduled: now canceled, it will never be sent
    ALREADY = "already"  #: it was canceled before: a repeat changes nothing
    TOO_LATE = "too_late"  #: it was released (or never scheduled): nothing to cancel


def cancel_outcome(status: str) -> CancelOutcome:
    """What canceling a message in `status` does: only `scheduled` moves (to `canceled`),
    forward as every status change."""
    if status == Message.Status.SCHEDULED:
        return CancelOutcome.CANCELED
    if status == Message.Status.CANCELED:
        return CancelOutcome.ALREADY
    return CancelOutcome.TOO_LATE
