"""Calls through the whole pipeline against the sandbox's Twilio Voice: each listed number
ends in the right status, having rung the right number of times at the provider."""

import io
import wave
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings
from django.core.management import call_command
from prometheus_client import REGISTRY, generate_latest

from conversations.models import Account
from messaging import tasks
from messaging.models import DeliveryAttempt, Message, MessageEvent
from messaging.services import message_dispatch
from providers.sandbox.behaviour import set_down
from providers.sandbox.calls import call_run
from providers.sandbox.models import SandboxCall
from tests.factories import SMS, VOICE, VOICE_DROP
from tests.metrics_helpers import value as metric_value

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _patient_sandbox(sandbox, settings):
    """A call runs several webhooks of ours (its TwiML, four progress callbacks): on a
    busy machine 0.5 s is too short for them, and only +15005550004 needs a timeout."""
    settings.PROVIDER_TIMEOUT_SECONDS = 2.0


def _call(api, sandbox, **changes) -> Message:
    body = {name: value for name, value in (VOICE | changes).items() if value is not None}
    response = api.post("/api/messages/voice", body, format="json")
    assert response.status_code == 202, response.json()
    return sandbox.drain(response.json()["id"])


def _drop(api, sandbox, **changes) -> Message:
    return _call(api, sandbox, **(VOICE_DROP | changes))


def _played(to: str) -> ET.Element:
    call = SandboxCall.objects.get(to_address=to)
    return ET.fromstring(call.played)  # noqa: S314 (our own TwiML)


def test_a_call_answered_by_a_person_is_delivered_with_its_length(api, sandbox):
    message = _call(api, sandbox, say="Your table is ready.")

    assert message.status == Message.Status.DELIVERED
    assert message.duration and message.duration >= 2
    assert message.answered_by == ""  # a plain call asks for no detection
    assert sandbox.calls_to(VOICE["to"]) == 1
    call = SandboxCall.objects.get(to_address=VOICE["to"])
    assert (call.label, call.reference, call.machine_detection, call.url) == ("twilio-voice", str(message.pk), "", "")
    assert [verb.text for verb in _played(VOICE["to"])] == ["Your table is ready."]


def test_a_call_can_play_audio(api, sandbox):
    message = _call(api, sandbox, say=None, play="https://cdn.example.com/hello.mp3")

    assert message.status == Message.Status.DELIVERED
    assert [(verb.tag, verb.text) for verb in _played(VOICE["to"])] == [("Play", "https://cdn.example.com/hello.mp3")]


def test_a_voicemail_drop_plays_after_the_machines_beep(api, sandbox):
    message = _drop(api, sandbox, to="+15005550008", say="Your order shipped.")

    assert (message.status, message.answered_by) == (Message.Status.DELIVERED, "machine")
    call = SandboxCall.objects.get(to_address="+15005550008")
    assert (call.machine_detection, call.answered_by, call.twiml) == ("DetectMessageEnd", "machine_end_beep", "")
    assert call.url.endswith(f"/api/webhooks/providers/twilio-voice/twiml?ref={message.pk}")
    assert [(verb.tag, verb.text) for verb in _played("+15005550008")] == [("Say", "Your order shipped.")]
    assert message.duration > 6  # the machine's greeting, then the message


def test_a_drop_that_reaches_a_person_hangs_up_when_asked_and_is_undelivered(api, sandbox):
    message = _drop(api, sandbox, to="+15005550009", human="hangup")

    assert (message.status, message.error_code, message.answered_by) == ("undelivered", "answered_by_human", "human")
    assert [verb.tag for verb in _played("+15005550009")] == ["Hangup"]
    assert sandbox.calls_to("+15005550009") == 1


def test_a_drop_that_reaches_a_person_says_the_short_message_instead(api, sandbox):
    message = _drop(api, sandbox, to="+15005550009", human="message", human_say="Please call us back.")

    assert (message.status, message.answered_by) == (Message.Status.DELIVERED, "human")
    assert [(verb.tag, verb.text) for verb in _played("+15005550009")] == [("Say", "Please call us back.")]


def test_a_drop_that_reaches_a_person_says_the_same_by_default(api, sandbox):
    message = _drop(api, sandbox, to="+15005550009", say="Same for everyone.")

    assert message.status == Message.Status.DELIVERED
    assert [verb.text for verb in _played("+15005550009")] == ["Same for everyone."]


