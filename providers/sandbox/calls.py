"""What the sandbox's Twilio does once a call is placed, or comes in: run later by the
callbacks task, as a message's receipts are (callbacks.py), signed as Twilio signs.

An outbound call goes by its recipient's behaviour (behaviour.py): it fails, rings busy,
rings unanswered, or is answered by a machine (+15005550008) or a person (anyone
else). Answered, it runs its TwiML: the inline `Twiml`, or what our `Url` answers when
asked with `AnsweredBy` (answering-machine detection waits for the beep, so a drop
plays after it). Its progress goes to the `StatusCallback` for the events asked, with
`CallDuration` at the end. TwiML that cannot be fetched or read fails the call
(`ErrorCode` 11200 or 12100): Twilio would play an "application error" and hang up,
and a test double should make that loud.

An inbound call (`POST /sandbox/calls/inbound`) asks our voice webhook what to do,
hears the greeting, leaves `speech` after the beep, and posts what `<Record>` asks
for: its action, the recording's status callback, the transcription.

A run that a webhook of ours refuses with a 5xx is run again with backoff, whole: the
receipts already posted come again (our webhooks take each once), and a voicemail
keeps its recording's sid, so it is stored once.
"""

import logging
import math
import secrets
import xml.etree.ElementTree as ET
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urljoin

from django.conf import settings
from django.utils import timezone

from providers.sandbox.behaviour import Behaviour, behaviour_for
from providers.sandbox.callbacks import BATCH, CallbackFailed, claim_due, later, post
from providers.sandbox.models import SandboxCall
from providers.twilio import twilio_signature

logger = logging.getLogger(__name__)

SPEECH_CHARS_PER_SECOND = 15
PLAY_SECONDS = 10
#: an answering machine's greeting, before the beep
MACHINE_GREETING_SECONDS = 6
API = "2010-04-01"


