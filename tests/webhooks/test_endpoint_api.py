"""The webhook endpoints API: registered with a secret shown once, changed, deleted,
rotated with an overlap in which both secrets sign, its delivery log, replay; per
account; every bad input a 4xx in the error envelope."""

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conversations.services import account_create, api_key_create
from tests.factories import INBOUND_SMS, SMS
from webhooks.models import Delivery, Event, WebhookEndpoint

ENDPOINTS = "/api/webhook-endpoints"


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def _register(api, consumer, **fields) -> dict:
    response = api.post(ENDPOINTS, {"url": consumer.url} | fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def other(db):
    """Another account, with its own key and endpoint."""
    account = account_create(name="other", senders=["+12015550199"])
    endpoint = WebhookEndpoint.objects.create(
        account=account,
        url="https://example.com/hooks",
        secret="whsec_" + "A" * 44,
        created_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return account, api_key_create(account=account)[1], endpoint


def test_an_endpoint_is_registered_with_a_secret_shown_once(api, consumer):
    created = _register(api, consumer, event_types=["message.sent", "message.sent"], description="crm")

    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert (created["url"], created["event_types"], created["enabled"]) == (consumer.url, ["message.sent"], True)
    shown = api.get(f"{ENDPOINTS}/{created['id']}").json()
    assert "secret" not in shown and shown["description"] == "crm"
    assert "secret" not in api.get(ENDPOINTS).json()["results"][0]


def test_an_endpoint_is_changed_and_deleted(api, consumer):
    created = _register(api, consumer)
    changed = api.patch(f"{ENDPOINTS}/{created['id']}", {"enabled": False, "event_types": []}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["enabled"] is False and changed.json()["disabled_reason"] == "disabled by the account"
    enabled = api.patch(f"{ENDPOINTS}/{created['id']}", {"enabled": True}, format="json").json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] == ""

    assert api.delete(f"{ENDPOINTS}/{created['id']}").status_code == 204
    assert api.get(f"{ENDPOINTS}/{created['id']}").status_code == 404


def test_another_accounts_endpoints_and_events_are_not_found(api, consumer, other):
    account, key, theirs = other
    event = Event.objects.create(
        id=uuid.uuid4(),
        account=account,
        type="message.sent",
        payload={},
        created_at=timezone.now(),
    )
    for method, path in [
        ("get", f"{ENDPOINTS}/{theirs.pk}"),
        ("patch", f"{ENDPOINTS}/{theirs.pk}"),
        ("delete", f"{ENDPOINTS}/{theirs.pk}"),
        ("post", f"{ENDPOINTS}/{theirs.pk}/rotate-secret"),
        ("get", f"{ENDPOINTS}/{theirs.pk}/deliveries"),
        ("post", f"{ENDPOINTS}/{theirs.pk}/replay"),
        ("post", f"/api/events/{event.public_id}/replay"),
    ]:
        assert _error(getattr(api, method)(path, {}, format="json"), 404)["code"] == "not_found", path
    assert api.get(ENDPOINTS).json()["results"] == []
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert [e["id"] for e in api.get(ENDPOINTS).json()["results"]] == [theirs.pk]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 5}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://no-such-host.invalid/x"}, "url"),
        ({"url": "https://example.com:99999/x"}, "url"),
        ({"url": "https://example.com/x", "event_types": ["message.exploded"]}, "event_types"),
        ({"url": "https://example.com/x", "event_types": "message.sent"}, "event_types"),
        ({"url": "https://example.com/x", "enabled": "yes"}, "enabled"),
        ({"url": "https://example.com/x", "description": "x" * 256}, "description"),
    ],
)
def test_bad_registrations_are_400_with_the_field(api, body, field):
    error = _error(api.post(ENDPOINTS, body, format="json"), 400)
    assert any(name.split(".")[0] == field for name in error["fields"]), error


def test_bad_input_to_every_other_endpoint_is_a_4xx(api, consumer):
    created = _register(api, consumer)
    one = f"{ENDPOINTS}/{created['id']}"
    assert _error(api.patch(one, {"url": "http://[::1"}, format="json"), 400)["fields"]
    assert _error(api.patch(one, {"event_types": [1]}, format="json"), 400)["fields"]
    assert _error(api.patch(one, ["not", "an", "object"], format="json"), 400)
    assert _error(api.post(f"{one}/rotate-secret", {"overlap_seconds": -1}, format="json"), 400)["fields"]
    assert _error(api.post(f"{one}/rotate-secret", {"overlap_seconds": "soon"}, format="json"), 400)["fields"]
    assert _error(api.post(f"{one}/replay", {}, format="json"), 400)["fields"]["since"]
    assert _error(api.post(f"{one}/replay", {"since": "yesterday"}, format="json"), 400)["fields"]["since"]
    assert _error(api.get(f"{one}/deliveries?page_size=0"), 400)
    assert _error(api.post("/api/events/evt_nothex/replay", {}, format="json"), 404)
    assert _error(api.post(f"/api/events/evt_{'0' * 32}/replay", {}, format="json"), 404)
    assert _error(api.get(f"{ENDPOINTS}/999999"), 404)
    assert _error(api.post(ENDPOINTS, "{not json", content_type="application/json"), 400)


