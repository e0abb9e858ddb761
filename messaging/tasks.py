"""Thin tasks: they take ids and call a service. Dispatch retries are scheduled by the
service in the database (see services/dispatch.py), not by Celery's retry."""

import dataclasses

import structlog
from celery import shared_task

from messaging import services


@shared_task(name="messaging.tasks.message_dispatch")
def message_dispatch(message_id: int) -> str:
    structlog.contextvars.bind_contextvars(message_id=message_id)
    return services.message_dispatch(message_id=message_id)


@shared_task(name="messaging.tasks.messages_sweep")
def messages_sweep() -> dict:
    return dataclasses.asdict(services.messages_sweep())


@shared_task(name="messaging.tasks.idempotency_keys_prune")
def idempotency_keys_prune() -> int:
    return services.idempotency_keys_prune()


@shared_task(name="messaging.tasks.messages_enqueue")
def messages_enqueue(message_ids: list[int], message_type: str) -> int:
    return services.messages_enqueue(message_ids=message_ids, message_type=message_type)
