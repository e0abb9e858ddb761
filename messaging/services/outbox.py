"""The outbox relay: the message row is the outbox, and the relay publishes it.

A send only stores its message (`queued`, `enqueued_at` empty: never published) and,
on PostgreSQL, NOTIFYs in the same transaction. The relay, a thread in every worker
(config/celery.py) or `manage.py relay_messages`, wakes at once, claims due unpublished
rows with FOR UPDATE SKIP LOCKED (so any number of relays share the work), publishes
one dispatch task per batch and marks them published in the same transaction. The
publish happens before the commit: a failed publish rolls the marks back and the rows
are taken again, and a commit that fails after a publish leaves a task whose claim
finds nothing or the message itself, which is harmless. Nothing is lost either way.
"""

import logging
import threading
import time
from collections import defaultdict

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from config import metrics
from config.celery import app as celery_app
from messaging.models import Message

logger = logging.getLogger(__name__)

DISPATCH_TASK = "messaging.tasks.messages_dispatch"
NOTIFY_CHANNEL = "messaging_outbox"


def _unpublished():
    return Message.objects.filter(status=Message.Status.QUEUED, enqueued_at__isnull=True)


def outbox_relay(*, limit: int | None = None) -> int:
    """Publish the due messages no task was published for, one dispatch task per
    batch of MESSAGING_DISPATCH_BATCH_SIZE; returns how many were published (0 when the
    broker refused: they stay unpublished and are taken again)."""
    now = timezone.now()
    limit = limit or settings.MESSAGING_RELAY_LIMIT
    try:
        with transaction.atomic():
            rows = list(
                _unpublished()
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .select_for_update(skip_locked=True)
                .order_by("next_attempt_at")
                .values_list("id", "type")[:limit]
            )
            if not rows:
                return 0
            _publish(rows)
            Message.objects.filter(pk__in=[pk for pk, _ in rows]).update(enqueued_at=now)
    except _PublishFailed as exc:
        logger.warning("outbox: publish failed for %d message(s); they stay unpublished: %s", exc.count, exc.reason)
        return 0
    metrics.OUTBOX_PUBLISHED.inc(len(rows))
    return len(rows)


class _PublishFailed(Exception):
    def __init__(self, count: int, reason: str):
        super().__init__(reason)
        self.count, self.reason = count, reason


def _publish(rows: list[tuple[int, str]]) -> None:
    by_type: dict[str, list[int]] = defaultdict(list)
    for pk, message_type in rows:
        by_type[message_type].append(pk)
    size = settings.MESSAGING_DISPATCH_BATCH_SIZE
    try:
        for message_type, ids in by_type.items():
            for start in range(0, len(ids), size):
                celery_app.send_task(DISPATCH_TASK, args=[ids[start : start + size], message_type], queue=message_type)
    except Exception as exc:  # any broker failure: the transaction must roll back
        raise _PublishFailed(len(rows), repr(exc)) from exc


def outbox_next_due() -> float | None:
    """Seconds until the earliest unpublished queued message is due (0 if one is due
    now), None when there is none."""
    due = _unpublished().aggregate(due=Min("next_attempt_at"))["due"]
    if due is None:
        return 0.0 if _unpublished().exists() else None
    return max((due - timezone.now()).total_seconds(), 0.0)


def outbox_notify_sql() -> str:
    """A statement that wakes the relays when its transaction commits ('' where the
    database cannot: the relays poll there)."""
    return f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')" if connection.vendor == "postgresql" else ""


def outbox_notify() -> None:
    """Wake the relays when the current transaction commits."""
    if sql := outbox_notify_sql():
        with connection.cursor() as cursor:
            cursor.execute(sql)


def outbox_run(*, stop: threading.Event) -> None:
    """The relay loop: publish what is due, then sleep until a NOTIFY, the next
    retry falls due, or MESSAGING_RELAY_POLL_SECONDS pass. A short linger after a
    partial batch lets sends arriving together leave in one task."""
    listener = _Listener()
    poll, linger = settings.MESSAGING_RELAY_POLL_SECONDS, settings.MESSAGING_RELAY_LINGER_SECONDS
    while not stop.is_set():
        try:
            close_old_connections()
            published = outbox_relay()
            if published >= settings.MESSAGING_RELAY_LIMIT:
                continue
            if published:
                stop.wait(linger)
            due = outbox_next_due()
            listener.wait(min(poll, due) if due is not None else poll, stop)
        except Exception:
            logger.exception("outbox relay: an iteration failed; retrying in %ss", poll)
            connection.close()
            listener.close()
            stop.wait(poll)
    listener.close()
    connection.close()


class _Listener:
    """Waits for the outbox NOTIFY on a connection of its own (PostgreSQL, threads);
    elsewhere (SQLite, a gevent pool) it just sleeps, and the relay polls."""

    def __init__(self):
        self._conn = None

    def wait(self, seconds: float, stop: threading.Event) -> None:
        conn = self._connection()
        if conn is None:
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            # Short slices, so a stopping worker is not held up by a quiet outbox.
            if next(iter(conn.notifies(timeout=min(left, 1.0), stop_after=1)), None) is not None:
                for _ in conn.notifies(timeout=0.001):  # the rest that came with it
                    pass
                return

    def _connection(self):
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if connection.vendor != "postgresql" or _gevent_patched():
            return None
        import psycopg

        params = connection.get_connection_params()
        self._conn = psycopg.Connection.connect(**params, autocommit=True)
        self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")
