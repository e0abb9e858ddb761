"""Dispatching queued messages in batches: claim them in one statement, call the
provider for each with no transaction open (many calls in flight), and write what came
of them back in a few bulk statements.

Exactly-once rests on three things: the claim (a conditional UPDATE, so a second copy
of a task finds nothing to do), the attempt number as a fencing token (a worker whose
lease ran out cannot overwrite the next worker's result), and reconciliation (a try
whose outcome is unknown is looked up at the provider before anything is resent).
What each result does to its message is decided by `transitions.decide`. Claims over
their sender's throughput wait for their slot without spending the try (pacing.py).
"""

import contextvars
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from config import metrics
from messaging.models import DeliveryAttempt, FailureReason, Message, MessageEvent
from messaging.services.events import event_new, message_event_wanted, message_ids_events_record
from messaging.services.pacing import claims_paced
from messaging.services.storing import messages_consent_refusals
from messaging.services.transitions import Claim, Policy, Transition, decide
from messaging.services.voice import call_spec
from providers.base import OutboundMessage, Outcome, Provider, ProviderError, SendResult
from providers.breaker import BreakerState, CircuitBreaker
from providers.registry import provider_get, providers_for

logger = logging.getLogger(__name__)

NO_PROVIDER = "no provider available (circuits open)"


def message_dispatch(*, message_id: int) -> str:
    """Dispatch one message; returns what happened: skipped, sent, retry or failed."""
    message_type = Message.objects.filter(pk=message_id).values_list("type", flat=True).first()
    if message_type is None:
        return "skipped"
    return messages_dispatch(message_ids=[message_id], message_type=message_type).get(message_id, "skipped")


def messages_dispatch(*, message_ids: list[int], message_type: str) -> dict[int, str]:
    """Dispatch the due, queued messages among `message_ids` (all of `message_type`);
    returns what happened to each one that was claimed: sent, retry, failed or late."""
    now = timezone.now()
    claims = _claim(message_ids, message_type, now)
    if claims:
        # Over its sender's throughput: back to `queued` for its slot, the try not spent.
        claims = claims_paced(claims)
    if not claims:
        return {}
    tried, crashed = _try_all([c for c in claims if not c.refused])
    # Refused ones (the recipient opted out since they were queued) never reach a provider.
    tried += [Tried(c, _NOT_TRIED) for c in claims if c.refused]
    outcomes = _record(tried, now=timezone.now()) if tried else {}
    if crashed:
        # A bug of ours, not a provider's answer: the others are recorded; these stay
        # `sending` until their lease runs out, then the sweep reconciles them.
        raise crashed[0]
    return outcomes


# --- Claim ----------------------------------------------------------------------------


def _routes(message_type: str) -> list[tuple[Provider, int | None]]:
    """The instances that take messages now, in failover order, with how many each may
    take: None for any number, 1 for the single trial call of a half-open breaker."""
    routes = []
    for provider in providers_for(message_type):
        breaker = CircuitBreaker(provider.name)
        state = breaker.state()
        if state is BreakerState.CLOSED:
            routes.append((provider, None))
            break
        if state is BreakerState.HALF_OPEN and breaker.allow():
            routes.append((provider, 1))
    return routes


def _claim(message_ids: list[int], message_type: str, now: datetime) -> list[Claim]:
    ids, claims = sorted(set(message_ids)), []
    routes = _routes(message_type)
    for provider, limit in routes:
        taken, ids = (ids, []) if limit is None else (ids[:limit], ids[limit:])
        claims += _claim_for(taken, provider.name, now)
        if not ids:
            break
    if ids:
        _postpone(ids, now)
    return _check_reconcile_routes(claims, now, granted={provider.name for provider, _ in routes})


# A message whose last try is unresolved keeps its provider: only that one can say
# whether it already has it. Everything else goes to the route's provider.
_CLAIM_SQL = """
UPDATE {table} SET
    status = %s, attempts = attempts + 1, lease_expires_at = %s, updated_at = %s,
    provider = CASE WHEN needs_reconcile AND provider <> '' THEN provider ELSE %s END
WHERE id IN ({ids}) AND status = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
RETURNING *
"""


