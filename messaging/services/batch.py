"""Accepting many outbound messages at once: one transaction, bulk inserts, and one
fan-out task per queue instead of one publish per message on the request path."""

import logging
from collections import Counter, defaultdict
from functools import partial

from django.db import transaction
from django.utils import timezone

from config import metrics
from config.celery import app as celery_app
from conversations.addresses import participant_pair
from conversations.models import Account
from conversations.services import ThreadedMessage, conversations_add_messages
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new, message_enqueue
from messaging.services.sending import NewMessage, message_outbound_new

logger = logging.getLogger(__name__)

ENQUEUE_MANY_TASK = "messaging.tasks.messages_enqueue"
FAN_OUT_CHUNK = 500


def messages_send_batch(*, account: Account, batch: list[NewMessage]) -> list[Message]:
    """Store every message of `batch` as `queued` and dispatch them after commit; the
    caller has validated them and checked the account owns their senders.

    As with one message: once this returns they are durable and will be sent even if
    the broker is down now (the sweep publishes queued messages no worker took).
    """
    now = timezone.now()
    with transaction.atomic():
        conversation_ids = _conversations_add(account, batch, now)
        messages = Message.objects.bulk_create(
            [
                message_outbound_new(
                    account=account,
                    new=new,
                    at=now,
                    conversation_id=conversation_ids[participant_pair(new.from_address, new.to_address)],
                )
                for new in batch
            ],
            batch_size=FAN_OUT_CHUNK,
        )
        MessageEvent.objects.bulk_create(
            [event_new(m.pk, MessageEvent.Kind.STATUS, Message.Status.QUEUED, at=now) for m in messages],
            batch_size=FAN_OUT_CHUNK,
        )
        transaction.on_commit(partial(_fan_out, [(m.pk, m.type) for m in messages]))
    for message_type, count in Counter(m.type for m in messages).items():
        metrics.message_status(
            direction=Message.Direction.OUTBOUND, channel=message_type, status=Message.Status.QUEUED, count=count
        )
    return messages


def _conversations_add(account: Account, batch: list[NewMessage], now) -> dict[tuple[str, str], int]:
    """Count each message in its conversation: one entry per distinct pair (its last
    message for the preview), written in bulk."""
    by_pair: dict[tuple[str, str], list[NewMessage]] = defaultdict(list)
    for new in batch:
        by_pair[participant_pair(new.from_address, new.to_address)].append(new)
    groups = [
        (
            ThreadedMessage(
                account_id=account.pk,
                from_address=group[-1].from_address,
                to_address=group[-1].to_address,
                contact_address=group[-1].to_address,
                direction=Message.Direction.OUTBOUND,
                type=group[-1].type,
                preview=group[-1].body,
                at=now,
            ),
            len(group),
        )
        for group in by_pair.values()
    ]
    return conversations_add_messages(account_id=account.pk, groups=groups)


def _fan_out(messages: list[tuple[int, str]]) -> None:
    """Publish one task per chunk of ids and queue; a worker publishes their dispatch
    tasks. If this fails, the sweep publishes the messages one by one instead."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for message_id, message_type in messages:
        by_type[message_type].append(message_id)
    for message_type, ids in by_type.items():
        for start in range(0, len(ids), FAN_OUT_CHUNK):
            chunk = ids[start : start + FAN_OUT_CHUNK]
            try:
                celery_app.send_task(ENQUEUE_MANY_TASK, args=[chunk, message_type], queue=message_type)
            except Exception:
                logger.warning("publish failed for %s %s messages; the sweep will retry them", len(ids), message_type)
                return


def messages_enqueue(*, message_ids: list[int], message_type: str) -> int:
    """The fan-out task's work: one dispatch task per message."""
    return sum(message_enqueue(message_id=message_id, message_type=message_type) for message_id in message_ids)
