"""Accepting many outbound messages at once: one transaction, the conversations counted
in one statement, the messages and their events streamed in bulk (storing.py), the
relays woken once; the outbox relay publishes them in batches, as it does single sends."""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from config import metrics
from conversations.addresses import participant_pair
from conversations.models import Account
from conversations.selectors import account_owns_address, optouts_among, suppressed_among
from conversations.services import ThreadedMessage, conversations_add_messages
from messaging.models import FailureReason, Message
from messaging.services.events import message_event_wanted, message_ids_events_record
from messaging.services.outbox import outbox_notify
from messaging.services.sending import NewMessage, message_outbound_fields
from messaging.services.storing import messages_store_many

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """What a batch answers about a message it stored."""

    id: int
    conversation_id: int
    status: str
    encoding: str
    segments: int | None


@dataclass(frozen=True)
class BatchSent:
    """What became of each message of a batch, by its position in the batch."""

    messages: dict[int, StoredMessage]  #: stored, queued (or scheduled)
    not_owned: dict[int, str]  #: refused: the account does not own this sender address
    not_consented: dict[int, str]  #: refused: why its recipient may not get it (FailureReason)


def messages_send_batch(*, account: Account, batch: list[NewMessage]) -> BatchSent:
    """Store every message of `batch` whose sender the account owns and whose recipient
    may get it as `queued` (or `scheduled`, with a `send_at`), for the outbox relay to
    dispatch; refuse the others, each for its reason. Nothing is stored when every one
    is refused.

    As with one message: once this returns they are durable and will be sent even if
    the broker is down now; and, as with one message, a number opted out of its sender
    or a suppressed email address is refused (a later opt-out fails it at dispatch).
    """
    owned = {a: account_owns_address(account=account, address=a) for a in {new.from_address for new in batch}}
    not_owned = {index: new.from_address for index, new in enumerate(batch) if not owned[new.from_address]}
    not_consented = _consent_refusals(account, {i: new for i, new in enumerate(batch) if i not in not_owned})
    positions = [index for index in range(len(batch)) if index not in not_owned and index not in not_consented]
    messages = _store(account, [batch[index] for index in positions]) if positions else []
    return BatchSent(
        messages=dict(zip(positions, messages, strict=True)), not_owned=not_owned, not_consented=not_consented
    )


def _consent_refusals(account: Account, batch: dict[int, NewMessage]) -> dict[int, str]:
    """{position: why its recipient may not get it} (opted out of that sender, or a
    suppressed email address): every recipient of the batch looked up in one query per
    kind, not one per item."""
    phones = {(account.pk, n.from_address, n.to_address) for n in batch.values() if n.type != Message.Type.EMAIL}
    emails = {(account.pk, n.to_address) for n in batch.values() if n.type == Message.Type.EMAIL}
    opted_out, suppressed = optouts_among(triples=phones), suppressed_among(pairs=emails)
    refusals = {}
    for index, new in batch.items():
        if new.type == Message.Type.EMAIL and (account.pk, new.to_address) in suppressed:
            refusals[index] = FailureReason.SUPPRESSED
        elif new.type != Message.Type.EMAIL and (account.pk, new.from_address, new.to_address) in opted_out:
            refusals[index] = FailureReason.OPTED_OUT
    return refusals


def _store(account: Account, batch: list[NewMessage]) -> list[StoredMessage]:
    now = timezone.now()
    rows = [message_outbound_fields(account_id=account.pk, new=new, at=now) for new in batch]
    with transaction.atomic():
        conversation_ids = _conversations_add(account, batch, now)
        for row, new in zip(rows, batch, strict=True):
            row["conversation_id"] = conversation_ids[participant_pair(new.from_address, new.to_address)]
        ids = messages_store_many(rows=rows)
        # Their consumer events (message.queued, .scheduled), when the account listens.
        message_ids_events_record(
            message_ids=[
                pk
                for pk, row in zip(ids, rows, strict=True)
                if message_event_wanted(account_id=account.pk, status=row["status"])
            ]
        )
        outbox_notify()
    statuses, segments = Counter(), Counter()
    for row in rows:
        statuses[(row["type"], row["status"])] += 1
        segments[row["type"]] += row["segments"] or 0
    for (message_type, status), count in statuses.items():
        metrics.message_status(direction=Message.Direction.OUTBOUND, channel=message_type, status=status, count=count)
    for message_type, count in segments.items():
        metrics.message_segments(
            account_id=account.pk, direction=Message.Direction.OUTBOUND, channel=message_type, count=count
        )
    return [
        StoredMessage(pk, row["conversation_id"], row["status"], row["encoding"], row["segments"])
        for pk, row in zip(ids, rows, strict=True)
    ]


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
