"""Events for our API consumers: recorded with the change they report, fanned out to
the endpoints that listen, delivered signed (verified with the Standard Webhooks
library, as a consumer would), retried, and never sent to a disabled endpoint."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from conversations.selectors import account_development
from messaging.models import Message
from tests.factories import INBOUND_SMS, SMS
from webhooks.deliveries import Answer, delivery_attempt, delivery_decide
from webhooks.endpoints import endpoint_create, endpoint_update
from webhooks.models import Delivery, Event, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _endpoint(consumer, event_types=(), **kwargs):
    return endpoint_create(account=account_development(), url=consumer.url, event_types=list(event_types), **kwargs)


def test_a_send_tells_the_endpoint_queued_sent_and_delivered_signed(api, sandbox, consumer, eager_webhooks):
    endpoint = _endpoint(consumer)
    with eager_webhooks():
        sent = api.post("/api/messages/sms", SMS, format="json").json()
    with eager_webhooks():
        sandbox.drain(sent["id"])

    events = consumer.events(endpoint.secret)
    assert [e["type"] for e in events] == ["message.queued", "message.sent", "message.delivered"]
    assert [e["data"]["status"] for e in events] == ["queued", "sent", "delivered"]
    assert {e["data"]["id"] for e in events} == {sent["id"]}
    assert events[0]["data"] == sent  # the message as the API showed it
    assert events[2]["data"]["delivered_at"]
    ids = [r.headers["webhook-id"] for r in consumer.received]
    assert len(set(ids)) == 3 and all(i.startswith("evt_") for i in ids)
    assert [e["id"] for e in events] == ids
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_an_inbound_message_tells_the_endpoint_received(api, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["message.received"])
    with eager_webhooks():
        api.post("/api/webhooks/sms", INBOUND_SMS, format="json")

    (event,) = consumer.events(endpoint.secret)
    assert event["type"] == "message.received"
    assert event["data"]["body"] == INBOUND_SMS["body"]
    assert event["data"]["direction"] == "inbound"


def test_an_endpoint_gets_only_the_types_it_listens_to(api, sandbox, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["message.delivered"])
    with eager_webhooks():
        sent = api.post("/api/messages/sms", SMS, format="json").json()
    with eager_webhooks():
        sandbox.drain(sent["id"])

    assert consumer.types(endpoint.secret) == ["message.delivered"]
    assert list(Event.objects.values_list("type", flat=True)) == ["message.delivered"]


def test_an_account_without_endpoints_records_no_event(api, sandbox, eager_webhooks):
    with eager_webhooks():
        sent = api.post("/api/messages/sms", SMS, format="json").json()
        sandbox.drain(sent["id"])

    assert Message.objects.get(pk=sent["id"]).status == "delivered"
    assert not Event.objects.exists()


def test_a_disabled_endpoint_gets_nothing(api, sandbox, consumer, eager_webhooks):
    live = _endpoint(consumer, ["message.queued"])
    disabled = _endpoint(consumer, [], enabled=False)
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")

    assert len(consumer.received) == 1
    consumer.received[0].verified(live.secret)
    assert not Delivery.objects.filter(endpoint=disabled).exists()


def test_an_endpoint_disabled_after_the_event_was_fanned_out_is_not_posted(api, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["message.queued"])
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    consumer.received.clear()
    delivery = Delivery.objects.get()
    endpoint_update(endpoint=endpoint, enabled=False)
    Delivery.objects.filter(pk=delivery.pk).update(status="pending", attempts=0, next_attempt_at=timezone.now())

    assert delivery_attempt(delivery_id=delivery.pk) == "failed"
    assert consumer.received == []
    assert "disabled" in Delivery.objects.get().error


def test_the_event_is_in_the_transaction_of_the_change(consumer, eager_webhooks):
    from messaging.services import NewMessage, message_send

    _endpoint(consumer)
    account = account_development()
    with pytest.raises(RuntimeError), transaction.atomic():
        message_send(
            account=account, new=NewMessage(type="sms", from_address=SMS["from"], to_address=SMS["to"], body="x")
        )
        assert Event.objects.count() == 1
        raise RuntimeError("rolled back")
    assert not Message.objects.exists()
    assert not Event.objects.exists()


def test_500_twice_then_the_third_try_lands_with_the_same_webhook_id(api, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["message.queued"])
    consumer.answers = [500, 500]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")

    assert [len(consumer.received)] == [3]
    assert len({r.headers["webhook-id"] for r in consumer.received}) == 1  # one event: the consumer dedupes
    assert consumer.types(endpoint.secret) == ["message.queued"] * 3
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)


def test_a_4xx_fails_at_once_and_retries_run_out(api, consumer, eager_webhooks):
    _endpoint(consumer, ["message.queued"])
    consumer.answers = [404]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    assert Delivery.objects.get().status == "failed"
    assert len(consumer.received) == 1

    Delivery.objects.all().delete()
    consumer.received.clear()
    consumer.answers = [503] * 10
    with eager_webhooks():
        api.post("/api/messages/sms", SMS | {"body": "again"}, format="json")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 4, 503)  # 1 + 3 retries
    assert delivery.response_excerpt == "not now"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "succeeded"),
        (204, "succeeded"),
        (500, "retrying"),
        (429, "retrying"),
        (None, "retrying"),
        (400, "failed"),
        (410, "failed"),
        (301, "failed"),
    ],
)
def test_what_an_answer_does_to_a_delivery(status, verdict):
    decided = delivery_decide(attempts=1, answer=Answer(status), schedule=[10.0], jitter=0.5)
    assert decided.status == verdict
    assert decided.delay == (10.0 if verdict == "retrying" else None)


def test_retries_run_out_with_the_schedule_and_jitter_stays_within_a_fifth():
    assert delivery_decide(attempts=2, answer=Answer(500), schedule=[1.0], jitter=0.5).status == "failed"
    assert delivery_decide(attempts=1, answer=Answer(500), schedule=[10.0], jitter=0.0).delay == 8.0
    assert delivery_decide(attempts=1, answer=Answer(500), schedule=[10.0], jitter=0.999).delay < 12.0


def test_stop_and_start_tell_the_endpoint_optout_created_and_deleted(api, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["optout.created", "optout.deleted"])
    with eager_webhooks():
        api.post("/api/webhooks/sms", INBOUND_SMS | {"body": "Stop", "messaging_provider_id": "k-1"}, format="json")
        api.post("/api/webhooks/sms", INBOUND_SMS | {"body": "START", "messaging_provider_id": "k-2"}, format="json")

    created, deleted = consumer.events(endpoint.secret)
    assert (created["type"], deleted["type"]) == ("optout.created", "optout.deleted")
    assert created["data"] | {"keyword": "STOP"} == deleted["data"] | {"keyword": "STOP"}
    assert (created["data"]["sender"], created["data"]["address"], created["data"]["source"]) == (
        INBOUND_SMS["to"],
        INBOUND_SMS["from"],
        "keyword",
    )


def test_suppressions_added_and_deleted_through_the_api_are_events(api, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["suppression.created", "suppression.deleted"])
    with eager_webhooks():
        created = api.post("/api/suppressions", {"address": "Someone@Example.com"}, format="json").json()
        api.delete(f"/api/suppressions/{created['id']}")

    events = consumer.events(endpoint.secret)
    assert [e["type"] for e in events] == ["suppression.created", "suppression.deleted"]
    assert events[0]["data"] == created and events[0]["data"]["address"] == "someone@example.com"


def test_provider_retries_are_not_events_and_a_dead_letter_is_failed(api, sandbox, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["message.queued", "message.sent", "message.failed"])
    with eager_webhooks():
        limited = api.post("/api/messages/sms", SMS | {"to": "+15005550003"}, format="json").json()  # 429 twice
        refused = api.post("/api/messages/sms", SMS | {"to": "+15005550001"}, format="json").json()  # 400
    with eager_webhooks():
        sandbox.drain(limited["id"])
        sandbox.drain(refused["id"])

    events = consumer.events(endpoint.secret)
    assert [e["type"] for e in events if e["data"]["id"] == limited["id"]] == ["message.queued", "message.sent"]
    failed = [e for e in events if e["data"]["id"] == refused["id"]]
    assert [e["type"] for e in failed] == ["message.queued", "message.failed"]
    assert failed[1]["data"]["error"]["reason"] == "permanent"


def test_each_process_learns_of_endpoint_changes_from_the_shared_version(consumer, settings):
    from webhooks.events import endpoints_changed, subscriptions

    account = account_development()
    settings.WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS = 3600
    assert not subscriptions.wanted(account.pk, "message.sent")  # remembered: nobody listens
    endpoint = WebhookEndpoint.objects.create(  # as another process would, before it bumps the version
        account=account,
        url=consumer.url,
        secret="whsec_" + "A" * 44,
        created_at=timezone.now(),
        updated_at=timezone.now(),
    )
    assert not subscriptions.wanted(account.pk, "message.sent")  # no query per check
    settings.WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS = 0
    assert not subscriptions.wanted(account.pk, "message.sent")  # the version has not moved
    cache.set("webhooks:endpoints:version", "moved", None)
    assert subscriptions.wanted(account.pk, "message.sent")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(event_types=["message.failed"])
    endpoints_changed()
    assert (subscriptions.wanted(account.pk, "message.sent"), subscriptions.wanted(account.pk, "message.failed")) == (
        False,
        True,
    )


def test_a_scheduled_send_tells_scheduled_then_queued_when_released_or_canceled(api, consumer, eager_webhooks):
    from datetime import timedelta

    from messaging.services import messages_release

    endpoint = _endpoint(consumer, ["message.scheduled", "message.queued", "message.canceled"])
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    with eager_webhooks():
        kept = api.post("/api/messages/sms", SMS | {"send_at": later}, format="json").json()
        dropped = api.post("/api/messages/sms", SMS | {"send_at": later, "body": "no"}, format="json").json()
        assert api.post(f"/api/messages/{dropped['id']}/cancel").status_code == 200
    Message.objects.filter(pk=kept["id"]).update(send_at=timezone.now() - timedelta(seconds=1))
    with eager_webhooks():
        assert messages_release() == 1

    events = consumer.events(endpoint.secret)
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("message.scheduled", kept["id"]),
        ("message.scheduled", dropped["id"]),
        ("message.canceled", dropped["id"]),
        ("message.queued", kept["id"]),
    ]
    assert events[2]["data"]["status"] == "canceled" and events[3]["data"]["status"] == "queued"


def test_an_endpoint_failing_for_days_is_disabled_with_its_reason(api, consumer, eager_webhooks, settings):
    endpoint = _endpoint(consumer, ["message.queued"])
    consumer.answers = [503] * 20
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None  # failing, not for long yet

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=6))
    with eager_webhooks():
        api.post("/api/messages/sms", SMS | {"body": "again"}, format="json")
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_at is not None) == (False, True)
    assert endpoint.disabled_reason == "every delivery failed for 5 days (last: HTTP 503)"
    tried = len(consumer.received)
    with eager_webhooks():
        api.post("/api/messages/sms", SMS | {"body": "after"}, format="json")
    assert len(consumer.received) == tried  # nothing more is posted to it


def test_a_success_ends_the_failing_streak(api, consumer, eager_webhooks):
    endpoint = _endpoint(consumer, ["message.queued"])
    consumer.answers = [500]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and Delivery.objects.get().attempts == 2


def test_a_long_wait_is_kept_in_the_database_and_published_by_the_sweep(api, consumer, eager_webhooks, settings):
    from webhooks.events import webhooks_sweep

    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [3600.0]
    _endpoint(consumer, ["message.queued"])
    consumer.answers = [500]
    with eager_webhooks():
        api.post("/api/messages/sms", SMS, format="json")
    delivery = Delivery.objects.get()
    assert delivery.status == "retrying" and delivery.next_attempt_at > timezone.now() + timedelta(minutes=45)
    with eager_webhooks():
        assert webhooks_sweep() == {"fanned_out": 0, "published": 0}  # not due: nothing is posted
    assert len(consumer.received) == 1

    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    with eager_webhooks():
        assert webhooks_sweep() == {"fanned_out": 0, "published": 1}
    assert Delivery.objects.get().status == "succeeded" and len(consumer.received) == 2


def test_an_event_whose_fan_out_was_lost_is_fanned_out_by_the_sweep(consumer, settings):
    from messaging.services import NewMessage, message_send
    from webhooks.events import webhooks_sweep

    endpoint = _endpoint(consumer, ["message.queued"])
    # Recorded, but its fan-out task never ran (this test's transaction never commits).
    message_send(
        account=account_development(),
        new=NewMessage(type="sms", from_address=SMS["from"], to_address=SMS["to"], body="x"),
    )
    Event.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    result = webhooks_sweep()
    assert result["fanned_out"] == 1
    assert list(Delivery.objects.values_list("endpoint_id", "status")) == [(endpoint.pk, "pending")]


def test_old_events_are_pruned_with_their_deliveries_once_none_is_open(consumer):
    import uuid

    from webhooks.events import events_prune

    endpoint = _endpoint(consumer)
    now = timezone.now()

    def event(days_ago: int, status: str) -> Event:
        created = now - timedelta(days=days_ago)
        made = Event.objects.create(
            id=uuid.uuid4(), account=endpoint.account, type="message.sent", payload={}, created_at=created
        )
        Delivery.objects.create(event=made, endpoint=endpoint, status=status, created_at=created)
        return made

    old_done, old_failed, old_open, recent = (
        event(40, "succeeded"),
        event(31, "failed"),
        event(40, "retrying"),
        event(2, "succeeded"),
    )
    assert events_prune() == 2
    assert set(Event.objects.values_list("id", flat=True)) == {old_open.id, recent.id}
    assert set(Delivery.objects.values_list("event_id", flat=True)) == {old_open.id, recent.id}
    assert not {old_done.id, old_failed.id} & set(Event.objects.values_list("id", flat=True))


def test_a_longer_retry_after_is_honoured_up_to_a_day():
    def delay(retry_after):
        answer = Answer(429, retry_after=retry_after)
        return delivery_decide(attempts=1, answer=answer, schedule=[10.0], jitter=0.5).delay

    assert delay(None) == 10.0
    assert delay(2.0) == 10.0  # shorter than the schedule's wait: the schedule's
    assert delay(120.0) == 120.0
    assert delay(10 * 86400.0) == 86400.0