def _claim_for(ids: list[int], provider: str, now: datetime) -> list[Claim]:
    if not ids:
        return []
    lease = now + timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    sql = _CLAIM_SQL.format(table=Message._meta.db_table, ids=", ".join(["%s"] * len(ids)))
    params = [Message.Status.SENDING, lease, now, provider, *ids, Message.Status.QUEUED, now]
    # raw() maps the returned rows onto models with each field's converters (JSON, dates).
    with transaction.atomic():
        messages = list(Message.objects.raw(sql, params))
    for (direction, channel), count in Counter((m.direction, m.type) for m in messages).items():
        metrics.message_status(direction=direction, channel=channel, status=Message.Status.SENDING, count=count)
    refusals = messages_consent_refusals(messages)
    return [_claim_of(message, now, refused=refusals.get(message.pk, "")) for message in messages]


def _claim_of(message: Message, now: datetime, *, refused: str = "") -> Claim:
    return Claim(
        message_id=message.pk,
        type=message.type,
        direction=message.direction,
        attempt=message.attempts,
        provider=message.provider,
        claimed_at=now,
        reconcile_pending=message.needs_reconcile,
        outbound=outbound_for(message),
        created_at=message.created_at,
        refused=refused,
        account_id=message.account_id,
        segments=message.segments,
    )


def outbound_for(message: Message) -> OutboundMessage:
    """What the adapter sees of a message."""
    return OutboundMessage(
        reference=str(message.pk),
        type=message.type,
        from_address=message.from_address,
        to_address=message.to_address,
        body=message.body,
        attachments=list(message.attachments or []),
        subject=message.subject,
        call=call_spec(message) if message.type == Message.Type.VOICE else None,
    )


def _check_reconcile_routes(claims: list[Claim], now: datetime, *, granted: set[str]) -> list[Claim]:
    """Claims that must reconcile with a provider whose breaker is open wait for it
    (failing over might send twice); one that is no longer configured cannot be asked.
    `granted`: the providers whose breakers already let this batch in."""
    allowed: dict[str, bool] = dict.fromkeys(granted, True)
    kept, waiting = [], []
    for claim in claims:
        if not claim.reconcile_pending:
            kept.append(claim)
            continue
        if provider_get(claim.provider) is None:
            logger.warning(
                "message %s: provider %s is no longer configured; cannot reconcile", claim.message_id, claim.provider
            )
            claim.reconcile_pending = False
            Message.objects.filter(pk=claim.message_id, attempts=claim.attempt).update(needs_reconcile=False)
            claim = _switch_provider(claim)
            (kept if provider_get(claim.provider) else waiting).append(claim)
            continue
        if claim.provider not in allowed:
            allowed[claim.provider] = CircuitBreaker(claim.provider).allow()
        (kept if allowed[claim.provider] else waiting).append(claim)
    if waiting:
        _unclaim(waiting, now)
    return kept


def _postpone(ids: list[int], now: datetime) -> None:
    """No usable provider (breakers open): wait for a cool-down without spending a try."""
    due = now + timedelta(seconds=settings.BREAKER_COOLDOWN_SECONDS)
    updated = Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED).update(
        next_attempt_at=due, enqueued_at=None, last_error=NO_PROVIDER, updated_at=now
    )
    if updated:
        logger.warning("%d message(s) postponed: no provider available", updated)


def _unclaim(claims: list[Claim], now: datetime) -> None:
    """Give claims back as if never taken: the try is not spent."""
    due = now + timedelta(seconds=settings.BREAKER_COOLDOWN_SECONDS)
    for claim in claims:
        Message.objects.filter(pk=claim.message_id, status=Message.Status.SENDING, attempts=claim.attempt).update(
            status=Message.Status.QUEUED,
            attempts=claim.attempt - 1,
            lease_expires_at=None,
            next_attempt_at=due,
            enqueued_at=None,
            last_error=NO_PROVIDER,
            updated_at=now,
        )
        metrics.message_status(direction=claim.direction, channel=claim.type, status=Message.Status.QUEUED)
    logger.warning("%d message(s) wait for their provider's breaker to reconcile", len(claims))


# --- Try ------------------------------------------------------------------------------


_NOT_TRIED = SendResult(Outcome.PERMANENT, error="not sent: refused before the provider call")


class Tried:
    """A claim and what its try came to."""

    __slots__ = ("claim", "reconcile_pending", "reconciled", "result")

    def __init__(self, claim: Claim, result: SendResult, *, reconciled=False, reconcile_pending=False):
        self.claim, self.result = claim, result
        self.reconciled, self.reconcile_pending = reconciled, reconcile_pending


