"""Calls and voicemails with real processes: API -> broker -> Celery worker -> HTTP ->
the sandbox's Calls API; the sandbox's callbacks task runs each call (fetching our TwiML
for a drop) and posts its signed progress; a simulated caller leaves a voicemail."""

import time

import pytest
import requests

from messaging.models import Message
from providers.sandbox.models import SandboxCall
from tests.e2e.conftest import post, wait_final
from tests.factories import VOICE

pytestmark = pytest.mark.e2e


def test_every_sandbox_number_ends_right_and_rings_as_often_as_it_should(worker, e2e):
    expected = {  # to: (mode, status, attempts, calls placed at the provider)
        "+18045551234": ("call", "delivered", 1, 1),
        "+15005550008": ("voicemail_drop", "delivered", 1, 1),
        "+15005550009": ("voicemail_drop", "undelivered", 1, 1),
        "+15005550006": ("call", "undelivered", 1, 1),
        "+15005550007": ("call", "undelivered", 1, 1),
        "+15005550004": ("call", "delivered", 2, 1),
        "+15005550002": ("call", "failed", 6, 0),
    }
    ids = {}
    for to, (mode, *_) in expected.items():
        human = {"human": "hangup"} if to == "+15005550009" else {}
        ids[to] = post(e2e, "/api/messages/voice", VOICE | {"to": to, "mode": mode} | human)["id"]

    messages = wait_final(list(ids.values()), timeout=120)

    for to, (_, status, attempts, calls) in expected.items():
        message = messages[ids[to]]
        assert (message.status, message.attempts) == (status, attempts), to
        assert SandboxCall.objects.filter(reference=str(message.pk)).count() == calls, to
    assert messages[ids["+15005550008"]].answered_by == "machine"
    assert messages[ids["+15005550009"]].error_code == "answered_by_human"


def test_a_simulated_caller_leaves_a_voicemail_in_their_thread(worker, e2e):
    texted = post(e2e, "/api/messages/sms", {"from": VOICE["from"], "to": VOICE["to"], "body": "Hi!"})
    answer = requests.post(
        f"{e2e.url}/sandbox/calls/inbound",
        json={"label": "twilio-voice", "from": VOICE["to"], "to": VOICE["from"], "speech": "Call me back."},
        timeout=10,
    )
    assert answer.status_code == 202

    deadline = time.monotonic() + 30
    while not (voicemail := Message.objects.filter(type="voice", direction="inbound").first()):
        assert time.monotonic() < deadline, "no voicemail stored"
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while not voicemail.body and time.monotonic() < deadline:  # the transcription comes after the recording
        time.sleep(0.3)
        voicemail.refresh_from_db()

    assert voicemail.conversation_id == texted["conversation_id"]
    assert (voicemail.body, voicemail.duration) == ("Call me back.", 1)
    call = SandboxCall.objects.filter(sid=answer.json()["sid"])
    deadline = time.monotonic() + 10
    while call.get().status != "completed":  # written once its last callback was taken
        assert time.monotonic() < deadline, call.get().status
        time.sleep(0.3)
