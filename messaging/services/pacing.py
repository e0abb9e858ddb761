"""Per-sender pacing at dispatch: the claimed messages whose sender is over its
throughput go back to `queued` for their slot (providers/pacing.py reserves it), without
spending a try, and the rest go now.

A sender's rate is its own `throughput` or its kind's default (settings.PACING_RATES);
its kind is given on the Sender or inferred from the address. Each process remembers
both for PACING_SENDER_CACHE_SECONDS, so the check costs a batch one round trip to the
store and no query.
"""

import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from config import metrics
from conversations.selectors import sender_throughputs
from messaging.models import Message
from messaging.services.outbox import outbox_notify
from messaging.services.transitions import Claim
from providers.pacing import PaceRequest, pacing_take

logger = logging.getLogger(__name__)

_senders: dict[str, tuple[float, str, float]] = {}  # address -> (until, kind, per second)


def sender_rates(addresses: set[str]) -> dict[str, tuple[str, float]]:
    """{address: (kind, messages or segments a second)}, remembered for a while."""
    now = time.monotonic()
    missing = {a for a in addresses if (hit := _senders.get(a)) is None or hit[0] <= now}
    if missing:
        until = now + settings.PACING_SENDER_CACHE_SECONDS
        for address, (kind, override) in sender_throughputs(addresses=missing).items():
            _senders[address] = (until, kind, override or settings.PACING_RATES[kind])
    return {a: _senders[a][1:] for a in addresses}


def sender_rates_forget() -> None:
    """Forget remembered senders (one just changed; tests)."""
    _senders.clear()


def claims_paced(claims: list[Claim]) -> list[Claim]:
    """The claims that may go now (or within PACING_HOLD_SECONDS: their `not_before`
    says when); the others are handed back to wait for their slot. Each sender's claims
    are served oldest first."""
    if not settings.PACING_ENABLED:
        return claims
    paced = sorted((c for c in claims if not c.refused), key=lambda c: (c.created_at, c.message_id))
    if not paced:
        return claims
    rates = sender_rates({c.outbound.from_address for c in paced})
    segments = settings.PACING_UNIT == "segments"
    waits = pacing_take(
        [
            PaceRequest(
                sender=c.outbound.from_address,
                reference=str(c.message_id),
                cost=(c.segments or 1) if segments else 1,
                per_second=rates[c.outbound.from_address][1],
            )
            for c in paced
        ]
    )
    # A turn a moment away is waited for in the task (the provider call sleeps until
    # it); a later one goes back to the database rather than hold the worker.
    hold, clock = settings.PACING_HOLD_SECONDS, time.monotonic()
    for claim, wait in zip(paced, waits, strict=True):
        if 0 < wait <= hold:
            claim.not_before = clock + wait
    waiting = [(c, wait) for c, wait in zip(paced, waits, strict=True) if wait > hold]
    if not waiting:
        return claims
    _wait(waiting, timezone.now())
    kinds = Counter(rates[c.outbound.from_address][0] for c, _ in waiting)
    for kind, count in kinds.items():
        metrics.PACED.labels(sender_kind=kind).inc(count)
    held = {c.message_id for c, _ in waiting}
    return [c for c in claims if c.message_id not in held]


def _wait(waiting: list[tuple[Claim, float]], now: datetime) -> None:
    """Back to `queued`, due at its slot, the try given back (as if never claimed), and
    the relays woken so they sleep until the first slot rather than their poll."""
    fence = Q()
    for claim, _ in waiting:
        fence |= Q(pk=claim.message_id, attempts=claim.attempt)
    due = Case(
        *[When(pk=c.message_id, then=Value(now + timedelta(seconds=wait))) for c, wait in waiting],
        output_field=Message._meta.get_field("next_attempt_at"),
    )
    with transaction.atomic():
        Message.objects.filter(fence, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED,
            attempts=F("attempts") - 1,
            lease_expires_at=None,
            next_attempt_at=due,
            enqueued_at=None,
            updated_at=now,
        )
        outbox_notify()
    for (direction, channel), count in Counter((c.direction, c.type) for c, _ in waiting).items():
        metrics.message_status(direction=direction, channel=channel, status=Message.Status.QUEUED, count=count)
    logger.debug("%d message(s) wait for their sender's throughput", len(waiting))
