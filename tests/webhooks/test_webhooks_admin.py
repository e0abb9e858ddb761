"""Staff register endpoints (the URL checked, the secret shown once), read the delivery
log and replay failed deliveries from the admin."""

import pytest

from conversations.selectors import account_development
from tests.factories import SMS
from webhooks.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_staff_register_an_endpoint_and_replay_what_failed(admin_client, api, consumer, eager_webhooks, settings):
    account = account_development()
    added = admin_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"account": account.pk, "url": consumer.url, "event_types": ["message.queued"], "enabled": "on"},
        follow=True,
    )
    assert added.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.event_types == ["message.queued"]
    assert endpoint.secret in added.content.decode()  # shown once, to copy to the consumer

    consumer.answers = [410]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    log = admin_client.get("/admin/webhooks/delivery/")
    assert log.status_code == 200 and b"message.queued" in log.content
    assert admin_client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/").status_code == 200

    with eager_webhooks():
        replayed = admin_client.post(
            "/admin/webhooks/delivery/", {"action": "replay", "_selected_action": [delivery.pk]}, follow=True
        )
    assert b"Re-queued 1 deliveries" in replayed.content
    assert Delivery.objects.get().status == "succeeded"
    assert consumer.received[-1].verified(endpoint.secret)["type"] == "message.queued"


def test_the_admin_refuses_a_private_address_when_they_are_not_allowed(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = admin_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"account": account_development().pk, "url": "https://10.0.0.5/hooks", "enabled": "on"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert b"address we do not post to" in response.content
    assert not WebhookEndpoint.objects.exists()


def test_staff_replay_an_endpoints_failed_deliveries(admin_client, api, consumer, eager_webhooks):
    account = account_development()
    with eager_webhooks():
        response = api.post(
            "/api/webhook-endpoints", {"url": consumer.url, "event_types": ["message.queued"]}, format="json"
        )
    assert response.status_code == 201
    created = response.json()
    consumer.answers = [400, 400]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
        api.post("/api/messages/sms", SMS | {"body": "two"}, format="json")
    assert list(Delivery.objects.values_list("status", flat=True)) == ["failed", "failed"]

    with eager_webhooks():
        response = admin_client.post(
            "/admin/webhooks/webhookendpoint/",
            {"action": "replay_failed_day", "_selected_action": [created["id"]]},
            follow=True,
        )
    assert b"Re-queued 2 failed deliveries" in response.content
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert account.pk == WebhookEndpoint.objects.get().account_id
