from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from messaging.models import Message
from tests.factories import MessageFactory


def test_sweep_messages_recovers_stuck_messages_and_says_how_many(db, published):
    old = timezone.now() - timedelta(minutes=5)
    lost = MessageFactory(enqueued_at=old, next_attempt_at=old)
    stuck = MessageFactory(status="sending", provider="twilio", lease_expires_at=timezone.now() - timedelta(seconds=1))
    out = StringIO()

    call_command("sweep_messages", stdout=out)

    assert "sending with an expired lease: 1" in out.getvalue()
    assert "requeued 1, recovered 1 from expired leases" in out.getvalue()
    assert sorted(pk for pk, _ in published) == sorted([lost.pk, stuck.pk])
    assert Message.objects.get(pk=stuck.pk).needs_reconcile


def test_sweep_messages_status_changes_nothing(db, published):
    stuck = MessageFactory(status="sending", lease_expires_at=timezone.now() - timedelta(seconds=1))
    out = StringIO()

    call_command("sweep_messages", "--status", stdout=out)

    assert "sms sending: 1" in out.getvalue()
    assert published == []
    assert Message.objects.get(pk=stuck.pk).status == "sending"
