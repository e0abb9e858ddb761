"""Dispatching a queued message: claim it, choose a provider, call it with no
transaction open, and record what came of it (sent, a retry, or a dead letter).

Exactly-once rests on three things: the claim (a conditional UPDATE, so a second copy
of a task finds nothing to do), the attempt number as a fencing token (a worker whose
lease ran out cannot overwrite the next worker's result), and reconciliation (a try
whose outcome is unknown is looked up at the provider before anything is resent).
"""

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config import metrics
from messaging.models import DeliveryAttempt, FailureReason, Message, MessageEvent
from messaging.services.events import event_new, message_enqueue
from providers.base import OutboundMessage, Outcome, Provider, SendResult
from providers.breaker import CircuitBreaker
from providers.registry import provider_get, providers_for

logger = logging.getLogger(__name__)


@dataclass
class Claim:
    message: Message
    attempt: int  #: the fencing token: our updates require attempts == this
    provider: Provider
    claimed_at: datetime
    reconcile_pending: bool  #: an earlier try may have reached the provider


def message_dispatch(*, message_id: int) -> str:
    """Dispatch one message; returns what happened: skipped, sent, retry or failed."""
    claim = _claim(message_id)
    if claim is None:
        return "skipped"
    if claim.reconcile_pending:
        try:
            found = _reconcile(claim)
        except LookupError as exc:
            # We cannot tell whether the earlier try went out: do not resend, ask again later.
            CircuitBreaker(claim.provider.name).record_failure()
            return _record(claim, SendResult(Outcome.TRANSIENT, error=str(exc)), reconcile_pending=True)
        CircuitBreaker(claim.provider.name).record_success()
        if found:
            return _record(claim, SendResult(Outcome.SUCCESS, provider_message_id=found), reconciled=True)
        claim.reconcile_pending = False
        if not _switch_provider(claim):
            return _record(claim, SendResult(Outcome.TRANSIENT, error="no provider available (circuits open)"))
    started = time.monotonic()
    result = claim.provider.send(_outbound(claim.message))
    metrics.provider_request(
        provider=claim.provider.name, operation="send", outcome=result.outcome.value, seconds=time.monotonic() - started
    )
    logger.info(
        "provider send",
        extra={
            "provider": claim.provider.name,
            "attempt": claim.attempt,
            "outcome": result.outcome.value,
            "http_status": result.http_status,
            "provider_message_id": result.provider_message_id or None,
            "latency_ms": result.latency_ms,
            "error": result.error or None,
        },
    )
    _update_breaker(claim.provider, result)
    return _record(claim, result)


def retry_delay(*, attempt: int, retry_after: float | None) -> float:
    """Seconds before the next try: the provider's Retry-After when it gave one, else
    exponential backoff with equal jitter, capped."""
    if retry_after is not None:
        return retry_after
    ceiling = min(settings.MESSAGING_RETRY_MAX_SECONDS, settings.MESSAGING_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _claim(message_id: int) -> Claim | None:
    message = Message.objects.filter(pk=message_id, status=Message.Status.QUEUED).first()
    now = timezone.now()
    if message is None or (message.next_attempt_at and message.next_attempt_at > now):
        return None  # someone else has it, it is finished, or it is not due yet
    provider = _choose_provider(message)
    if provider is None:
        _postpone(message, now)
        return None
    attempt = message.attempts + 1
    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED, attempts=message.attempts).update(
        status=Message.Status.SENDING,
        attempts=attempt,
        provider=provider.name,
        lease_expires_at=now + timedelta(seconds=settings.MESSAGING_LEASE_SECONDS),
        updated_at=now,
    )
    if not claimed:
        return None
    metrics.message_status(direction=message.direction, channel=message.type, status=Message.Status.SENDING)
    return Claim(message, attempt, provider, now, reconcile_pending=message.needs_reconcile)


def _choose_provider(message: Message) -> Provider | None:
    """The provider to use now: the first instance whose breaker lets us in. A message
    whose last try is unresolved must first ask the provider that may have it, so it
    waits for that provider's breaker rather than failing over (and maybe sending twice)."""
    if message.needs_reconcile and message.provider:
        provider = provider_get(message.provider)
        if provider is not None:
            return provider if CircuitBreaker(provider.name).allow() else None
        logger.warning(
            "message %s: provider %s is no longer configured; cannot reconcile", message.pk, message.provider
        )
        Message.objects.filter(pk=message.pk).update(needs_reconcile=False)
        message.needs_reconcile = False
    return _first_available(message.type)


