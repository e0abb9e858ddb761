"""Recording events for our API consumers and fanning them out to their endpoints.

`EventRecorder` is what config/events.py calls: it decides from a per-process map of
account -> the event types its enabled endpoints listen to, rebuilt when any endpoint
changes (a version in the shared cache, read at most every
WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS), so an account without endpoints pays a dict
lookup per change. Recording inserts the events in the caller's transaction and, once
it commits, asks a worker to fan them out: one Delivery per matching enabled endpoint.
A lost fan-out task is caught by the sweep (events with no `fanned_out_at`).
"""

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from config.events import NewEvent
from webhooks.models import DELIVERY_OPEN, Delivery, Event, WebhookEndpoint

logger = logging.getLogger(__name__)

FAN_OUT_TASK = "events_fan_out"  #: in webhooks/tasks.py
DELIVER_TASK = "delivery_attempt"
QUEUE = "webhooks"
_VERSION_KEY = "webhooks:endpoints:version"
_ALL = "*"


class _Subscriptions:
    """account id -> the event types its enabled endpoints want ({"*"}: all of them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._types: dict[int, frozenset[str]] = {}
        self._version = None
        self._checked_at = float("-inf")

    def wanted(self, account_id: int, event_type: str) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= settings.WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS:
            self._recheck(now)
        types = self._types.get(account_id)
        if types is None:
            types = self._load(account_id)
        return bool(types) and (_ALL in types or event_type in types)

    def _recheck(self, now: float) -> None:
        version = cache.get(_VERSION_KEY)
        with self._lock:
            if version != self._version:
                self._types, self._version = {}, version
            self._checked_at = now

    def _load(self, account_id: int) -> frozenset[str]:
        types: set[str] = set()
        for listed in WebhookEndpoint.objects.filter(account_id=account_id, enabled=True).values_list(
            "event_types", flat=True
        ):
            types |= set(listed) if listed else {_ALL}
        frozen = frozenset(types)
        self._types[account_id] = frozen
        return frozen

    def forget(self) -> None:
        with self._lock:
            self._types = {}
            self._checked_at = float("-inf")


subscriptions = _Subscriptions()


def endpoints_changed() -> None:
    """Every process rebuilds its map of who listens to what (this one at once, the
    others within WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS). Call after an endpoint is
    created, changed, disabled or deleted."""
    cache.set(_VERSION_KEY, uuid.uuid4().hex, None)
    subscriptions.forget()


class EventRecorder:
    def wanted(self, account_id: int, event_type: str) -> bool:
        return subscriptions.wanted(account_id, event_type)

    def record(self, events: list[NewEvent]) -> None:
        events_store(events)


def events_store(events: list[NewEvent]) -> list[Event]:
    """Insert `events` (in the caller's transaction) and have them fanned out once it commits."""
    now = timezone.now()
    rows = Event.objects.bulk_create(
        [
            Event(id=uuid.uuid4(), account_id=e.account_id, type=e.type, payload=e.payload, created_at=now)
            for e in events
        ]
    )
    transaction.on_commit(_fan_out_soon)
    return rows


_fan_out_published_at = float("-inf")


def _fan_out_soon() -> None:
    """Have a worker fan out what was just recorded, WEBHOOK_FAN_OUT_LINGER_SECONDS from
    now: one task per process per linger, which takes every event waiting by then, rather
    than a broker publish for every send (the larger part of what an event cost a send).
    An event committed inside the window was committed before that task runs, so it is
    taken; the sweep catches a task the broker lost."""
    global _fan_out_published_at
    linger = settings.WEBHOOK_FAN_OUT_LINGER_SECONDS
    now = time.monotonic()
    if linger > 0 and now < _fan_out_published_at + linger:
        return
    _fan_out_published_at = now
    _publish(FAN_OUT_TASK, [], countdown=linger or None)


def _publish(task: str, args: list, *, countdown: float | None = None) -> None:
    """Publish, and shrug off a broker outage: the sweep publishes what is due again."""
    from webhooks import tasks  # the tasks call this module

    try:
        getattr(tasks, task).apply_async(args=args, queue=QUEUE, countdown=countdown)
    except Exception:
        logger.warning("webhooks: could not publish %s; the sweep will", task, exc_info=True)


def events_fan_out(*, event_ids: list[str] | None = None, before: datetime | None = None, limit: int = 500) -> int:
    """Make the deliveries of events not fanned out yet, one per enabled endpoint of its
    account that listens to its type, and publish them once they commit: the events
    `event_ids`, or else the oldest `limit` waiting (recorded before `before`, if given).
    How many events it fanned out; events another fan-out holds are left to it."""
    now = timezone.now()
    with transaction.atomic():
        events = Event.objects.filter(fanned_out_at__isnull=True)
        if event_ids is not None:
            events = events.filter(pk__in=event_ids)
        else:
            events = events.filter(created_at__lt=before or now).order_by("created_at")
        if connection.features.has_select_for_update_skip_locked:
            events = events.select_for_update(skip_locked=True)  # two fan-outs of one event: one makes it
        events = events.only("id", "account_id", "type")
        events = list(events if event_ids is not None else events[:limit])
        if not events:
            return 0
        endpoints: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            account_id__in={e.account_id for e in events}, enabled=True
        ).only("id", "account_id", "event_types"):
            endpoints.setdefault(endpoint.account_id, []).append(endpoint)
        deliveries = Delivery.objects.bulk_create(
            [
                Delivery(event_id=e.id, endpoint_id=ep.id, next_attempt_at=now, created_at=now)
                for e in events
                for ep in endpoints.get(e.account_id, [])
                if ep.listens_to(e.type)
            ]
        )
        Event.objects.filter(pk__in=[e.id for e in events]).update(fanned_out_at=now)
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: deliveries_publish(ids))
    return len(events)


