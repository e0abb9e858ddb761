"""Thin tasks: they take ids and call a service. Dispatch retries are scheduled by the
service in the database and published by the outbox relay (services/outbox.py), not by
Celery's retry."""

import dataclasses
import logging
from collections import Counter

import structlog
from celery import shared_task

from messaging import services
from providers.base import TransientError

logger = logging.getLogger(__name__)


@shared_task(name="messaging.tasks.messages_dispatch")
def messages_dispatch(message_ids: list[int], message_type: str) -> dict:
    """One batch of one channel, as the relay publishes them: what came of the tries."""
    outcomes = services.messages_dispatch(message_ids=message_ids, message_type=message_type)
    return dict(Counter(outcomes.values()))


@shared_task(name="messaging.tasks.message_dispatch")
def message_dispatch(message_id: int) -> str:
    """One message (replays from the shell, tasks published before batches existed)."""
    structlog.contextvars.bind_contextvars(message_id=message_id)
    return services.message_dispatch(message_id=message_id)


@shared_task(name="messaging.tasks.messages_release")
def messages_release() -> int:
    """Release the scheduled messages that fell due (beat, every second by default)."""
    return services.messages_release()


@shared_task(name="messaging.tasks.messages_sweep")
def messages_sweep() -> dict:
    return dataclasses.asdict(services.messages_sweep())


@shared_task(
    name="messaging.tasks.voicemail_recording_copy",
    bind=True,
    autoretry_for=(TransientError,),
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=5,
)
def voicemail_recording_copy(self, message_id: int) -> str:
    """Copy a voicemail's recording into our storage; a provider that cannot hand it over
    now is asked again a few times (then `manage.py copy_recordings` catches up)."""
    structlog.contextvars.bind_contextvars(message_id=message_id)
    try:
        return services.voicemail_recording_copy(message_id=message_id)
    except services.RecordingNotCopied as exc:
        logger.warning("voicemail %s: recording not copied: %s", message_id, exc)
        return ""


@shared_task(name="messaging.tasks.idempotency_keys_prune")
def idempotency_keys_prune() -> int:
    return services.idempotency_keys_prune()