@pytest.mark.parametrize(
    ("to", "error_code"),
    [("+15005550006", "busy"), ("+15005550007", "no-answer"), ("+15005550005", "failed")],
)
def test_a_call_that_reaches_nobody_is_undelivered_and_not_retried(api, sandbox, to, error_code):
    message = _call(api, sandbox, to=to)

    assert (message.status, message.error_code, message.duration) == ("undelivered", error_code, 0)
    assert message.attempts == 1
    assert sandbox.calls_to(to) == 1


def test_a_create_answered_after_the_timeout_rings_exactly_once(api, sandbox):
    message = _call(api, sandbox, to="+15005550004")

    assert message.status == Message.Status.DELIVERED
    assert sandbox.calls_to("+15005550004") == 1
    outcomes = list(message.delivery_attempts.order_by("id").values_list("outcome", flat=True))
    assert outcomes == [DeliveryAttempt.Outcome.AMBIGUOUS, DeliveryAttempt.Outcome.RECONCILED]
    assert message.provider_message_id == SandboxCall.objects.get(to_address="+15005550004").sid


def test_a_500_storm_dead_letters_the_call_without_ringing_and_a_replay_tries_again(api, sandbox):
    message = _call(api, sandbox, to="+15005550002")

    assert (message.status, message.failure_reason) == (Message.Status.FAILED, "exhausted")
    assert message.attempts == settings.MESSAGING_MAX_ATTEMPTS
    assert sandbox.calls_to("+15005550002") == 0
    # Every 500 may have placed the call: each next try looked it up first.
    assert message.events.filter(kind=MessageEvent.Kind.RECONCILE).count() == settings.MESSAGING_MAX_ATTEMPTS - 1

    replay = api.post(f"/api/messages/{message.pk}/retry")
    assert replay.status_code == 202 and replay.json()["status"] == "queued"
    again = sandbox.drain(message.pk)
    assert again.status == Message.Status.FAILED
    assert again.delivery_attempts.count() == 2 * settings.MESSAGING_MAX_ATTEMPTS


def test_a_refused_number_fails_at_once(api, sandbox):
    message = _call(api, sandbox, to="+15005550001")

    assert (message.status, message.failure_reason, message.error_code) == ("failed", "permanent", "21211")
    assert message.attempts == 1


def test_a_rate_limited_create_is_retried_and_rings_once(api, sandbox):
    message = _call(api, sandbox, to="+15005550003")

    assert message.status == Message.Status.DELIVERED
    assert message.attempts == 3
    assert sandbox.calls_to("+15005550003") == 1


def test_calls_fail_over_to_the_backup_instance(api, sandbox):
    set_down("twilio-voice", True)
    for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
        _call(api, sandbox, to="+18045550100", say="during the outage")

    message = _call(api, sandbox, to="+18045550101", say="after the breaker opened")

    assert message.status == Message.Status.DELIVERED
    assert SandboxCall.objects.get(to_address="+18045550101").label == "twilio-voice-backup"


def test_a_caller_leaves_a_voicemail_that_lands_in_their_thread(api, sandbox):
    account = Account.objects.get(is_development=True)
    account.voicemail_greeting = "Acme here. Leave a message."
    account.save()
    texted = api.post("/api/messages/sms", SMS, format="json").json()

    call = sandbox.call_in(from_address=SMS["to"], to_address=SMS["from"], speech="Please call me back about my order.")

    assert call.status == "completed"
    assert ET.fromstring(call.played).find("Say").text == "Acme here. Leave a message."  # noqa: S314
    voicemail = Message.objects.get(type="voice", direction="inbound")
    assert voicemail.conversation_id == texted["conversation_id"]
    assert (voicemail.body, voicemail.status, voicemail.provider) == (
        "Please call me back about my order.",
        "received",
        "twilio-voice",
    )
    assert voicemail.provider_message_id == call.recording_sid
    assert voicemail.attachments == [
        f"{settings.SANDBOX_BASE_URL}/twilio-voice/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}"
        f"/Recordings/{call.recording_sid}"
    ]
    assert voicemail.duration == call.duration == 3


def test_a_voicemail_run_twice_is_stored_once(api, sandbox):
    call = sandbox.call_in(from_address="+18045551234", to_address="+12016661234", speech="Hello.")

    call_run(call=SandboxCall.objects.get(pk=call.pk))

    assert Message.objects.filter(type="voice").count() == 1


