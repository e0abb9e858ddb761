"""Accepting many outbound messages at once: one transaction and bulk inserts; the
outbox relay publishes them in batches, as it does single sends."""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from config import metrics
from conversations.addresses import participant_pair
from conversations.models import Account
from conversations.selectors import account_owns_address
from conversations.services import ThreadedMessage, conversations_add_messages
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new
from messaging.services.outbox import outbox_notify
from messaging.services.sending import NewMessage, message_outbound_new

logger = logging.getLogger(__name__)

CHUNK = 500


@dataclass(frozen=True)
class BatchSent:
    """What became of each message of a batch, by its position in the batch."""

    messages: dict[int, Message]  #: stored, queued
    not_owned: dict[int, str]  #: refused: the account does not own this sender address


def messages_send_batch(*, account: Account, batch: list[NewMessage]) -> BatchSent:
    """Store every message of `batch` whose sender the account owns as `queued` (or
    `scheduled`, with a `send_at`), for the outbox relay to dispatch; refuse the others.
    Nothing is stored when none is owned.

    As with one message: once this returns they are durable and will be sent even if
    the broker is down now.
    """
    owned = {a: account_owns_address(account=account, address=a) for a in {new.from_address for new in batch}}
    not_owned = {index: new.from_address for index, new in enumerate(batch) if not owned[new.from_address]}
    positions = [index for index in range(len(batch)) if index not in not_owned]
    messages = _store(account, [batch[index] for index in positions]) if positions else []
    return BatchSent(messages=dict(zip(positions, messages, strict=True)), not_owned=not_owned)


def _store(account: Account, batch: list[NewMessage]) -> list[Message]:
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
            batch_size=CHUNK,
        )
        MessageEvent.objects.bulk_create(
            [event_new(m.pk, MessageEvent.Kind.STATUS, m.status, at=now) for m in messages],
            batch_size=CHUNK,
        )
        outbox_notify()
    for (message_type, status), count in Counter((m.type, m.status) for m in messages).items():
        metrics.message_status(direction=Message.Direction.OUTBOUND, channel=message_type, status=status, count=count)
    segments = Counter()
    for m in messages:
        segments[m.type] += m.segments or 0
    for message_type, count in segments.items():
        metrics.message_segments(
            account_id=account.pk, direction=Message.Direction.OUTBOUND, channel=message_type, count=count
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
