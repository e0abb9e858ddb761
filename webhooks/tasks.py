"""Thin tasks for the consumer webhooks, on their own `webhooks` queue so that a slow
endpoint never holds up a send. Retries are scheduled by the service (a countdown for a
short wait, the database and the sweep for a long one), not by Celery's retry."""

from celery import shared_task
from django.conf import settings

from webhooks import deliveries, events


@shared_task(name="webhooks.tasks.events_fan_out")
def events_fan_out(event_ids: list[str] | None = None) -> int:
    """These events, or (no ids) every event waiting."""
    if event_ids is None:
        return events.events_fan_out_waiting()
    return events.events_fan_out(event_ids=event_ids)


@shared_task(
    name="webhooks.tasks.delivery_attempt",
    # Within its lease (deliveries.delivery_lease_seconds).
    time_limit=int(settings.WEBHOOK_TIMEOUT_SECONDS) + 5,
    soft_time_limit=int(settings.WEBHOOK_TIMEOUT_SECONDS) + 3,
)
def delivery_attempt(delivery_id: int) -> str:
    return deliveries.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.webhooks_sweep")
def webhooks_sweep() -> dict:
    return events.webhooks_sweep()


@shared_task(name="webhooks.tasks.events_prune")
def events_prune() -> int:
    return events.events_prune()
