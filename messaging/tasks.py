"""Thin tasks: they take ids and call a service. Dispatch retries are scheduled by the
service in the database and published by the outbox relay (services/outbox.py), not by
Celery's retry."""

import dataclasses
from collections import Counter

import structlog
from celery import shared_task

from messaging import services


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


@shared_task(name="messaging.tasks.messages_sweep")
def messages_sweep() -> dict:
    return dataclasses.asdict(services.messages_sweep())


@shared_task(name="messaging.tasks.idempotency_keys_prune")
def idempotency_keys_prune() -> int:
    return services.idempotency_keys_prune()
