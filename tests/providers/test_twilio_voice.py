"""The Twilio Voice adapter against recorded wire shapes, with only the network edge
intercepted (`responses`): what it sends, how it reads every answer, the TwiML it
writes (parsed back with an XML parser, compared with twilio's own TwiML classes)."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
import responses
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from providers.base import (
    CallMode,
    CallSpec,
    Greeting,
    HumanAnswer,
    IncomingCall,
    OutboundMessage,
    Outcome,
    PermanentError,
    TransientError,
    Verdict,
    WebhookRequest,
)
from providers.twilio_voice import TWIML_INLINE_MAX, TwilioVoiceProvider

CALLS = "https://twilio.test/2010-04-01/Accounts/AC1/Calls.json"
TOKEN = "voice-test-token"
HOSTILE = "</Say><Hangup/>& \"quoted\" 'single' <![CDATA[x]]> \x00\x0b"
DROP_HANGUP = CallSpec(mode=CallMode.VOICEMAIL_DROP, say="Hi", human=HumanAnswer.HANGUP)
HOSTILE_AS_SPOKEN = "</Say><Hangup/>& \"quoted\" 'single' <![CDATA[x]]> "


def _provider(**options) -> TwilioVoiceProvider:
    options = {"base_url": "https://twilio.test", "account_sid": "AC1", "auth_token": TOKEN} | options
    return TwilioVoiceProvider("twilio-voice", options=options, callback_base_url="https://svc.test", timeout=1)


def _message(**spec) -> OutboundMessage:
    call = CallSpec(**({"say": "Hello there."} | spec))
    return OutboundMessage(
        reference="42", type="voice", from_address="+12016661234", to_address="+18045551234", body=call.say, call=call
    )


def _sent_form(mock) -> list[tuple[str, str]]:
    return parse_qsl(mock.calls[-1].request.body, keep_blank_values=True)


def _parse(document: str) -> ET.Element:
    return ET.fromstring(document)  # noqa: S314 (our own output, under test)


def _canonical(document: str) -> str:
    return ET.canonicalize(document.removeprefix('<?xml version="1.0" encoding="UTF-8"?>'))


@responses.activate
def test_a_call_carries_its_twiml_inline_and_asks_for_every_progress_event():
    responses.post(CALLS, json={"sid": "CA1", "status": "queued"}, status=201)

    result = _provider().send(_message(voice="Polly.Joanna", language="en-US"))

    assert (result.outcome, result.provider_message_id) == (Outcome.SUCCESS, "CA1")
    form = _sent_form(responses)
    fields = dict(form)
    assert (fields["To"], fields["From"]) == ("+18045551234", "+12016661234")
    say = _parse(fields["Twiml"]).find("Say")
    assert (say.text, say.get("voice"), say.get("language")) == ("Hello there.", "Polly.Joanna", "en-US")
    assert "Url" not in fields and "MachineDetection" not in fields
    assert fields["StatusCallback"] == "https://svc.test/api/webhooks/providers/twilio-voice/status?ref=42"
    assert [v for k, v in form if k == "StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


@responses.activate
def test_a_voicemail_drop_waits_for_the_beep_and_asks_us_what_to_say():
    responses.post(CALLS, json={"sid": "CA2"}, status=201)

    _provider().send(_message(mode=CallMode.VOICEMAIL_DROP))

    fields = dict(_sent_form(responses))
    assert fields["MachineDetection"] == "DetectMessageEnd"
    assert fields["Url"] == "https://svc.test/api/webhooks/providers/twilio-voice/twiml?ref=42"
    assert "Twiml" not in fields


@responses.activate
def test_twiml_too_long_to_go_inline_is_asked_for_instead():
    responses.post(CALLS, json={"sid": "CA3"}, status=201)

    _provider().send(_message(say="&" * (TWIML_INLINE_MAX // 5)))  # each & is written &amp;

    fields = dict(_sent_form(responses))
    assert "Twiml" not in fields and fields["Url"].endswith("/twiml?ref=42")


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome", "code"),
    [
        (400, {"code": 21211, "message": "Invalid 'To' Phone Number"}, {}, Outcome.PERMANENT, "21211"),
        (429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "3"}, Outcome.TRANSIENT, "20429"),
        (500, {"code": 20500, "message": "Internal Server Error"}, {}, Outcome.AMBIGUOUS, "20500"),
        (201, {"status": "queued"}, {}, Outcome.AMBIGUOUS, ""),
    ],
)
@responses.activate
def test_every_answer_to_a_create_is_classified(status, body, headers, outcome, code):
    responses.post(CALLS, json=body, status=status, headers=headers)

    result = _provider().send(_message())

    assert (result.outcome, result.error_code, result.provider_message_id) == (outcome, code, "")
    assert result.retry_after == (3.0 if headers else None)


@responses.activate
def test_a_create_that_times_out_may_have_rung_and_is_ambiguous():
    responses.post(CALLS, body=requests.ReadTimeout("read timed out"))

    assert _provider().send(_message()).outcome is Outcome.AMBIGUOUS


def test_a_message_without_a_call_is_refused_without_a_request():
    message = OutboundMessage(reference="1", type="sms", from_address="+1", to_address="+2", body="hi")

    assert _provider().send(message).outcome is Outcome.PERMANENT


# --- TwiML ----------------------------------------------------------------------------


def _reply_for(spec: CallSpec, answered_by: str) -> ET.Element:
    message = OutboundMessage(reference="1", type="voice", from_address="+1", to_address="+2", body=spec.say, call=spec)
    form = {"AnsweredBy": [answered_by]} if answered_by else {}
    reply = _provider().call_reply(message, WebhookRequest(url="https://svc.test/x", headers={}, body=b"", form=form))
    assert reply.content_type == "text/xml"
    return _parse(reply.body)


def test_twiml_escapes_what_it_says_and_drops_what_xml_cannot_hold():
    root = _reply_for(CallSpec(say=HOSTILE, voice='a"b', language="en-US"), "")

    assert [verb.tag for verb in root] == ["Say"]
    assert root[0].text == HOSTILE_AS_SPOKEN
    assert root[0].get("voice") == 'a"b'


@pytest.mark.parametrize(
    ("spec", "answered_by", "build"),
    [
        (CallSpec(say="Hi"), "", lambda r: r.say("Hi")),
        (CallSpec(play="https://x.test/a.mp3?x=1&y=2"), "", lambda r: r.play("https://x.test/a.mp3?x=1&y=2")),
        (
            CallSpec(mode=CallMode.VOICEMAIL_DROP, say=HOSTILE, voice="alice", language="en-GB"),
            "machine_end_beep",
            lambda r: r.say(HOSTILE_AS_SPOKEN, voice="alice", language="en-GB"),
        ),
        (CallSpec(mode=CallMode.VOICEMAIL_DROP, say="Hi", human=HumanAnswer.SAME), "human", lambda r: r.say("Hi")),
        (
            CallSpec(mode=CallMode.VOICEMAIL_DROP, say="Hi", human=HumanAnswer.MESSAGE, human_say="Call back <3"),
            "human",
            lambda r: r.say("Call back <3"),
        ),
        (CallSpec(mode=CallMode.VOICEMAIL_DROP, say="Hi", human=HumanAnswer.HANGUP), "human", lambda r: r.hangup()),
        (
            CallSpec(mode=CallMode.VOICEMAIL_DROP, say="Hi", human=HumanAnswer.HANGUP),
            "machine_start",
            lambda r: r.say("Hi"),
        ),
    ],
)
def test_call_twiml_is_what_twilios_own_classes_write(spec, answered_by, build):
    expected = VoiceResponse()
    build(expected)

    ours = ET.tostring(_reply_for(spec, answered_by), encoding="unicode")

    assert _canonical(ours) == _canonical(expected.to_xml())


def test_the_voicemail_greeting_records_with_callbacks_that_name_both_numbers():
    call = IncomingCall(call_sid="CA1", from_address="+18045551234", to_address="+12016661234")

    reply = _provider().answer_call(call, greeting=Greeting(text=HOSTILE, max_seconds=60))

    root = _parse(reply.body)
    assert reply.body.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert [verb.tag for verb in root] == ["Say", "Record", "Hangup"]
    assert root[0].text == HOSTILE_AS_SPOKEN
    record = root[1]
    assert record.get("maxLength") == "60"
    query = parse_qs(urlsplit(record.get("recordingStatusCallback")).query)
    assert query == {"from": ["+18045551234"], "to": ["+12016661234"]}
    assert record.get("transcribeCallback") == record.get("recordingStatusCallback")


def test_a_call_nobody_takes_is_rejected_and_a_recorded_one_hung_up():
    call = IncomingCall(call_sid="CA1", from_address="+1", to_address="+2")
    recorded = IncomingCall(call_sid="CA1", from_address="+1", to_address="+2", recorded=True)

    assert [v.tag for v in _parse(_provider().answer_call(call, greeting=None).body)] == ["Reject"]
    assert [v.tag for v in _parse(_provider().answer_call(recorded, greeting=Greeting("x")).body)] == ["Hangup"]


# --- Lookup (reconciling an ambiguous create) -----------------------------------------


def _resource(sid: str, created: datetime) -> dict:
    return {"sid": sid, "date_created": format_datetime(created, usegmt=True), "status": "completed"}


@responses.activate
def test_lookup_finds_the_calls_between_the_two_numbers_since_the_message_oldest_first():
    since = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    calls = [
        _resource("CAnew", since + timedelta(seconds=30)),
        _resource("CAfirst", since + timedelta(seconds=2)),
        _resource("CAskewed", since - timedelta(seconds=20)),  # Twilio's clock a little behind ours
        _resource("CAold", since - timedelta(hours=1)),
        {"sid": "CAundated", "date_created": None},
    ]
    responses.get(CALLS, json={"calls": calls})

    found = _provider().lookup(_message(), since=since)

    assert found == ["CAskewed", "CAfirst", "CAnew"]
    params = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert (params["To"], params["From"]) == (["+18045551234"], ["+12016661234"])


@pytest.mark.parametrize("answer", [{"status": 500, "json": {"code": 20500}}, {"status": 200, "json": {"nope": 1}}])
@responses.activate
def test_a_lookup_that_cannot_answer_raises_transient(answer):
    responses.get(CALLS, **answer)

    with pytest.raises(TransientError):
        _provider().lookup(_message(), since=datetime.now(UTC))


# --- Progress callbacks ---------------------------------------------------------------


def _status_request(form: dict) -> WebhookRequest:
    return WebhookRequest(
        url="https://svc.test/api/webhooks/providers/twilio-voice/status?ref=42",
        headers={},
        body=b"",
        form={k: [v] for k, v in form.items()},
    )


@pytest.mark.parametrize(
    ("call_status", "ours", "error_code"),
    [
        ("queued", "", ""),
        ("initiated", "sent", ""),
        ("ringing", "sent", ""),
        ("in-progress", "sent", ""),
        ("completed", "delivered", ""),
        ("busy", "undelivered", "busy"),
        ("no-answer", "undelivered", "no-answer"),
        ("failed", "undelivered", "failed"),
        ("canceled", "undelivered", "canceled"),
        ("teleported", "unknown", ""),
    ],
)
def test_call_statuses_map_onto_the_message_statuses(call_status, ours, error_code):
    (update,) = _provider().parse_status(_status_request({"CallSid": "CA1", "CallStatus": call_status}))

    assert (update.status, update.error_code, update.provider_status) == (ours, error_code, call_status)
    assert (update.reference, update.provider_message_id, update.event_id) == ("42", "CA1", f"CA1:{call_status}")


@pytest.mark.parametrize(
    ("raw", "ours"),
    [
        ("human", "human"),
        ("machine_start", "machine"),
        ("machine_end_beep", "machine"),
        ("machine_end_silence", "machine"),
        ("machine_end_other", "machine"),
        ("fax", "fax"),
        ("unknown", "unknown"),
        ("robot", "unknown"),
        ("", ""),
    ],
)
def test_answered_by_and_duration_are_read(raw, ours):
    form = {"CallSid": "CA1", "CallStatus": "completed", "CallDuration": "37", "AnsweredBy": raw}

    (update,) = _provider().parse_status(_status_request(form))

    assert (update.answered_by, update.duration_seconds) == (ours, 37)


# --- Signatures -----------------------------------------------------------------------


def _signed(token: str, url: str, params: dict) -> WebhookRequest:
    signature = RequestValidator(token).compute_signature(url, params)
    return WebhookRequest(
        url=url,
        headers={"x-twilio-signature": signature},
        body=b"",
        form={k: [v] for k, v in params.items()},
    )


def test_signatures_valid_invalid_rotated_and_missing():
    url, params = "https://svc.test/api/webhooks/providers/twilio-voice/voice", {"CallSid": "CA1", "From": "+1"}
    rotated = _provider(auth_token="new", previous_auth_tokens=[TOKEN])

    assert _provider().verify_webhook(_signed(TOKEN, url, params)) is Verdict.VALID
    assert _provider().verify_webhook(_signed("other", url, params)) is Verdict.INVALID
    assert rotated.verify_webhook(_signed(TOKEN, url, params)) is Verdict.VALID
    assert rotated.verify_webhook(_signed("new", url, params)) is Verdict.VALID
    tampered = _signed(TOKEN, url, params)
    tampered.form["From"] = ["+2"]
    assert _provider().verify_webhook(tampered) is Verdict.INVALID
    assert _provider().verify_webhook(WebhookRequest(url=url, headers={}, body=b"")) is Verdict.MISSING


# --- Voicemails and their recordings --------------------------------------------------


def test_a_transcription_without_text_stores_the_voicemail_without_a_body():
    form = {"RecordingSid": "RE1", "TranscriptionSid": "TR1", "TranscriptionStatus": "failed", "From": "+1", "To": "+2"}

    (voicemail,) = _provider().parse_inbound(_status_request(form))

    assert (voicemail.provider_message_id, voicemail.body, voicemail.type) == ("RE1", "", "voice")


@responses.activate
def test_recordings_are_fetched_only_from_the_providers_own_host():
    responses.get(
        "https://twilio.test/2010-04-01/Accounts/AC1/Recordings/RE1", body=b"RIFF", content_type="audio/x-wav"
    )
    responses.get("https://twilio.test/2010-04-01/Accounts/AC1/Recordings/RE2", status=404)
    responses.get("https://twilio.test/2010-04-01/Accounts/AC1/Recordings/RE3", status=503)

    recording = _provider().recording_fetch("https://twilio.test/2010-04-01/Accounts/AC1/Recordings/RE1")

    assert (recording.content, recording.content_type) == (b"RIFF", "audio/x-wav")
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    with pytest.raises(PermanentError):
        _provider().recording_fetch("https://evil.test/2010-04-01/Accounts/AC1/Recordings/RE1")
    with pytest.raises(PermanentError):
        _provider().recording_fetch("https://twilio.test/2010-04-01/Accounts/AC1/Recordings/RE2")
    with pytest.raises(TransientError):
        _provider().recording_fetch("https://twilio.test/2010-04-01/Accounts/AC1/Recordings/RE3")
    assert len(responses.calls) == 3  # the foreign host was never asked