def _first_available(message_type: str) -> Provider | None:
    for provider in providers_for(message_type):
        if CircuitBreaker(provider.name).allow():
            return provider
    return None


def _switch_provider(claim: Claim) -> bool:
    """After reconciling found nothing, the message may go to any healthy instance."""
    provider = _first_available(claim.message.type)
    if provider is None:
        return False
    if provider.name != claim.provider.name:
        Message.objects.filter(pk=claim.message.pk, attempts=claim.attempt).update(provider=provider.name)
        claim.provider = provider
    return True


def _postpone(message: Message, now: datetime) -> None:
    """No usable provider (breakers open): wait for a cool-down without spending a try."""
    due = now + timedelta(seconds=settings.BREAKER_COOLDOWN_SECONDS)
    updated = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        next_attempt_at=due, enqueued_at=None, last_error="no provider available (circuits open)", updated_at=now
    )
    if updated:
        logger.warning("message %s postponed: no %s provider available", message.pk, message.type)


def _outbound(message: Message) -> OutboundMessage:
    return OutboundMessage(
        reference=str(message.pk),
        type=message.type,
        from_address=message.from_address,
        to_address=message.to_address,
        body=message.body,
        attachments=list(message.attachments or []),
        subject=message.subject,
    )


def _reconcile(claim: Claim) -> str:
    """The provider id of an earlier try that did reach the provider, or ""."""
    message = claim.message
    started = time.monotonic()
    try:
        candidates = claim.provider.lookup(_outbound(message), since=message.created_at)
    except LookupError:
        metrics.provider_request(
            provider=claim.provider.name, operation="lookup", outcome="error", seconds=time.monotonic() - started
        )
        raise
    metrics.provider_request(
        provider=claim.provider.name, operation="lookup", outcome="success", seconds=time.monotonic() - started
    )
    logger.info("provider lookup", extra={"provider": claim.provider.name, "found": len(candidates)})
    taken = set(
        Message.objects.filter(provider=claim.provider.name, provider_message_id__in=candidates)
        .exclude(pk=message.pk)
        .values_list("provider_message_id", flat=True)
    )
    found = next((c for c in candidates if c not in taken), "")
    MessageEvent.objects.create(
        message=message,
        kind=MessageEvent.Kind.RECONCILE,
        detail={"provider": claim.provider.name, "found": found or None},
        created_at=timezone.now(),
    )
    return found


def _update_breaker(provider: Provider, result: SendResult) -> None:
    breaker = CircuitBreaker(provider.name)
    if result.outcome in (Outcome.TRANSIENT, Outcome.AMBIGUOUS):
        breaker.record_failure()
    else:
        breaker.record_success()


