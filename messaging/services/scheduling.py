"""Scheduled sends: a message stored `scheduled` with its `send_at` is released to
`queued` when it falls due, or canceled before.

The release is beat's (messaging.tasks.messages_release, every
MESSAGING_SCHEDULE_RELEASE_INTERVAL_SECONDS) and the database's, never a Celery ETA: a
broker holding tasks for days redelivers them (Redis' visibility timeout) and loses
them with its queue. Each chunk is one statement that takes the earliest due rows
with FOR UPDATE SKIP LOCKED, moves them to `queued` with their events and commits, then
the outbox relay is woken and publishes them within milliseconds. Two releases running
at once take different rows, and a release killed between chunks leaves the rest
`scheduled` for the next one: each message is released once.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config import metrics
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new, message_event_wanted, message_ids_events_record
from messaging.services.outbox import outbox_notify
from messaging.services.transitions import CancelOutcome, cancel_outcome

logger = logging.getLogger(__name__)

# PostgreSQL: move the chunk and write its events in one round trip.
_RELEASE = """
WITH due AS (
    SELECT id FROM {message}
    WHERE status = %(scheduled)s AND send_at <= %(now)s
    ORDER BY send_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), released AS (
    UPDATE {message} AS m
    SET status = %(queued)s, next_attempt_at = %(now)s, enqueued_at = NULL, updated_at = %(now)s
    FROM due WHERE m.id = due.id AND m.status = %(scheduled)s
    RETURNING m.id, m.type, m.account_id
), event AS (
    INSERT INTO {event} (message_id, kind, status, detail, created_at)
    SELECT id, %(kind)s, %(queued)s, '{{"released": true}}', %(now)s FROM released
)
SELECT id, type, account_id FROM released
"""

# Elsewhere (SQLite): one statement moves the chunk (a writer holds the whole database,
# so no other release can take the same rows); the events follow in its transaction.
_RELEASE_PORTABLE = """
UPDATE {message}
SET status = %(queued)s, next_attempt_at = %(now)s, enqueued_at = NULL, updated_at = %(now)s
WHERE status = %(scheduled)s AND id IN (
    SELECT id FROM {message} WHERE status = %(scheduled)s AND send_at <= %(now)s ORDER BY send_at LIMIT %(limit)s
)
RETURNING id, type, account_id
"""


@cache
def _statement(vendor: str) -> str:
    quote = connection.ops.quote_name
    template = _RELEASE if vendor == "postgresql" else _RELEASE_PORTABLE
    return template.format(message=quote(Message._meta.db_table), event=quote(MessageEvent._meta.db_table))


def messages_release_chunk(*, limit: int, now: datetime | None = None) -> int:
    """Release up to `limit` due scheduled messages, earliest first, in one transaction
    that also wakes the outbox relays; returns how many."""
    now = now or timezone.now()
    params = {
        "scheduled": Message.Status.SCHEDULED,
        "queued": Message.Status.QUEUED,
        "kind": MessageEvent.Kind.STATUS,
        "limit": limit,
        "now": now if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(now),
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_statement(connection.vendor), params)
            rows = cursor.fetchall()
        by_type = Counter(message_type for _, message_type, _ in rows)
        if connection.vendor != "postgresql":
            MessageEvent.objects.bulk_create(
                event_new(pk, MessageEvent.Kind.STATUS, Message.Status.QUEUED, at=now, released=True)
                for pk, _, _ in rows
            )
        # Their consumer events (message.queued), when their accounts listen.
        message_ids_events_record(
            message_ids=[
                pk
                for pk, _, account_id in rows
                if message_event_wanted(account_id=account_id, status=Message.Status.QUEUED)
            ]
        )
        if by_type:
            outbox_notify()
    for message_type, count in by_type.items():
        metrics.message_status(
            direction=Message.Direction.OUTBOUND, channel=message_type, status=Message.Status.QUEUED, count=count
        )
    return sum(by_type.values())


def messages_release(*, chunk: int | None = None, budget_seconds: float | None = None) -> int:
    """Release every due scheduled message, `chunk` at a time (each chunk commits on its
    own), for at most `budget_seconds`; returns how many. What is left when the budget
    runs out (or the process dies) stays `scheduled` for the next run."""
    chunk = chunk or settings.MESSAGING_SCHEDULE_RELEASE_CHUNK
    budget = settings.MESSAGING_SCHEDULE_RELEASE_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    released = 0
    while True:
        count = messages_release_chunk(limit=chunk)
        released += count
        if count < chunk or time.monotonic() >= deadline:
            break
    if released:
        logger.info("released %d scheduled message(s)", released)
    return released


@dataclass(frozen=True)
class Canceled:
    outcome: CancelOutcome
    message: Message


def message_cancel(*, message: Message, actor: str) -> Canceled:
    """Cancel a scheduled message. The conditional update settles a race with the
    release: whichever commits first wins, and the other changes nothing. A message
    already canceled answers `already`; one already released (or never scheduled)
    `too_late`, with nothing changed."""
    now = timezone.now()
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=Message.Status.SCHEDULED).update(
            status=Message.Status.CANCELED, next_attempt_at=None, updated_at=now
        )
        if moved:
            event_new(message.pk, MessageEvent.Kind.STATUS, Message.Status.CANCELED, at=now, actor=actor).save(
                force_insert=True
            )
            if message_event_wanted(account_id=message.account_id, status=Message.Status.CANCELED):
                message_ids_events_record(message_ids=[message.pk])
    message.refresh_from_db()
    if moved:
        metrics.message_status(direction=message.direction, channel=message.type, status=Message.Status.CANCELED)
        return Canceled(CancelOutcome.CANCELED, message)
    return Canceled(cancel_outcome(message.status), message)