def calls_due_send(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """Run up to `limit` calls that are due; returns how many were taken."""
    ids = claim_due(SandboxCall, now=now or timezone.now(), limit=limit)
    for found in SandboxCall.objects.filter(pk__in=ids).order_by("id"):
        try:
            call_run(call=found)
        except CallbackFailed as exc:
            later(found, exc)
    return len(ids)


def call_run(*, call: SandboxCall) -> None:
    if call.direction == "inbound":
        _voicemail(call)
    else:
        _outbound(call)
    SandboxCall.objects.filter(pk=call.pk).update(
        status=call.status,
        answered_by=call.answered_by,
        duration=call.duration,
        played=call.played,
        recording_sid=call.recording_sid,
        callbacks_due_at=None,
    )


def _account(label: str) -> tuple[str, str]:
    instance = settings.PROVIDERS.get(label, {})
    sid = instance.get("account_sid", settings.TWILIO_ACCOUNT_SID)
    return sid, instance.get("auth_token", settings.TWILIO_AUTH_TOKEN)


def _signed_post(label: str, url: str, params: dict[str, str]):
    """POST `params` to one of our webhooks as Twilio does: form-encoded, signed with the
    instance's auth token over the URL and the parameters. A 5xx (or no answer) raises
    CallbackFailed: the run is tried again later."""
    _, token = _account(label)
    signature = twilio_signature(token, url, {k: [v] for k, v in params.items()})
    return post(url, data=params, headers={"X-Twilio-Signature": signature})


# --- Outbound -------------------------------------------------------------------------


def _outbound(call: SandboxCall) -> None:
    behaviour = behaviour_for(call.to_address)
    account_sid, _ = _account(call.label)
    base = {
        "CallSid": call.sid,
        "AccountSid": account_sid,
        "From": call.from_address,
        "To": call.to_address,
        "ApiVersion": API,
        "Direction": "outbound-api",
        "CallbackSource": "call-progress-events",
    }
    sequence = iter(range(100))

    def progress(event: str, status: str, **extra: str) -> None:
        call.status = status
        if call.status_callback and event in call.status_callback_events:
            params = base | {"CallStatus": status, "SequenceNumber": str(next(sequence))} | extra
            params["Timestamp"] = format_datetime(timezone.now(), usegmt=True)
            _signed_post(call.label, call.status_callback, params)

    progress("initiated", "initiated")
    if behaviour is Behaviour.BOUNCE:
        call.duration = 0
        progress("completed", "failed", CallDuration="0", SipResponseCode="404")
        return
    progress("ringing", "ringing")
    if behaviour in (Behaviour.BUSY, Behaviour.NO_ANSWER):
        status, sip = ("busy", "486") if behaviour is Behaviour.BUSY else ("no-answer", "487")
        call.duration = 0
        progress("completed", status, CallDuration="0", SipResponseCode=sip)
        return
    detected = {}
    if call.machine_detection:
        call.answered_by = "machine_end_beep" if behaviour is Behaviour.MACHINE else "human"
        detected = {"AnsweredBy": call.answered_by}
    twiml, error = (call.twiml, "") if call.twiml else _instructions(call, base | detected)
    progress("answered", "in-progress", **detected)
    if error:
        call.duration = 1
        progress("completed", "failed", CallDuration="1", ErrorCode=error, **detected)
        return
    call.played = twiml
    call.duration = _spoken_seconds(twiml) + (MACHINE_GREETING_SECONDS if behaviour is Behaviour.MACHINE else 0)
    progress("completed", "completed", CallDuration=str(call.duration), **detected)


def _instructions(call: SandboxCall, params: dict) -> tuple[str, str]:
    """The TwiML our `Url` answers for the answered call, or the error code of a failure."""
    result = _signed_post(call.label, call.url, params | {"CallStatus": "in-progress"})
    if result.status != 200:
        logger.warning("sandbox: call %s: %s answered %s", call.sid, call.url, result.status)
        return "", "11200"  # HTTP retrieval failure
    document = result.body.decode("utf-8", "replace")
    if _parsed(document) is None:
        logger.warning("sandbox: call %s: %s answered a document that is not TwiML", call.sid, call.url)
        return "", "12100"  # document parse failure
    return document, ""


def _parsed(document: str) -> ET.Element | None:
    try:
        # Our own TwiML; ElementTree resolves no external entity and expat refuses entity bombs.
        root = ET.fromstring(document)  # noqa: S314
    except ET.ParseError:
        return None
    return root if root.tag == "Response" else None


def _spoken_seconds(document: str) -> int:
    """How long the call lasts while its TwiML runs: the time to say or play each verb."""
    seconds = 1
    for verb in _parsed(document) or []:
        if verb.tag == "Say":
            seconds += math.ceil(len(verb.text or "") / SPEECH_CHARS_PER_SECOND)
        elif verb.tag == "Play":
            seconds += PLAY_SECONDS
        elif verb.tag in ("Hangup", "Reject"):
            break
    return seconds


# --- Inbound --------------------------------------------------------------------------


def call_incoming_new(*, label: str, from_address: str, to_address: str, speech: str) -> SandboxCall:
    """A call to one of our numbers, to run at once: it will leave `speech` as a voicemail."""
    return SandboxCall.objects.create(
        label=label,
        sid="CA" + secrets.token_hex(16),
        direction="inbound",
        to_address=to_address,
        from_address=from_address,
        status="ringing",
        speech=speech,
        callbacks_due_at=timezone.now(),
    )


def _voicemail(call: SandboxCall) -> None:
    account_sid, _ = _account(call.label)
    voice_url = f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/{call.label}/voice"
    base = {
        "CallSid": call.sid,
        "AccountSid": account_sid,
        "From": call.from_address,
        "To": call.to_address,
        "Caller": call.from_address,
        "Called": call.to_address,
        "ApiVersion": API,
        "Direction": "inbound",
    }
    result = _signed_post(call.label, voice_url, base | {"CallStatus": "ringing"})
    document = result.body.decode("utf-8", "replace") if result.status == 200 else ""
    root = _parsed(document)
    call.played = document
    if root is None:
        call.status = "failed"
        return
    if root.find("Reject") is not None:
        call.status = "busy"  # how Twilio reports a rejected call
        return
    record = root.find("Record")
    if record is None:
        call.status, call.duration = "completed", _spoken_seconds(document)
        return
    # The recording's sid is made once: a run tried again stores the same voicemail.
    if not call.recording_sid:
        call.recording_sid = "RE" + secrets.token_hex(16)
        limit = int(record.get("maxLength", "3600") or 3600)
        call.duration = min(max(1, math.ceil(len(call.speech) / SPEECH_CHARS_PER_SECOND)), limit)
        SandboxCall.objects.filter(pk=call.pk).update(recording_sid=call.recording_sid, duration=call.duration)
    audio = f"{settings.SANDBOX_BASE_URL}/{call.label}/{API}/Accounts/{account_sid}/Recordings/{call.recording_sid}"
    recording = {
        "RecordingSid": call.recording_sid,
        "RecordingUrl": audio,
        "RecordingDuration": str(call.duration),
    }
    if action := record.get("action"):
        hung_up = {"CallStatus": "completed", "Digits": "hangup"}
        _signed_post(call.label, urljoin(voice_url, action), base | recording | hung_up)
    if callback := record.get("recordingStatusCallback"):
        status = {"RecordingStatus": "completed", "RecordingChannels": "1", "RecordingSource": "RecordVerb"}
        started = {"RecordingStartTime": format_datetime(call.created_at, usegmt=True)}
        _signed_post(
            call.label,
            urljoin(voice_url, callback),
            {"AccountSid": account_sid, "CallSid": call.sid} | recording | status | started,
        )
    if record.get("transcribe") == "true" and (callback := record.get("transcribeCallback")) and call.speech:
        transcription = {
            "TranscriptionSid": "TR" + call.recording_sid[2:],
            "TranscriptionText": call.speech,
            "TranscriptionStatus": "completed",
            "TranscriptionType": "fast",
            "CallStatus": "completed",
        }
        _signed_post(call.label, urljoin(voice_url, callback), base | recording | transcription)
    call.status = "completed"
