"""Reads of the consumer webhooks worth naming: always within one account."""

import uuid

from django.db.models import QuerySet

from conversations.models import Account
from webhooks.models import Delivery, Event, WebhookEndpoint


def endpoint_list(*, account: Account) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(account=account)


def endpoint_get(*, account: Account, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(account=account, pk=endpoint_id).first()


def delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[Delivery]:
    return Delivery.objects.filter(endpoint=endpoint).select_related("event").defer("event__payload")


def event_get(*, account: Account, public_id: str) -> Event | None:
    """The account's event by its public id (`evt_` + hex), or None."""
    try:
        event_id = uuid.UUID(hex=public_id.removeprefix("evt_"))
    except ValueError:
        return None
    return Event.objects.filter(account=account, pk=event_id).first()
