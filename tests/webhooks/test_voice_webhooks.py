"""Twilio's voice webhooks: incoming calls greeted and recorded, voicemails stored in the
caller's conversation, outbound calls told what to say, call progress applied forward
only. Requests are signed by twilio's own RequestValidator, so what we accept is what
Twilio sends."""

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from conversations.models import Account, Conversation
from messaging.models import Message, MessageEvent
from tests.factories import INBOUND_SMS, SMS, MessageFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

CALLER, OURS = "+18045551234", "+12016661234"
VOICE_URL = "/api/webhooks/providers/twilio-voice/voice"


def _post(api, path: str, params: dict, *, token: str | None = None, signature: str | None = None):
    url = settings.PUBLIC_BASE_URL + path
    sig = signature or RequestValidator(token or settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)
    return api.post(
        path, urlencode(params), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=sig
    )


def _incoming(**changes) -> dict:
    return {
        "CallSid": "CA" + "1" * 32,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "From": CALLER,
        "To": OURS,
        "CallStatus": "ringing",
        "Direction": "inbound",
    } | changes


def _twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)  # noqa: S314 (ours)


def _recording(sid="RE" + "2" * 32, **changes) -> dict:
    return {
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "CallSid": "CA" + "1" * 32,
        "RecordingSid": sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
    } | changes


def _transcription(sid="RE" + "2" * 32, text="Please call me back.") -> dict:
    return _recording(sid) | {
        "TranscriptionSid": "TR" + "3" * 32,
        "TranscriptionText": text,
        "TranscriptionStatus": "completed",
        "From": CALLER,
        "To": OURS,
    }


def _inbound_path() -> str:
    return "/api/webhooks/providers/twilio-voice/inbound?" + urlencode({"from": CALLER, "to": OURS})


# --- Incoming calls -------------------------------------------------------------------


def test_an_incoming_call_hears_the_accounts_greeting_and_is_recorded(api):
    account = Account.objects.get(is_development=True)
    account.voicemail_greeting = "You reached Acme. Leave a message."
    account.save()

    root = _twiml(_post(api, VOICE_URL, _incoming()))

    say, record, hangup = list(root)
    assert (say.tag, say.text, hangup.tag) == ("Say", "You reached Acme. Leave a message.", "Hangup")
    assert record.tag == "Record"
    assert record.get("action") == settings.PUBLIC_BASE_URL + VOICE_URL
    assert (record.get("transcribe"), record.get("maxLength"), record.get("playBeep")) == ("true", "120", "true")
    for callback in ("recordingStatusCallback", "transcribeCallback"):
        url = urlsplit(record.get(callback))
        assert url.path == "/api/webhooks/providers/twilio-voice/inbound"
        assert parse_qs(url.query) == {"from": [CALLER], "to": [OURS]}


def test_an_account_without_a_greeting_uses_the_default(api):
    root = _twiml(_post(api, VOICE_URL, _incoming()))

    assert root.find("Say").text == settings.VOICEMAIL_GREETING


def test_the_greeting_is_escaped_and_matches_what_twilios_own_twiml_writes(api):
    greeting = 'Hi <Hangup/> & "friends" \x07'
    Account.objects.filter(is_development=True).update(voicemail_greeting=greeting)

    response = _post(api, VOICE_URL, _incoming())

    root = _twiml(response)
    assert root.find("Say").text == 'Hi <Hangup/> & "friends" '  # the bell is not XML: dropped
    assert [verb.tag for verb in root] == ["Say", "Record", "Hangup"]
    expected = VoiceResponse()
    expected.say('Hi <Hangup/> & "friends" ')
    ours = ET.canonicalize(ET.tostring(root.find("Say")))
    theirs = ET.canonicalize(ET.tostring(ET.fromstring(expected.to_xml()).find("Say")))  # noqa: S314
    assert ours == theirs


def test_a_call_to_a_number_no_account_owns_is_rejected(api, settings):
    settings.IS_PRODUCTION = True

    root = _twiml(_post(api, VOICE_URL, _incoming(To="+12025550199")))

    assert [verb.tag for verb in root] == ["Reject"]


