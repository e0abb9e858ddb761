"""Accepting an outbound message: one transaction, then a task after commit."""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from config import metrics
from conversations.models import Account
from conversations.selectors import account_owns_address
from conversations.services import ThreadedMessage, conversation_add_message
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new, message_enqueue

logger = logging.getLogger(__name__)


class SenderNotOwned(Exception):
    """The account does not own the address it tries to send from."""


@dataclass(frozen=True)
class NewMessage:
    """A validated outbound message: addresses already normalised."""

    type: str
    from_address: str
    to_address: str
    body: str
    attachments: list[str] = field(default_factory=list)
    timestamp: datetime | None = None
    subject: str = ""


def message_send(*, account: Account, new: NewMessage) -> Message:
    """Store `new` as `queued` in its conversation and dispatch it after commit.

    Once this returns the message is durable and will be sent even if the broker is
    down right now (the sweep publishes queued messages no worker took).
    """
    if not account_owns_address(account=account, address=new.from_address):
        raise SenderNotOwned(new.from_address)
    now = timezone.now()
    with transaction.atomic():
        conversation_id = conversation_add_message(
            message=ThreadedMessage(
                account_id=account.pk,
                from_address=new.from_address,
                to_address=new.to_address,
                contact_address=new.to_address,
                direction=Message.Direction.OUTBOUND,
                type=new.type,
                preview=new.body,
                at=now,
            )
        )
        message = Message.objects.create(
            account=account,
            conversation_id=conversation_id,
            direction=Message.Direction.OUTBOUND,
            type=new.type,
            from_address=new.from_address,
            to_address=new.to_address,
            subject=new.subject,
            body=new.body,
            attachments=new.attachments,
            timestamp=new.timestamp,
            status=Message.Status.QUEUED,
            next_attempt_at=now,
            enqueued_at=now,
            created_at=now,
            updated_at=now,
        )
        event_new(message.pk, MessageEvent.Kind.STATUS, Message.Status.QUEUED, at=now).save(force_insert=True)
        transaction.on_commit(partial(message_enqueue, message_id=message.pk, message_type=message.type))
    metrics.message_status(direction=message.direction, channel=message.type, status=message.status)
    logger.info("message queued", extra={"message_id": message.pk, "channel": message.type, "to": message.to_address})
    return message
