"""Calls through the whole pipeline against the sandbox's Twilio Voice: each listed number
ends in the right status, having rung the right number of times at the provider."""

import xml.etree.ElementTree as ET

import pytest
from django.conf import settings

from messaging.models import DeliveryAttempt, Message, MessageEvent
from providers.sandbox.behaviour import set_down
from providers.sandbox.models import SandboxCall
from tests.factories import VOICE, VOICE_DROP

pytestmark = pytest.mark.django_db


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