def test_private_addresses_are_refused_unless_allowed(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.WEBHOOK_ALLOW_HTTP = False
    for url in [
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fe80::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://0.0.0.0/x",
        "https://240.0.0.1/x",
    ]:
        error = _error(api.post(ENDPOINTS, {"url": url}, format="json"), 400)
        assert "address" in error["fields"]["url"][0], url
    assert (
        "https"
        in _error(api.post(ENDPOINTS, {"url": "http://93.184.216.34/x"}, format="json"), 400)["fields"]["url"][0]
    )
    assert api.post(ENDPOINTS, {"url": "https://93.184.216.34/x"}, format="json").status_code == 201


def test_a_host_that_resolves_to_a_private_address_later_is_not_posted(
    api, consumer, eager_webhooks, settings, monkeypatch
):
    endpoint = _register(api, consumer, event_types=["message.received"])
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False  # the consumer (127.0.0.1) is now out of bounds
    with eager_webhooks():
        api.post("/api/webhooks/sms", INBOUND_SMS, format="json")

    assert consumer.received == []
    delivery = Delivery.objects.get(endpoint_id=endpoint["id"])
    assert delivery.status == "failed" and "address we do not post to" in delivery.error


def test_a_rotated_secret_and_the_old_one_both_verify_in_the_overlap(api, consumer, eager_webhooks):
    created = _register(api, consumer, event_types=["message.queued"])
    rotated = api.post(f"{ENDPOINTS}/{created['id']}/rotate-secret", {}, format="json")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["secret"]
    assert new != created["secret"] and rotated.json()["previous_secret_expires_at"]

    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    (received,) = consumer.received
    assert received.verified(created["secret"])["type"] == "message.queued"
    assert received.verified(new)["type"] == "message.queued"
    assert len(received.headers["webhook-signature"].split(" ")) == 2

    # With no overlap the old secret stops signing at once.
    newest = api.post(f"{ENDPOINTS}/{created['id']}/rotate-secret", {"overlap_seconds": 0}, format="json").json()
    with eager_webhooks():
        api.post("/api/messages/sms", SMS | {"body": "after"}, format="json")
    last = consumer.received[-1]
    assert last.verified(newest["secret"])["data"]["body"] == "after"
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        last.verified(new)


def test_the_delivery_log_and_replays(api, consumer, eager_webhooks):
    created = _register(api, consumer, event_types=["message.queued"])
    consumer.answers = [400, 400]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
        api.post("/api/messages/sms", SMS | {"body": "second"}, format="json")

    log = api.get(f"{ENDPOINTS}/{created['id']}/deliveries").json()
    assert [(d["status"], d["attempts"], d["last_status_code"], d["event_type"]) for d in log["results"]] == [
        ("failed", 1, 400, "message.queued")
    ] * 2
    assert log["results"][0]["event_id"].startswith("evt_") and log["results"][0]["response_excerpt"] == "not now"

    # One event again: the same webhook-id.
    first_id = log["results"][1]["event_id"]
    with eager_webhooks():
        replayed = api.post(f"/api/events/{first_id}/replay", {}, format="json")
    assert (replayed.status_code, replayed.json()) == (202, {"replayed": 1})
    assert consumer.received[-1].headers["webhook-id"] == first_id
    assert consumer.received[-1].verified(created["secret"])["data"]["body"] == SMS["body"]

    # Every failed one since a time: only the second is still failed.
    since = (timezone.now() - timedelta(minutes=5)).isoformat()
    with eager_webhooks():
        again = api.post(f"{ENDPOINTS}/{created['id']}/replay", {"since": since}, format="json")
    assert again.json() == {"replayed": 1}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert [r.headers["webhook-id"] for r in consumer.received].count(first_id) == 2


def test_replay_webhooks_command_replays_failed_deliveries_since(api, consumer, eager_webhooks, capsys):
    _register(api, consumer, event_types=["message.queued"])
    consumer.answers = [410]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    assert Delivery.objects.get().status == "failed"

    call_command("replay_webhooks", "--since", "2000-01-01T00:00:00Z", "--dry-run")
    assert "would replay 1" in capsys.readouterr().out
    with eager_webhooks():
        call_command("replay_webhooks", "--since", (timezone.now() - timedelta(hours=1)).isoformat())
    assert "replayed 1" in capsys.readouterr().out
    assert Delivery.objects.get().status == "succeeded"
    assert len(consumer.received) == 2