def events_fan_out_waiting(*, before: datetime | None = None, chunk: int = 500) -> int:
    """Fan out every event waiting (recorded before `before`), `chunk` at a time; how many."""
    fanned = 0
    while True:
        count = events_fan_out(before=before, limit=chunk)
        fanned += count
        if count < chunk:
            return fanned


def deliveries_publish(delivery_ids: list[int], *, countdown: float | None = None) -> None:
    for delivery_id in delivery_ids:
        _publish(DELIVER_TASK, [delivery_id], countdown=countdown)


def webhooks_sweep(*, now: datetime | None = None) -> dict:
    """What beat does: fan out the events whose task was lost, and publish the open
    deliveries nobody took WEBHOOK_REPUBLISH_AFTER_SECONDS after they fell due: a long
    wait that ran out (kept in the database, not in the broker), a task lost with its
    broker, a worker killed mid-try (its lease ran out). Each one published is marked
    (`next_attempt_at` = now), so the next sweep leaves it to its task for as long again;
    a task that finds its delivery taken or finished does nothing."""
    now = now or timezone.now()
    lost = now - timedelta(seconds=settings.WEBHOOK_REPUBLISH_AFTER_SECONDS)
    fanned = events_fan_out_waiting(before=lost)
    due = list(
        Delivery.objects.filter(status__in=DELIVERY_OPEN, next_attempt_at__lte=lost)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:1000]
    )
    if due:
        Delivery.objects.filter(pk__in=due, status__in=DELIVERY_OPEN).update(next_attempt_at=now)
        deliveries_publish(due)
    return {"fanned_out": fanned, "published": len(due)}


def events_prune(*, now: datetime | None = None, chunk: int = 1000) -> int:
    """Delete the events older than WEBHOOK_EVENT_RETENTION_DAYS, with their deliveries,
    unless one is still open (it is deleted once it ends); how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_EVENT_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .exclude(deliveries__status__in=DELIVERY_OPEN)
            .values_list("id", flat=True)[:chunk]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            Delivery.objects.filter(event_id__in=ids).delete()
            deleted += Event.objects.filter(pk__in=ids).delete()[0]