def _try_all(claims: list[Claim]) -> tuple[list[Tried], list[Exception]]:
    """Reconcile the claims that need it, then send the rest, many calls at a time.
    Also returns the exceptions of calls that crashed (their claims are left out)."""
    tried: list[Tried] = []
    crashed: list[Exception] = []
    seen: list[tuple[str, bool]] = []  # (provider, failed) of every call, in order
    reconciling = [c for c in claims if c.reconcile_pending]
    sending = [c for c in claims if not c.reconcile_pending]
    if reconciling:
        reconciling, looked = _without_crashes(reconciling, _in_parallel(_lookup, reconciling), crashed)
        seen += [(c.provider, isinstance(r, ProviderError)) for c, r in zip(reconciling, looked, strict=True)]
        found = _reconcile(reconciling, looked)
        for claim, result in zip(reconciling, looked, strict=True):
            if isinstance(result, ProviderError):
                # We cannot tell whether the earlier try went out: do not resend, ask again later.
                tried.append(Tried(claim, SendResult(Outcome.TRANSIENT, error=str(result)), reconcile_pending=True))
            elif found.get(claim.message_id):
                success = SendResult(Outcome.SUCCESS, provider_message_id=found[claim.message_id])
                tried.append(Tried(claim, success, reconciled=True))
            else:
                claim.reconcile_pending = False
                sending.append(_switch_provider(claim))
    sending, sent = _without_crashes(sending, _in_parallel(_send, sending), crashed)
    tried += [Tried(claim, result) for claim, result in zip(sending, sent, strict=True)]
    seen += [
        (c.provider, r.outcome in (Outcome.TRANSIENT, Outcome.AMBIGUOUS)) for c, r in zip(sending, sent, strict=True)
    ]
    _update_breakers(seen)
    return tried, crashed


_executor: ThreadPoolExecutor | None = None
_executor_pid = 0
_in_flight: dict[str, threading.BoundedSemaphore] = {}
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One pool of caller threads per process (made after a fork, not before)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            workers = settings.PROVIDER_MAX_IN_FLIGHT * max(len(settings.PROVIDERS), 1)
            _executor, _executor_pid = ThreadPoolExecutor(workers, thread_name_prefix="dispatch"), os.getpid()
            _in_flight.clear()
        return _executor


def _slot(provider: str) -> threading.BoundedSemaphore:
    with _executor_lock:
        if provider not in _in_flight:
            _in_flight[provider] = threading.BoundedSemaphore(settings.PROVIDER_MAX_IN_FLIGHT)
        return _in_flight[provider]


class _Crashed:
    def __init__(self, exc: Exception):
        self.exc = exc


def _in_parallel(work: Callable[[Claim], object], claims: list[Claim]) -> list:
    """`work` for every claim, at most PROVIDER_MAX_IN_FLIGHT at once per provider; a
    single claim runs in the caller's thread. Each call keeps the caller's log context;
    one that raises gives a `_Crashed` in its place."""
    if not claims:
        return []
    if len(claims) == 1:
        try:
            return [work(claims[0])]
        except Exception as exc:
            return [_Crashed(exc)]
    pool = _pool()
    futures = [pool.submit(contextvars.copy_context().run, _bounded, work, claim) for claim in claims]
    return [_Crashed(f.exception()) if f.exception() else f.result() for f in futures]


def _without_crashes(claims: list[Claim], results: list, crashed: list[Exception]) -> tuple[list[Claim], list]:
    kept = [(c, r) for c, r in zip(claims, results, strict=True) if not isinstance(r, _Crashed)]
    for claim, result in zip(claims, results, strict=True):
        if isinstance(result, _Crashed):
            logger.error("message %s: dispatch crashed", claim.message_id, exc_info=result.exc)
            crashed.append(result.exc)
    return [c for c, _ in kept], [r for _, r in kept]


def _bounded(work: Callable[[Claim], object], claim: Claim):
    with _slot(claim.provider):
        return work(claim)


def _send(claim: Claim) -> SendResult:
    if (early := claim.not_before - time.monotonic()) > 0:
        time.sleep(early)  # its sender's turn is a moment away (pacing.py)
    provider = provider_get(claim.provider)
    started = time.monotonic()
    result = provider.send(claim.outbound)
    metrics.provider_request(
        provider=provider.name, operation="send", outcome=result.outcome.value, seconds=time.monotonic() - started
    )
    logger.info(
        "provider send",
        extra={
            "message_id": claim.message_id,
            "provider": provider.name,
            "attempt": claim.attempt,
            "outcome": result.outcome.value,
            "http_status": result.http_status,
            "provider_message_id": result.provider_message_id or None,
            "latency_ms": result.latency_ms,
            "error": result.error or None,
        },
    )
    return result


