"""Storing an inbound message once, in the right account's conversation."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from config import metrics
from conversations.models import Account
from conversations.services import ThreadedMessage, conversation_add_message
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new


@dataclass(frozen=True)
class ReceivedMessage:
    """A validated inbound message: addresses already normalised."""

    provider: str
    provider_message_id: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: list[str] = field(default_factory=list)
    timestamp: datetime | None = None
    subject: str = ""


def message_receive(*, account: Account, received: ReceivedMessage) -> tuple[Message, bool]:
    """Store `received` in its conversation; (message, True) when new, (the stored
    one, False) when the provider sent it before. The unique constraint on provider
    and provider id decides, so concurrent duplicates store one message."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation_id = conversation_add_message(
                message=ThreadedMessage(
                    account_id=account.pk,
                    from_address=received.from_address,
                    to_address=received.to_address,
                    contact_address=received.from_address,
                    direction=Message.Direction.INBOUND,
                    type=received.type,
                    preview=received.body,
                    at=now,
                )
            )
            message = Message.objects.create(
                account=account,
                conversation_id=conversation_id,
                direction=Message.Direction.INBOUND,
                type=received.type,
                from_address=received.from_address,
                to_address=received.to_address,
                subject=received.subject,
                body=received.body,
                attachments=received.attachments,
                timestamp=received.timestamp,
                status=Message.Status.RECEIVED,
                provider=received.provider,
                provider_message_id=received.provider_message_id,
                created_at=now,
                updated_at=now,
            )
            event_new(message.pk, MessageEvent.Kind.STATUS, Message.Status.RECEIVED, at=now).save(force_insert=True)
    except IntegrityError:
        existing = Message.objects.filter(
            provider=received.provider, provider_message_id=received.provider_message_id
        ).first()
        if existing is None:
            raise
        return existing, False
    metrics.message_status(direction=message.direction, channel=message.type, status=message.status)
    return message, True
