"""The whole pipeline with real processes: API -> broker -> Celery worker -> HTTP ->
provider sandbox -> signed status callback -> webhook."""

from collections import Counter

import pytest

from providers.sandbox.models import SandboxMessage
from tests.e2e.conftest import post, wait_final
from tests.factories import EMAIL, INBOUND_SMS, MMS, SMS

pytestmark = pytest.mark.e2e


def test_sms_mms_and_email_are_delivered_through_a_real_worker(worker, e2e):
    ids = [
        post(e2e, "/api/messages/sms", SMS)["id"],
        post(e2e, "/api/messages/sms", MMS)["id"],
        post(e2e, "/api/messages/email", EMAIL)["id"],
    ]
    post(e2e, "/api/webhooks/sms", INBOUND_SMS)

    messages = wait_final(ids, timeout=30)

    assert {m.status for m in messages.values()} == {"delivered"}
    assert [messages[i].provider for i in ids] == ["twilio", "twilio", "sendgrid"]
    assert all(m.sent_at and m.delivered_at for m in messages.values())
    assert Counter(SandboxMessage.objects.values_list("reference", flat=True)) == Counter(str(i) for i in ids)


def test_every_sandbox_recipient_ends_right_with_real_processes(worker, e2e):
    expected = {  # to: (status, attempts, sends that reached the provider)
        "+18045551234": ("delivered", 1, 1),
        "+15005550001": ("failed", 1, 0),
        "+15005550002": ("failed", 6, 0),
        "+15005550003": ("delivered", 3, 1),
        "+15005550004": ("delivered", 2, 1),
        "+15005550005": ("undelivered", 1, 1),
        "bounce@fail.test": ("undelivered", 1, 1),
        "timeout@fail.test": ("delivered", 2, 1),
    }
    ids = {}
    for to in expected:
        path, payload = ("/api/messages/email", EMAIL) if "@" in to else ("/api/messages/sms", SMS)
        ids[to] = post(e2e, path, payload | {"to": to})["id"]

    messages = wait_final(list(ids.values()), timeout=90)

    for to, (status, attempts, sends) in expected.items():
        message = messages[ids[to]]
        assert (message.status, message.attempts) == (status, attempts), to
        assert SandboxMessage.objects.filter(reference=str(message.pk)).count() == sends, to