def _lookup(claim: Claim) -> list[str] | ProviderError:
    """The provider ids that may be an earlier try of `claim`, or the error that kept the
    provider from answering. Only ProviderError is caught: a bug of ours still raises."""
    provider = provider_get(claim.provider)
    started = time.monotonic()
    try:
        candidates = provider.lookup(claim.outbound, since=claim.created_at)
    except ProviderError as exc:
        outcome, result = "error", exc
    else:
        outcome, result = "success", candidates
    metrics.provider_request(
        provider=provider.name, operation="lookup", outcome=outcome, seconds=time.monotonic() - started
    )
    logger.info(
        "provider lookup",
        extra={"message_id": claim.message_id, "provider": provider.name, "outcome": outcome},
    )
    return result


def _reconcile(claims: list[Claim], looked: list) -> dict[int, str]:
    """For each claim whose lookup answered, the provider id of an earlier try of it ("" if
    none): a candidate not already attributed to another of our messages."""
    answered = [(c, ids) for c, ids in zip(claims, looked, strict=True) if not isinstance(ids, ProviderError)]
    everything = {candidate for _, ids in answered for candidate in ids}
    taken = defaultdict(set)
    if everything:
        for provider, provider_id, pk in Message.objects.filter(provider_message_id__in=everything).values_list(
            "provider", "provider_message_id", "pk"
        ):
            taken[(provider, provider_id)].add(pk)
    found = {}
    for claim, ids in answered:
        found[claim.message_id] = next(
            (c for c in ids if not (taken[(claim.provider, c)] - {claim.message_id})),
            "",
        )
    now = timezone.now()
    MessageEvent.objects.bulk_create(
        event_new(
            claim.message_id,
            MessageEvent.Kind.RECONCILE,
            at=now,
            provider=claim.provider,
            found=found[claim.message_id] or None,
        )
        for claim, _ in answered
    )
    return found


def _switch_provider(claim: Claim) -> Claim:
    """After reconciling found nothing, the message may go to any healthy instance."""
    routes = _routes(claim.type)
    if routes and routes[0][0].name != claim.provider:
        name = routes[0][0].name
        if Message.objects.filter(pk=claim.message_id, attempts=claim.attempt).update(provider=name):
            claim.provider = name
    return claim


def _update_breakers(seen: list[tuple[str, bool]]) -> None:
    """The batch's calls, in order, as one or two updates per provider: a success resets
    the count (and closes a half-open breaker), the failures after the last success add up."""
    by_provider: dict[str, list[bool]] = defaultdict(list)
    for provider, failed in seen:
        by_provider[provider].append(failed)
    for provider, calls in by_provider.items():
        breaker = CircuitBreaker(provider)
        if False in calls:
            breaker.record_success()
            calls = calls[len(calls) - calls[::-1].index(False) :]
        if calls:
            breaker.record_failures(len(calls))


# --- Record ---------------------------------------------------------------------------


def _policy() -> Policy:
    return Policy(
        max_attempts=settings.MESSAGING_MAX_ATTEMPTS,
        retry_base_seconds=settings.MESSAGING_RETRY_BASE_SECONDS,
        retry_max_seconds=settings.MESSAGING_RETRY_MAX_SECONDS,
    )


def _record(tried: list[Tried], *, now: datetime) -> dict[int, str]:
    """Apply each try's transition, if the message is still ours, in one transaction."""
    policy = _policy()
    decided = [
        (
            t,
            decide(
                t.claim,
                t.result,
                now=now,
                policy=policy,
                reconciled=t.reconciled,
                reconcile_pending=t.reconcile_pending,
            ),
        )
        for t in tried
    ]
    with transaction.atomic():
        ours = _still_ours([t.claim for t in tried])
        _apply([(t.claim, transition) for t, transition in decided if t.claim.message_id in ours])
        late = [t for t, _ in decided if t.claim.message_id not in ours]
        for t in late:
            _record_late(t.claim, t.result)
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                message_id=t.claim.message_id,
                provider=t.claim.provider,
                outcome=transition.attempt_outcome,
                http_status=t.result.http_status,
                provider_message_id=t.result.provider_message_id,
                error=t.result.error,
                latency_ms=t.result.latency_ms,
                created_at=t.claim.claimed_at,
            )
            for t, transition in decided
            if not t.claim.refused  # no provider was called
        )
        MessageEvent.objects.bulk_create(_events(decided, ours, now))
        # Their consumer events (message.sent, .failed), when their accounts listen.
        message_ids_events_record(
            message_ids=[
                t.claim.message_id
                for t, transition in decided
                if t.claim.message_id in ours
                and transition.outcome in ("sent", "failed")  # a retry is not news: it stays queued
                and message_event_wanted(account_id=t.claim.account_id, status=transition.updates["status"])
            ]
        )
    outcomes = {t.claim.message_id: (tr.outcome if t.claim.message_id in ours else "late") for t, tr in decided}
    _count(decided, outcomes)
    return outcomes


