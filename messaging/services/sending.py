"""Accepting an outbound message: one statement on PostgreSQL (services/storing.py), one
transaction elsewhere. The stored row is the outbox: the relay (services/outbox.py)
publishes it, not the request."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from config import metrics
from conversations.models import Account
from conversations.selectors import account_owns_address
from messaging.models import FailureReason, Message
from messaging.segments import message_segmentation
from messaging.services.storing import message_store

logger = logging.getLogger(__name__)


class SenderNotOwned(Exception):
    """The account does not own the address it tries to send from."""


class ConsentRefused(Exception):
    """The recipient may not be written to: it opted out of this sender (`opted_out`),
    or its email address is suppressed (`suppressed`)."""

    def __init__(self, reason: str, new: "NewMessage"):
        super().__init__(f"{new.to_address}: {reason}")
        self.reason, self.new = reason, new


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
    call: dict = field(default_factory=dict)  #: a voice message's call (mode, voice, language, human...)
    send_at: datetime | None = None  #: a scheduled send: stored `scheduled`, released at this time


def message_outbound_fields(*, account_id: int, new: NewMessage, at) -> dict:
    """The fields (by attname) of the row an outbound message is stored as, not yet
    published: `queued` and due at once, or `scheduled` until its `send_at`
    (services/scheduling.py releases it). The one place a new message becomes a row, for
    single sends and batches alike; the fields it leaves out take the model's defaults."""
    encoding, segments = message_segmentation(new.type, new.body)
    return {
        "account_id": account_id,
        "direction": Message.Direction.OUTBOUND,
        "type": new.type,
        "from_address": new.from_address,
        "to_address": new.to_address,
        "subject": new.subject,
        "body": new.body,
        "attachments": new.attachments,
        "encoding": encoding,
        "segments": segments,
        "timestamp": new.timestamp,
        "call": new.call,
        "send_at": new.send_at,
        "status": Message.Status.SCHEDULED if new.send_at is not None else Message.Status.QUEUED,
        "next_attempt_at": new.send_at or at,
        "enqueued_at": None,
        "created_at": at,
        "updated_at": at,
    }


def message_outbound_new(*, account: Account, new: NewMessage, at, conversation_id: int | None = None) -> Message:
    """The unsaved row of an outbound message (message_outbound_fields)."""
    fields = message_outbound_fields(account_id=account.pk, new=new, at=at)
    del fields["account_id"]  # given as the instance, so message.account needs no query
    return Message(account=account, conversation_id=conversation_id, **fields)


def message_send(*, account: Account, new: NewMessage, keyword_reply: bool = False) -> Message:
    """Store `new` as `queued` in its conversation; the outbox relay dispatches it. With a
    `send_at` it is stored `scheduled`, and released to `queued` at that time.

    Once this returns the message is durable and will be sent even if the broker is
    down right now: the relay publishes it once the broker is back. A recipient that
    opted out of the sender, or a suppressed email address, raises ConsentRefused and
    nothing is stored; `keyword_reply` (the answer to STOP, START or HELP, which
    carriers require even to a number that just opted out) is exempt.
    """
    if not account_owns_address(account=account, address=new.from_address):
        raise SenderNotOwned(new.from_address)
    message = message_outbound_new(account=account, new=new, at=timezone.now())
    message.keyword_reply = keyword_reply
    if not message_store(message=message, contact_address=new.to_address, notify=True, check_consent=not keyword_reply):
        email = new.type == Message.Type.EMAIL
        raise ConsentRefused(FailureReason.SUPPRESSED if email else FailureReason.OPTED_OUT, new)
    metrics.message_status(direction=message.direction, channel=message.type, status=message.status)
    metrics.message_segments(
        account_id=account.pk, direction=message.direction, channel=message.type, count=message.segments
    )
    logger.debug(
        "message %s",
        message.status,
        extra={"message_id": message.pk, "channel": message.type, "to": message.to_address},
    )
    return message
