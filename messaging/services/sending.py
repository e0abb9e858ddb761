"""Accepting an outbound message: one statement (or one transaction). The stored row is
the outbox: the relay (services/outbox.py) publishes it, not the request."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from config import metrics
from conversations.addresses import participant_pair
from conversations.models import Account
from conversations.selectors import account_owns_address
from conversations.services import CONVERSATION_BUMP_SQL, ThreadedMessage, conversation_add_message
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new
from messaging.services.outbox import outbox_notify, outbox_notify_sql

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


def message_outbound_new(*, account: Account, new: NewMessage, at, conversation_id: int | None = None) -> Message:
    """The unsaved row of an outbound message, `queued`, due at once, not yet published."""
    return Message(
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
        next_attempt_at=at,
        enqueued_at=None,
        created_at=at,
        updated_at=at,
    )


def message_send(*, account: Account, new: NewMessage) -> Message:
    """Store `new` as `queued` in its conversation; the outbox relay dispatches it.

    Once this returns the message is durable and will be sent even if the broker is
    down right now: the relay publishes it once the broker is back.
    """
    if not account_owns_address(account=account, address=new.from_address):
        raise SenderNotOwned(new.from_address)
    now = timezone.now()
    message = message_outbound_new(account=account, new=new, at=now)
    threaded = ThreadedMessage(
        account_id=account.pk,
        from_address=new.from_address,
        to_address=new.to_address,
        contact_address=new.to_address,
        direction=Message.Direction.OUTBOUND,
        type=new.type,
        preview=new.body,
        at=now,
    )
    if not (connection.vendor == "postgresql" and _insert_into_existing_conversation(message, threaded)):
        with transaction.atomic():
            message.conversation_id = conversation_add_message(message=threaded)
            message.save(force_insert=True)
            event_new(message.pk, MessageEvent.Kind.STATUS, Message.Status.QUEUED, at=now).save(force_insert=True)
            outbox_notify()
    metrics.message_status(direction=message.direction, channel=message.type, status=message.status)
    logger.info("message queued", extra={"message_id": message.pk, "channel": message.type, "to": message.to_address})
    return message


# A reply in an existing conversation, in one statement: count it in the conversation,
# insert the message and its `queued` event, wake the outbox relays. One round trip
# instead of five (a send's time is mostly round trips to PostgreSQL:
# docs/performance.md). No row when the conversation is new: the caller then takes the
# transaction path, which creates it.
_EXISTING_SQL = f"""
WITH bumped AS ({CONVERSATION_BUMP_SQL}), inserted AS (
    INSERT INTO messaging_message ({{columns}}) SELECT {{values}} FROM bumped RETURNING id, conversation_id
), event AS (
    INSERT INTO messaging_messageevent (message_id, kind, status, detail, created_at)
    SELECT id, %s, %s, %s, %s FROM inserted
), woken AS ({{notify}})
SELECT id, conversation_id FROM inserted, woken
"""  # noqa: S608 (built from constants; the values go as parameters)


def _insert_into_existing_conversation(message: Message, threaded: ThreadedMessage) -> bool:
    a, b = participant_pair(threaded.from_address, threaded.to_address)
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join("bumped.id" if f.attname == "conversation_id" else "%s" for f in fields)
    params = [
        threaded.at,
        threaded.preview[:160],
        threaded.direction,
        threaded.type,
        threaded.account_id,
        a,
        b,
        *(f.get_db_prep_save(f.pre_save(message, True), connection) for f in fields if f.attname != "conversation_id"),
        MessageEvent.Kind.STATUS,
        Message.Status.QUEUED,
        MessageEvent._meta.get_field("detail").get_db_prep_save({}, connection),
        threaded.at,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_EXISTING_SQL.format(columns=columns, values=values, notify=outbox_notify_sql()), params)
        row = cursor.fetchone()
    if row is None:
        return False
    message.pk, message.conversation_id = row
    message._state.adding = False
    return True