def test_after_the_recording_the_call_hangs_up(api):
    root = _twiml(_post(api, VOICE_URL, _incoming(**_recording(), CallStatus="completed")))

    assert [verb.tag for verb in root] == ["Hangup"]


def test_incoming_call_webhooks_are_refused_unsigned_or_badly_signed(api):
    unsigned = api.post(VOICE_URL, urlencode(_incoming()), content_type="application/x-www-form-urlencoded")
    forged = _post(api, VOICE_URL, _incoming(), token="not-our-token")

    assert unsigned.status_code == forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"


def test_a_rotated_auth_token_is_still_accepted_until_it_is_retired(api, settings):
    settings.PROVIDERS = settings.PROVIDERS | {
        "twilio-voice": settings.PROVIDERS["twilio-voice"]
        | {"auth_token": "new-token", "previous_auth_tokens": [settings.TWILIO_AUTH_TOKEN]}
    }

    assert _post(api, VOICE_URL, _incoming(), token="new-token").status_code == 200
    assert _post(api, VOICE_URL, _incoming(), token=settings.TWILIO_AUTH_TOKEN).status_code == 200
    assert _post(api, VOICE_URL, _incoming(), token="older-token").status_code == 401


def test_an_incoming_call_without_its_numbers_is_a_400(api):
    response = _post(api, VOICE_URL, {"CallSid": "CA1"})

    assert response.status_code == 400
    assert "From" in response.json()["error"]["message"]


def test_a_messaging_instance_answers_no_calls(api):
    assert _post(api, "/api/webhooks/providers/twilio/voice", _incoming()).status_code == 404


# --- Voicemails -----------------------------------------------------------------------


def test_a_voicemail_lands_in_the_callers_conversation_with_its_texts(api):
    assert api.post("/api/messages/sms", SMS, format="json").status_code == 202
    assert api.post("/api/webhooks/sms", INBOUND_SMS, format="json").status_code == 201

    response = _post(api, _inbound_path(), _recording())

    assert response.status_code == 201
    voicemail = Message.objects.get(type="voice")
    conversation = Conversation.objects.get()
    assert voicemail.conversation_id == conversation.pk and conversation.message_count == 3
    assert (voicemail.direction, voicemail.status, voicemail.from_address, voicemail.to_address) == (
        "inbound",
        "received",
        CALLER,
        OURS,
    )
    assert voicemail.attachments == [_recording()["RecordingUrl"]]
    assert (voicemail.duration, voicemail.call, voicemail.body) == (14, {"mode": "voicemail"}, "")
    listed = api.get(f"/api/conversations/{conversation.pk}/messages").json()["results"]
    assert listed[-1]["type"] == "voice" and listed[-1]["call"]["duration"] == 14


def test_the_transcription_completes_the_voicemail_in_either_order(api):
    first = _post(api, _inbound_path(), _transcription())
    second = _post(api, _inbound_path(), _recording())
    again = _post(api, _inbound_path(), _recording())

    assert [r.status_code for r in (first, second, again)] == [201, 200, 200]
    voicemail = Message.objects.get(type="voice")
    assert (voicemail.body, voicemail.duration) == ("Please call me back.", 14)
    assert voicemail.events.filter(kind=MessageEvent.Kind.CALLBACK).count() == 0  # the duration came with the first
    later = _post(api, _inbound_path(), _transcription(sid="RE" + "4" * 32, text="Another one."))
    assert later.status_code == 201 and Message.objects.filter(type="voice").count() == 2


def test_a_transcription_after_the_recording_fills_in_the_body_once(api):
    _post(api, _inbound_path(), _recording())
    _post(api, _inbound_path(), _transcription())
    _post(api, _inbound_path(), _transcription(text="A different text, later."))

    voicemail = Message.objects.get(type="voice")
    assert voicemail.body == "Please call me back."
    assert list(voicemail.events.filter(kind="callback").values_list("detail", flat=True)) == [
        {"provider": "twilio-voice", "added": ["transcription"]}
    ]


