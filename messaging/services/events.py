"""Writing the audit trail: shared by every service."""

from datetime import datetime

from django.utils import timezone

from messaging.models import MessageEvent


def event_new(message_id: int, kind: str, status: str = "", at: datetime | None = None, **detail) -> MessageEvent:
    return MessageEvent(message_id=message_id, kind=kind, status=status, detail=detail, created_at=at or timezone.now())
