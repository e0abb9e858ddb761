"""The safety net and the operator's tools: the sweep that republishes what no worker
took and takes back what a dead worker held, and the replay of dead letters."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import metrics
from config.celery import queue_depths
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new, message_event_wanted, message_ids_events_record
from messaging.services.outbox import outbox_notify, outbox_relay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    requeued: int  #: queued messages whose published task was lost
    recovered: int  #: sending messages whose worker's lease ran out
    published: int = 0  #: never-published messages the sweep relayed (no relay running)


def messages_sweep(*, limit: int = 1000) -> SweepResult:
    """Take back what dead workers held, republish what the broker lost, and relay
    what no relay published. Recovered and lost messages are marked unpublished, so the
    relay (this sweep's own call included) publishes them: one publish path."""
    now = timezone.now()
    with transaction.atomic():
        stuck = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Message.Status.SENDING, lease_expires_at__lt=now)
            .values_list("id", "type")[:limit]
        )
        if stuck:
            # The worker may have reached the provider before it died: reconcile first.
            Message.objects.filter(id__in=[pk for pk, _ in stuck], status=Message.Status.SENDING).update(
                status=Message.Status.QUEUED,
                needs_reconcile=True,
                lease_expires_at=None,
                next_attempt_at=now,
                enqueued_at=None,
                updated_at=now,
            )
            MessageEvent.objects.bulk_create(
                event_new(pk, MessageEvent.Kind.RETRY, Message.Status.QUEUED, at=now, reason="lease expired")
                for pk, _ in stuck
            )
            outbox_notify()
    lost = _lost_tasks(now, limit)
    published = outbox_relay(limit=limit)
    for _, message_type in stuck:
        metrics.message_status(direction=Message.Direction.OUTBOUND, channel=message_type, status=Message.Status.QUEUED)
    metrics.SWEPT.labels(kind="requeued").inc(lost)
    metrics.SWEPT.labels(kind="recovered").inc(len(stuck))
    if stuck or lost:
        logger.info("sweep: %d requeued, %d recovered from expired leases", lost, len(stuck))
    return SweepResult(requeued=lost, recovered=len(stuck), published=max(published - lost - len(stuck), 0))


def _lost_tasks(now, limit: int) -> int:
    """Published messages no worker took for MESSAGING_REQUEUE_AFTER_SECONDS while their
    queue is empty: their task is gone (a broker that lost it), so they are marked
    unpublished. While tasks still wait in the queue, the backlog is the broker's, and
    republishing would only grow it."""
    stale = now - timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS)
    waiting = Message.objects.filter(status=Message.Status.QUEUED, enqueued_at__lt=stale, next_attempt_at__lte=now)
    types = set(waiting.order_by().values_list("type", flat=True).distinct())
    if not types:
        return 0
    depths = queue_depths(sorted(types))
    empty = [t for t in types if depths.get(t) == 0]  # None: the broker could not say
    if not empty:
        return 0
    with transaction.atomic():
        ids = list(
            waiting.filter(type__in=empty).select_for_update(skip_locked=True).values_list("id", flat=True)[:limit]
        )
        return Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED).update(enqueued_at=None)


def message_replay(*, message: Message, actor: str) -> bool:
    """Send a dead letter again with a fresh attempt budget; its history stays. A try
    whose outcome was unknown is still reconciled with the provider first. Only a
    `failed` message can be replayed: for any other (or one another replay just took)
    this changes nothing and returns False."""
    now = timezone.now()
    with transaction.atomic():
        replayed = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
            status=Message.Status.QUEUED,
            attempts=0,
            failure_reason="",
            failed_at=None,
            next_attempt_at=now,
            enqueued_at=None,
            updated_at=now,
        )
        if replayed:
            event_new(
                message.pk,
                MessageEvent.Kind.REPLAY,
                Message.Status.QUEUED,
                at=now,
                actor=actor,
                previous_error=message.last_error,
            ).save(force_insert=True)
            if message_event_wanted(account_id=message.account_id, status=Message.Status.QUEUED):
                message_ids_events_record(message_ids=[message.pk])
            outbox_notify()
    if replayed:
        metrics.message_status(direction=message.direction, channel=message.type, status=Message.Status.QUEUED)
        metrics.REPLAYS.labels(channel=message.type, actor=actor.split(":")[0]).inc()
    return bool(replayed)
