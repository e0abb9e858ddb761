"""Events for our API consumers (docs/webhooks.md): the one seam through which any app
reports a change it has just written.

The webhooks app records the events and delivers them, and plugs its recorder in here
when it loads (webhooks/apps.py), so the apps below it report events without importing
it. An event is an outbox row: call `events_record` inside the transaction that writes
the change, so none is lost (the change committed, the event not) or invented (the
event committed, the change rolled back). Ask `event_wanted` first: it answers from a
per-process cache, so a change nobody listens to costs its writer nothing more.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class EventType(StrEnum):
    MESSAGE_SCHEDULED = "message.scheduled"
    MESSAGE_QUEUED = "message.queued"
    MESSAGE_CANCELED = "message.canceled"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_UNDELIVERED = "message.undelivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_RECEIVED = "message.received"
    OPTOUT_CREATED = "optout.created"
    OPTOUT_DELETED = "optout.deleted"
    SUPPRESSION_CREATED = "suppression.created"
    SUPPRESSION_DELETED = "suppression.deleted"


#: the event a message's status reports (a message entering that status)
MESSAGE_STATUS_EVENTS = {
    "scheduled": EventType.MESSAGE_SCHEDULED,
    "queued": EventType.MESSAGE_QUEUED,
    "canceled": EventType.MESSAGE_CANCELED,
    "sent": EventType.MESSAGE_SENT,
    "delivered": EventType.MESSAGE_DELIVERED,
    "undelivered": EventType.MESSAGE_UNDELIVERED,
    "failed": EventType.MESSAGE_FAILED,
    "received": EventType.MESSAGE_RECEIVED,
}


@dataclass(frozen=True)
class NewEvent:
    account_id: int
    type: str  #: an EventType
    payload: dict  #: the resource as the API shows it, after the change


class Recorder(Protocol):
    def wanted(self, account_id: int, event_type: str) -> bool: ...

    def record(self, events: list[NewEvent]) -> None: ...


_recorder: Recorder | None = None


def events_recorder_set(recorder: Recorder | None) -> None:
    global _recorder
    _recorder = recorder


def event_wanted(*, account_id: int, event_type: str) -> bool:
    """Whether an enabled endpoint of the account listens to `event_type` (as this
    process last saw the endpoints: a change reaches every process within
    WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS)."""
    return _recorder is not None and _recorder.wanted(account_id, event_type)


def events_record(events: list[NewEvent]) -> None:
    """Record `events` in the caller's transaction; they are fanned out to the endpoints
    by a worker once it commits. Events nobody wants are dropped here."""
    if _recorder is None:
        return
    wanted = [e for e in events if _recorder.wanted(e.account_id, e.type)]
    if wanted:
        _recorder.record(wanted)
