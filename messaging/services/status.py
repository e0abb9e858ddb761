"""Applying provider delivery receipts: forward only, once, whatever order they come in."""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config import metrics
from messaging.models import STATUS_RANK, Message, MessageEvent, statuses_below
from messaging.services.events import event_new, message_event_wanted, message_ids_events_record
from messaging.services.voice import call_status
from providers.base import StatusUpdate

logger = logging.getLogger(__name__)

_TIMESTAMP_FIELD = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.UNDELIVERED: "delivered_at",
}


def message_for_status(*, provider: str, update: StatusUpdate) -> Message | None:
    """The outbound message a receipt is about: by our reference when the provider
    echoed it (it may arrive before we stored the provider id), else by provider id."""
    if update.reference.isdigit() and len(update.reference) < 19:
        message = Message.objects.filter(pk=int(update.reference), direction=Message.Direction.OUTBOUND).first()
        if message is not None:
            return message
    if update.provider_message_id:
        return Message.objects.filter(provider=provider, provider_message_id=update.provider_message_id).first()
    return None


def message_apply_status(*, message: Message, provider: str, update: StatusUpdate) -> bool:
    """Move `message` to the receipt's status if that is forward; True if it moved.
    Every receipt is kept in the audit trail, applied or not. A call's progress also
    tells its length and who answered (kept once known, whatever order they come in)."""
    now = timezone.now()
    moved = False
    status, error_code = update.status, update.error_code
    if message.type == Message.Type.VOICE:
        status, error_code = call_status(call=message.call, answered_by=message.answered_by, update=update)
    with transaction.atomic():
        if status in STATUS_RANK:
            changes = {"status": status, "updated_at": now}
            if field := _TIMESTAMP_FIELD.get(status):
                changes[field] = now
            if status == Message.Status.UNDELIVERED:
                changes["error_code"] = error_code
            if status in (Message.Status.DELIVERED, Message.Status.UNDELIVERED):
                changes |= {"needs_reconcile": False, "failure_reason": "", "lease_expires_at": None}
            moved = bool(Message.objects.filter(pk=message.pk, status__in=statuses_below(status)).update(**changes))
            if update.provider_message_id:
                # A receipt that beat the worker's own write still tells us the provider id.
                Message.objects.filter(
                    Q(provider_message_id__isnull=True) | Q(provider_message_id=""), pk=message.pk
                ).update(provider=provider, provider_message_id=update.provider_message_id)
        if update.duration_seconds is not None:
            Message.objects.filter(pk=message.pk, duration__isnull=True).update(duration=update.duration_seconds)
        if update.answered_by:
            Message.objects.filter(pk=message.pk, answered_by="").update(answered_by=update.answered_by)
        event_new(
            message.pk,
            MessageEvent.Kind.CALLBACK,
            status if moved else "",
            at=now,
            provider=provider,
            provider_status=update.provider_status,
            applied=moved,
            error_code=error_code or None,
            **_call_detail(update),
        ).save(force_insert=True)
        if moved and message_event_wanted(account_id=message.account_id, status=status):
            message_ids_events_record(message_ids=[message.pk])  # message.delivered, .undelivered, ...
    if moved:
        metrics.message_status(direction=message.direction, channel=message.type, status=status)
        if message.type == Message.Type.VOICE and status in (Message.Status.DELIVERED, Message.Status.UNDELIVERED):
            metrics.CALLS.labels(
                provider=provider,
                outcome=update.provider_status,
                answered_by=update.answered_by or message.answered_by or "none",
            ).inc()
    if update.status == "unknown":
        logger.warning("%s: unmapped status %r for message %s", provider, update.provider_status, message.pk)
    return moved


def _call_detail(update: StatusUpdate) -> dict:
    detail = {}
    if update.duration_seconds is not None:
        detail["duration"] = update.duration_seconds
    if update.answered_by:
        detail["answered_by"] = update.answered_by
    return detail