def _still_ours(claims: list[Claim]) -> set[int]:
    """The claimed messages nobody moved on meanwhile (status `sending`, our attempt),
    locked until the transaction ends so none moves between this check and the write."""
    by_attempt = defaultdict(list)
    for claim in claims:
        by_attempt[claim.attempt].append(claim.message_id)
    fence = Q()
    for attempt, ids in by_attempt.items():
        fence |= Q(attempts=attempt, pk__in=ids)
    rows = Message.objects.filter(fence, status=Message.Status.SENDING)
    if connection.features.has_select_for_update:
        rows = rows.select_for_update()
    return set(rows.values_list("pk", flat=True))


def _apply(changes: list[tuple[Claim, Transition]]) -> None:
    """Write the transitions: one UPDATE per distinct set of fields, values by CASE."""
    by_fields = defaultdict(list)
    for claim, transition in changes:
        by_fields[tuple(sorted(transition.updates))].append((claim, transition))
    for fields, group in by_fields.items():
        if len(group) == 1:
            claim, transition = group[0]
            Message.objects.filter(pk=claim.message_id).update(**transition.updates)
            continue
        values = {}
        for name in fields:
            column = Message._meta.get_field(name)
            distinct = {repr(t.updates[name]) for _, t in group}
            if len(distinct) == 1:
                values[name] = group[0][1].updates[name]
            else:
                values[name] = Case(
                    *[When(pk=c.message_id, then=Value(t.updates[name], output_field=column)) for c, t in group],
                    default=F(name),
                    output_field=column,
                )
        Message.objects.filter(pk__in=[c.message_id for c, _ in group]).update(**values)


def _events(decided: list[tuple[Tried, Transition]], ours: set[int], now: datetime) -> list[MessageEvent]:
    events = []
    for t, transition in decided:
        claim = t.claim
        events.append(
            event_new(
                claim.message_id,
                MessageEvent.Kind.STATUS,
                Message.Status.SENDING,
                at=claim.claimed_at,
                provider=claim.provider,
                attempt=claim.attempt,
            )
        )
        if claim.message_id in ours:
            kind, status, detail = transition.event
            events.append(event_new(claim.message_id, kind, status, at=now, **detail))
    return events


def _record_late(claim: Claim, result: SendResult) -> None:
    """The message moved on without us: a callback finished it first, or our lease ran
    out and the sweep handed it to another try. Keep the provider id if we got one."""
    if result.outcome is Outcome.SUCCESS:
        Message.objects.filter(
            Q(provider_message_id__isnull=True) | Q(provider_message_id=""), pk=claim.message_id
        ).update(provider_message_id=result.provider_message_id, sent_at=timezone.now())
    logger.info(
        "message %s changed while a try was in flight; outcome %s kept as history", claim.message_id, result.outcome
    )


def _count(decided: list[tuple[Tried, Transition]], outcomes: dict[int, str]) -> None:
    """The metrics of one batch of recorded tries (see config/metrics.py), one
    update per distinct label set."""
    attempts, statuses, retries, dead = Counter(), Counter(), Counter(), Counter()
    status_of = {"sent": Message.Status.SENT, "failed": Message.Status.FAILED, "retry": Message.Status.QUEUED}
    for t, transition in decided:
        claim = t.claim
        if not claim.refused:
            attempts[(claim.type, claim.provider, transition.attempt_outcome)] += 1
        outcome = outcomes[claim.message_id]
        if outcome == "late":
            continue
        statuses[(claim.direction, claim.type, status_of[outcome])] += 1
        if outcome == "retry":
            retries[(claim.type, t.result.outcome.value)] += 1
        elif outcome == "failed":
            dead[(claim.type, transition.failure_reason or FailureReason.EXHAUSTED)] += 1
    for (channel, provider, outcome), n in attempts.items():
        metrics.DELIVERY_ATTEMPTS.labels(channel=channel, provider=provider, outcome=outcome).inc(n)
    for (direction, channel, status), n in statuses.items():
        metrics.message_status(direction=direction, channel=channel, status=status, count=n)
    for (channel, outcome), n in retries.items():
        metrics.RETRIES.labels(channel=channel, outcome=outcome).inc(n)
    for (channel, reason), n in dead.items():
        metrics.DEAD_LETTERS.labels(channel=channel, reason=reason).inc(n)
