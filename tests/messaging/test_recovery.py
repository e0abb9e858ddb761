from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging.models import Message
from messaging.services import message_dispatch, messages_sweep, outbox_relay
from tests.factories import SMS, MessageFactory


def test_sweep_republishes_queued_messages_no_worker_took(db, published):
    old = timezone.now() - timedelta(minutes=5)
    lost = MessageFactory(enqueued_at=old, next_attempt_at=old)
    fresh = MessageFactory(enqueued_at=timezone.now())
    later = MessageFactory(enqueued_at=None, next_attempt_at=timezone.now() + timedelta(hours=1))

    result = messages_sweep()

    assert result.requeued == 1
    assert published == [(lost.pk, "sms")]
    lost.refresh_from_db()
    assert lost.enqueued_at > old  # not published again on the next sweep
    assert messages_sweep().requeued == 0
    assert {fresh.pk, later.pk}.isdisjoint(pk for pk, _ in published)


def test_sweep_takes_back_expired_leases_for_reconciliation(db, published):
    stuck = MessageFactory(status="sending", provider="twilio", lease_expires_at=timezone.now() - timedelta(seconds=1))
    working = MessageFactory(status="sending", lease_expires_at=timezone.now() + timedelta(minutes=1))

    result = messages_sweep()

    assert result.recovered == 1
    stuck.refresh_from_db()
    working.refresh_from_db()
    assert stuck.status == "queued" and stuck.needs_reconcile
    assert working.status == "sending"
    assert published == [(stuck.pk, "sms")]


def test_worker_killed_after_the_provider_accepted_is_not_sent_twice(api, sandbox):
    """The provider took the message but the worker died before recording it."""
    message_id = api.post("/api/messages/sms", SMS, format="json").json()["id"]
    message = Message.objects.get(pk=message_id)
    from messaging.services.dispatch import outbound_for
    from providers.registry import provider_get

    provider_get("twilio").send(outbound_for(message))  # reached the provider...
    Message.objects.filter(pk=message_id).update(  # ...then the worker vanished mid-try
        status="sending", attempts=1, provider="twilio", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    messages_sweep()
    message = sandbox.drain(message_id)

    assert message.status == "delivered"
    assert sandbox.sent_to(SMS["to"]) == 1


def test_a_second_copy_of_a_task_does_nothing(api, sandbox):
    message_id = api.post("/api/messages/sms", SMS, format="json").json()["id"]

    assert message_dispatch(message_id=message_id) == "sent"
    assert message_dispatch(message_id=message_id) == "skipped"
    assert sandbox.sent_to(SMS["to"]) == 1


def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_next_try(api, sandbox):
    message_id = api.post("/api/messages/sms", SMS, format="json").json()["id"]
    from messaging.services import dispatch
    from providers.base import Outcome, SendResult

    [first] = dispatch._claim([message_id], "sms", timezone.now())
    Message.objects.filter(pk=message_id).update(status="queued", next_attempt_at=None)  # the sweep took it back
    [second] = dispatch._claim([message_id], "sms", timezone.now())

    stale = dispatch.Tried(first, SendResult(Outcome.PERMANENT, error="stale"))
    assert dispatch._record([stale], now=timezone.now()) == {message_id: "late"}
    fresh = dispatch.Tried(second, SendResult(Outcome.SUCCESS, provider_message_id="SMx"))
    assert dispatch._record([fresh], now=timezone.now()) == {message_id: "sent"}
    message = Message.objects.get(pk=message_id)
    assert message.status == "sent" and message.attempts == 2


def _dead_letters(api, sandbox):
    ids = [
        api.post("/api/messages/sms", SMS | {"to": to}, format="json").json()["id"]
        for to in ("+15005550001", "+15005550002")
    ]
    for message_id in ids:
        sandbox.drain(message_id)
    return ids


def test_replay_failed_dry_run_changes_nothing(api, sandbox, published):
    permanent, exhausted = _dead_letters(api, sandbox)
    out = StringIO()

    call_command("replay_failed", "--dry-run", stdout=out)

    assert f"would replay {permanent} " in out.getvalue() and f"would replay {exhausted} " in out.getvalue()
    assert Message.objects.filter(status="failed").count() == 2


def test_replay_failed_filters_by_reason_and_starts_a_fresh_budget(
    api, sandbox, published, django_capture_on_commit_callbacks
):
    permanent, exhausted = _dead_letters(api, sandbox)
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("replay_failed", "--reason", "exhausted", stdout=out)

    assert "replayed 1 message(s)" in out.getvalue()
    message = Message.objects.get(pk=exhausted)
    assert message.status == "queued" and message.attempts == 0
    assert message.delivery_attempts.count() == 6  # history kept
    assert message.events.filter(kind="replay").exists()
    assert Message.objects.get(pk=permanent).status == "failed"
    assert message.enqueued_at is None and published == []  # the relay's to publish
    outbox_relay()
    assert published == [(exhausted, "sms")]


def test_replay_failed_by_id_and_channel(api, sandbox, published):
    permanent, _ = _dead_letters(api, sandbox)

    call_command("replay_failed", "--id", str(permanent), "--channel", "sms", stdout=StringIO())
    call_command("replay_failed", "--channel", "email", stdout=StringIO())

    assert Message.objects.get(pk=permanent).status == "queued"
    assert Message.objects.filter(status="failed").count() == 1


def test_replay_api_requeues_a_dead_letter(api, sandbox, published):
    permanent, _ = _dead_letters(api, sandbox)

    response = api.post(f"/api/messages/{permanent}/retry")

    assert response.status_code == 202
    assert response.json()["status"] == "queued"


def test_replay_api_refuses_a_message_that_is_not_failed(api, published):
    message_id = api.post("/api/messages/sms", SMS, format="json").json()["id"]

    response = api.post(f"/api/messages/{message_id}/retry")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_failed"


def test_replayed_ambiguous_message_is_reconciled_before_resending(api, sandbox, settings):
    message_id = api.post("/api/messages/sms", SMS | {"to": "+15005550004"}, format="json").json()["id"]
    settings.MESSAGING_MAX_ATTEMPTS = 1  # the timeout exhausts the budget at once
    message_dispatch(message_id=message_id)
    message = Message.objects.get(pk=message_id)
    assert message.status == "failed" and message.needs_reconcile
    settings.MESSAGING_MAX_ATTEMPTS = 6

    from messaging.services import message_replay

    message_replay(message=message, actor="test")
    message = sandbox.drain(message_id)

    assert message.status == "delivered"
    assert sandbox.sent_to("+15005550004") == 1
    assert message.delivery_attempts.last().outcome == "reconciled"


def test_replay_failed_filters_by_error_text_and_time(api, sandbox, published):
    permanent, exhausted = _dead_letters(api, sandbox)
    future = "2999-01-01T00:00:00Z"

    call_command("replay_failed", "--since", future, stdout=StringIO())
    assert Message.objects.filter(status="failed").count() == 2
    call_command("replay_failed", "--until", future, "--error", "valid phone", stdout=StringIO())

    assert Message.objects.get(pk=permanent).status == "queued"
    assert Message.objects.get(pk=exhausted).status == "failed"


def test_replay_failed_refuses_a_bad_time(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("replay_failed", "--since", "last tuesday", stdout=StringIO())
