"""Writing the audit trail, and the consumer events (config/events.py) of status changes:
shared by every service."""

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from config.events import MESSAGE_STATUS_EVENTS, NewEvent, event_wanted, events_record
from messaging.models import Message, MessageEvent


def event_new(message_id: int, kind: str, status: str = "", at: datetime | None = None, **detail) -> MessageEvent:
    return MessageEvent(message_id=message_id, kind=kind, status=status, detail=detail, created_at=at or timezone.now())


def message_event_wanted(*, account_id: int, status: str) -> bool:
    """Whether entering `status` is worth a consumer event for the account (cheap: no query)."""
    event_type = MESSAGE_STATUS_EVENTS.get(status)
    return event_type is not None and event_wanted(account_id=account_id, event_type=event_type)


def messages_events_record(*, messages: Iterable[Message]) -> None:
    """Record the consumer event of each message's current status (message.queued,
    .sent, ...) with the message as the API shows it, in the caller's transaction, for
    the accounts that listen to it. Call it inside the transaction that wrote the status."""
    from messaging.serializers import MessageSerializer  # the serializers import the services

    serializer = MessageSerializer()
    events_record(
        [
            NewEvent(
                account_id=m.account_id,
                type=MESSAGE_STATUS_EVENTS[m.status],
                payload=serializer.to_representation(m),
            )
            for m in messages
            if message_event_wanted(account_id=m.account_id, status=m.status)
        ]
    )


def message_ids_events_record(*, message_ids: list[int]) -> None:
    """`messages_events_record` for messages written by id (a bulk UPDATE): loaded here."""
    if message_ids:
        messages_events_record(messages=Message.objects.filter(pk__in=message_ids).order_by("pk"))