def test_a_recording_with_no_audio_stores_nothing(api):
    response = _post(api, _inbound_path(), _recording(RecordingStatus="absent", RecordingDuration="0"))

    assert response.status_code == 200 and response.json()["created"] == 0
    assert not Message.objects.filter(type="voice").exists()


def test_a_voicemail_callback_without_a_recording_sid_is_a_400(api):
    assert _post(api, _inbound_path(), {"RecordingStatus": "completed"}).status_code == 400


# --- Outbound calls: instructions and progress ----------------------------------------


def _voice_message(**call) -> Message:
    return MessageFactory(
        type="voice",
        body="Your order shipped.",
        call={"mode": "voicemail_drop", "voice": "alice", "language": "en-US", "human": "same"} | call,
        status=Message.Status.SENT,
        provider="twilio-voice",
        provider_message_id="CA" + "5" * 32,
    )


def _instructions(api, message, answered_by: str):
    path = f"/api/webhooks/providers/twilio-voice/twiml?ref={message.pk}"
    return _twiml(_post(api, path, {"CallSid": message.provider_message_id, "AnsweredBy": answered_by}))


def test_a_drop_says_its_message_to_the_machine_and_what_human_asks_to_a_person(api):
    message = _voice_message(human="message", human_say="Call us back.")

    machine = _instructions(api, message, "machine_end_beep")
    person = _instructions(api, message, "human")

    say = machine.find("Say")
    assert (say.text, say.get("voice"), say.get("language")) == ("Your order shipped.", "alice", "en-US")
    assert person.find("Say").text == "Call us back."


def test_instructions_for_an_unknown_call_hang_up(api):
    root = _twiml(_post(api, "/api/webhooks/providers/twilio-voice/twiml?ref=999999", {"AnsweredBy": "human"}))

    assert [verb.tag for verb in root] == ["Hangup"]


def _progress(api, message, status: str, **extra):
    params = {"CallSid": message.provider_message_id, "CallStatus": status, "AccountSid": "AC1"} | extra
    return _post(api, f"/api/webhooks/providers/twilio-voice/status?ref={message.pk}", params)


def test_call_progress_out_of_order_and_duplicated_moves_forward_once(api):
    message = _voice_message()

    answers = [
        _progress(api, message, "completed", CallDuration="31", AnsweredBy="machine_end_beep"),
        _progress(api, message, "completed", CallDuration="31", AnsweredBy="machine_end_beep"),
        _progress(api, message, "in-progress", AnsweredBy="machine_start"),
        _progress(api, message, "ringing"),
    ]

    assert [a.json()["duplicates"] for a in answers] == [0, 1, 0, 0]
    message.refresh_from_db()
    assert (message.status, message.duration, message.answered_by) == ("delivered", 31, "machine")
    assert WebhookEvent.objects.filter(kind="status", message=message).count() == 3
    applied = list(message.events.filter(kind="callback").values_list("detail__applied", flat=True))
    assert applied == [True, False, False]


def test_a_drop_that_hung_up_on_a_person_ends_undelivered(api):
    message = _voice_message(human="hangup")

    _progress(api, message, "in-progress", AnsweredBy="human")
    _progress(api, message, "completed", CallDuration="2")

    message.refresh_from_db()
    assert (message.status, message.error_code, message.answered_by) == ("undelivered", "answered_by_human", "human")


def test_a_busy_call_is_undelivered_with_the_reason(api):
    message = _voice_message()

    _progress(api, message, "busy", CallDuration="0")

    message.refresh_from_db()
    assert (message.status, message.error_code, message.duration) == ("undelivered", "busy", 0)


def test_call_progress_signed_with_another_token_is_refused(api):
    message = _voice_message()

    path = f"/api/webhooks/providers/twilio-voice/status?ref={message.pk}"
    response = _post(api, path, {"CallSid": message.provider_message_id, "CallStatus": "completed"}, token="x")

    assert response.status_code == 401
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