def test_voicemail_recordings_are_copied_into_storage_and_played_to_staff(
    api, sandbox, settings, tmp_path, monkeypatch, admin_client, django_capture_on_commit_callbacks
):
    settings.VOICE_RECORDINGS_COPY = True
    settings.STORAGES = settings.STORAGES | {
        "recordings": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}}
    }
    published = []
    monkeypatch.setattr(
        "messaging.services.voice.celery_app.send_task", lambda name, args, queue: published.append((name, args))
    )

    with django_capture_on_commit_callbacks(execute=True):
        sandbox.call_in(from_address="+18045551234", to_address="+12016661234", speech="Twelve words of speech.")
    voicemail = Message.objects.get(type="voice")
    assert published == [("messaging.tasks.voicemail_recording_copy", [voicemail.pk])]
    name = tasks.voicemail_recording_copy.apply(args=[voicemail.pk]).get()

    voicemail.refresh_from_db()
    assert voicemail.call["recording_file"] == name and name.endswith(".wav")
    with wave.open(str(tmp_path / name)) as audio:
        assert audio.getnframes() == audio.getframerate() * voicemail.duration
    assert tasks.voicemail_recording_copy.apply(args=[voicemail.pk]).get() == name  # fetched once
    assert api.get(f"/api/messages/{voicemail.pk}").json()["call"]["recording_stored"] is True

    page = admin_client.get(f"/admin/conversations/conversation/{voicemail.conversation_id}/change/")
    player = f'src="/admin/messaging/message/{voicemail.pk}/recording/"'
    assert player in page.content.decode() and "voicemail" in page.content.decode()
    audio = admin_client.get(f"/admin/messaging/message/{voicemail.pk}/recording/")
    assert (audio.status_code, audio["Content-Type"]) == (200, "audio/x-wav")
    assert b"".join(audio.streaming_content)[:4] == b"RIFF"
    assert api.get(f"/admin/messaging/message/{voicemail.pk}/recording/").status_code == 302  # staff only


def test_the_thread_shows_a_calls_length_and_who_answered(api, sandbox, admin_client):
    message = _drop(api, sandbox, to="+15005550008")

    page = admin_client.get(f"/admin/conversations/conversation/{message.conversation_id}/change/").content.decode()

    assert f"duration {message.duration} s" in page
    assert "answered by machine" in page and "voicemail_drop" in page


def test_calls_are_counted_by_outcome_and_who_answered(api, sandbox):
    before = metric_value(generate_latest(REGISTRY).decode(), "voice_calls_total", outcome="busy")

    _call(api, sandbox, to="+15005550006")
    _drop(api, sandbox, to="+15005550008")

    text = generate_latest(REGISTRY).decode()
    assert metric_value(text, "voice_calls_total", outcome="busy", answered_by="none") == before + 1
    assert metric_value(text, "voice_calls_total", outcome="completed", answered_by="machine") >= 1


def test_an_ambiguous_call_is_not_placed_again_while_the_lookup_cannot_answer(api, sandbox):
    sent = api.post("/api/messages/voice", VOICE | {"to": "+15005550004"}, format="json").json()
    message_dispatch(message_id=sent["id"])  # placed, but answered after our timeout
    set_down("twilio-voice", True)  # now the lookup is refused too

    for _ in range(3):
        Message.objects.filter(pk=sent["id"]).update(next_attempt_at=None)
        message_dispatch(message_id=sent["id"])

    message = Message.objects.get(pk=sent["id"])
    assert (message.status, message.needs_reconcile) == (Message.Status.QUEUED, True)
    assert sandbox.calls_to("+15005550004") == 1
    assert not message.delivery_attempts.filter(outcome="success").exists()

    set_down("twilio-voice", False)
    message = sandbox.drain(sent["id"])
    assert message.status == Message.Status.DELIVERED
    assert sandbox.calls_to("+15005550004") == 1
    assert message.delivery_attempts.order_by("id").last().outcome == DeliveryAttempt.Outcome.RECONCILED


def test_failed_calls_are_replayed_by_the_operators_command(api, sandbox):
    message = _call(api, sandbox, to="+15005550001")
    out = io.StringIO()

    call_command("replay_failed", "--channel", "voice", stdout=out)

    assert f"replayed {message.pk} voice to +15005550001" in out.getvalue()
    assert Message.objects.get(pk=message.pk).status == Message.Status.QUEUED
