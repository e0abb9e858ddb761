"""The safety net and the operator's tools: the sweep that republishes what no worker
took and takes back what a dead worker held, and the replay of dead letters."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config import metrics
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new, message_enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    requeued: int  #: queued messages whose task was lost or never published
    recovered: int  #: sending messages whose worker's lease ran out


def messages_sweep(*, limit: int = 1000) -> SweepResult:
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
                enqueued_at=now,
                updated_at=now,
            )
            MessageEvent.objects.bulk_create(
                event_new(pk, MessageEvent.Kind.RETRY, Message.Status.QUEUED, at=now, reason="lease expired")
                for pk, _ in stuck
            )
    with transaction.atomic():
        stale = now - timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS)
        due = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Message.Status.QUEUED, next_attempt_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
            .values_list("id", "type")[:limit]
        )
        if due:
            Message.objects.filter(id__in=[pk for pk, _ in due]).update(enqueued_at=now)
    for pk, message_type in stuck + due:
        message_enqueue(message_id=pk, message_type=message_type)
    for _, message_type in stuck:
        metrics.message_status(direction=Message.Direction.OUTBOUND, channel=message_type, status=Message.Status.QUEUED)
    metrics.SWEPT.labels(kind="requeued").inc(len(due))
    metrics.SWEPT.labels(kind="recovered").inc(len(stuck))
    if stuck or due:
        logger.info("sweep: %d requeued, %d recovered from expired leases", len(due), len(stuck))
    return SweepResult(requeued=len(due), recovered=len(stuck))


def message_replay(*, message: Message, actor: str) -> bool:
    """Send a dead letter again with a fresh attempt budget; its history stays. A try
    whose outcome was unknown is still reconciled with the provider first."""
    now = timezone.now()
    with transaction.atomic():
        replayed = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
            status=Message.Status.QUEUED,
            attempts=0,
            failure_reason="",
            failed_at=None,
            next_attempt_at=now,
            enqueued_at=now,
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
            transaction.on_commit(lambda: message_enqueue(message_id=message.pk, message_type=message.type))
    if replayed:
        metrics.message_status(direction=message.direction, channel=message.type, status=Message.Status.QUEUED)
        metrics.REPLAYS.labels(channel=message.type, actor=actor.split(":")[0]).inc()
    return bool(replayed)
