"""Writing the audit trail and publishing dispatch tasks: shared by every service."""

import logging
from datetime import datetime

from django.utils import timezone

from config.celery import app as celery_app
from messaging.models import MessageEvent

logger = logging.getLogger(__name__)

DISPATCH_TASK = "messaging.tasks.message_dispatch"


def event_new(message_id: int, kind: str, status: str = "", at: datetime | None = None, **detail) -> MessageEvent:
    return MessageEvent(message_id=message_id, kind=kind, status=status, detail=detail, created_at=at or timezone.now())


def event_record(message_id: int, kind: str, status: str = "", **detail) -> MessageEvent:
    event = event_new(message_id, kind, status, **detail)
    event.save(force_insert=True)
    return event


def message_enqueue(*, message_id: int, message_type: str, countdown: float | None = None) -> bool:
    """Publish the dispatch task on the type's queue. A broker failure is logged, not
    raised: the message row is the outbox and the sweep publishes it again."""
    try:
        celery_app.send_task(DISPATCH_TASK, args=[message_id], queue=message_type, countdown=countdown)
    except Exception:
        logger.warning("publish failed for message %s; the sweep will retry it", message_id, exc_info=True)
        return False
    return True