def _record(claim: Claim, result: SendResult, *, reconciled: bool = False, reconcile_pending: bool = False) -> str:
    """Store the try and move the message on, if it is still ours."""
    message, now = claim.message, timezone.now()
    events = [
        event_new(
            message.pk,
            MessageEvent.Kind.STATUS,
            Message.Status.SENDING,
            at=claim.claimed_at,
            provider=claim.provider.name,
            attempt=claim.attempt,
        )
    ]
    base = {"lease_expires_at": None, "updated_at": now}
    enqueue_after = None

    if result.outcome is Outcome.SUCCESS:
        outcome = "sent"
        updates = base | {
            "status": Message.Status.SENT,
            "provider_message_id": result.provider_message_id,
            "sent_at": now,
            "needs_reconcile": False,
            "error_code": "",
            "last_error": "",
        }
        events.append(
            event_new(
                message.pk,
                MessageEvent.Kind.STATUS,
                Message.Status.SENT,
                at=now,
                provider_message_id=result.provider_message_id,
                reconciled=reconciled,
            )
        )
    elif result.outcome is Outcome.PERMANENT or claim.attempt >= settings.MESSAGING_MAX_ATTEMPTS:
        outcome = "failed"
        reason = FailureReason.PERMANENT if result.outcome is Outcome.PERMANENT else FailureReason.EXHAUSTED
        unresolved = result.outcome is Outcome.AMBIGUOUS or reconcile_pending or claim.reconcile_pending
        updates = base | {
            "status": Message.Status.FAILED,
            "failed_at": now,
            "failure_reason": reason,
            "needs_reconcile": unresolved,
            "error_code": result.error_code,
            "last_error": result.error,
        }
        events.append(
            event_new(
                message.pk,
                MessageEvent.Kind.STATUS,
                Message.Status.FAILED,
                at=now,
                reason=reason,
                error=result.error,
                error_code=result.error_code,
            )
        )
    else:
        outcome = "retry"
        delay = retry_delay(attempt=claim.attempt, retry_after=result.retry_after)
        due = now + timedelta(seconds=delay)
        if delay <= settings.MESSAGING_ETA_MAX_SECONDS:
            enqueue_after = delay  # short waits ride a countdown; long ones wait for the sweep
        unresolved = result.outcome is Outcome.AMBIGUOUS or reconcile_pending or claim.reconcile_pending
        updates = base | {
            "status": Message.Status.QUEUED,
            "next_attempt_at": due,
            "enqueued_at": due if enqueue_after is not None else None,
            "needs_reconcile": unresolved,
            "error_code": result.error_code,
            "last_error": result.error,
        }
        events.append(
            event_new(
                message.pk,
                MessageEvent.Kind.RETRY,
                Message.Status.QUEUED,
                at=now,
                outcome=result.outcome.value,
                error=result.error,
                delay_seconds=round(delay, 3),
            )
        )

    with transaction.atomic():
        ours = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING, attempts=claim.attempt)
        if not ours.update(**updates):
            outcome = _record_late(message, result)
            events = events[:1]
        DeliveryAttempt.objects.create(
            message_id=message.pk,
            provider=claim.provider.name,
            outcome=DeliveryAttempt.Outcome.RECONCILED if reconciled else result.outcome.value,
            http_status=result.http_status,
            provider_message_id=result.provider_message_id,
            error=result.error,
            latency_ms=result.latency_ms,
            created_at=claim.claimed_at,
        )
        MessageEvent.objects.bulk_create(events)
        if enqueue_after is not None and outcome == "retry":
            transaction.on_commit(
                partial(message_enqueue, message_id=message.pk, message_type=message.type, countdown=enqueue_after)
            )
    _count(claim, result, outcome, reconciled=reconciled)
    return outcome


def _count(claim: Claim, result: SendResult, outcome: str, *, reconciled: bool) -> None:
    """The metrics of one recorded try (see config/metrics.py)."""
    message, channel = claim.message, claim.message.type
    attempt_outcome = DeliveryAttempt.Outcome.RECONCILED if reconciled else result.outcome.value
    metrics.DELIVERY_ATTEMPTS.labels(channel=channel, provider=claim.provider.name, outcome=attempt_outcome).inc()
    if outcome == "late":
        return
    status = {"sent": Message.Status.SENT, "failed": Message.Status.FAILED, "retry": Message.Status.QUEUED}[outcome]
    metrics.message_status(direction=message.direction, channel=channel, status=status)
    if outcome == "retry":
        metrics.RETRIES.labels(channel=channel, outcome=result.outcome.value).inc()
    elif outcome == "failed":
        reason = FailureReason.PERMANENT if result.outcome is Outcome.PERMANENT else FailureReason.EXHAUSTED
        metrics.DEAD_LETTERS.labels(channel=channel, reason=reason).inc()


def _record_late(message: Message, result: SendResult) -> str:
    """The message moved on without us: a callback finished it first, or our lease ran
    out and the sweep handed it to another try. Keep the provider id if we got one."""
    if result.outcome is Outcome.SUCCESS:
        Message.objects.filter(Q(provider_message_id__isnull=True) | Q(provider_message_id=""), pk=message.pk).update(
            provider_message_id=result.provider_message_id, sent_at=timezone.now()
        )
    logger.info("message %s changed while a try was in flight; outcome %s kept as history", message.pk, result.outcome)
    return "late"
