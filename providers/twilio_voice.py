"""Twilio's Programmable Voice API (the subset we use): outbound calls and voicemail
drops, their progress callbacks, and inbound calls answered with a voicemail.

Create: form-encoded POST to Calls.json with `To`, `From` and either `Twiml` (what the
call says, inline) or `Url` (Twilio asks us once the call is answered). A plain call
carries its TwiML inline, so nothing of ours has to answer while it rings; a voicemail
drop asks `MachineDetection=DetectMessageEnd` and gives a `Url`, because what it says
depends on who answered: Twilio waits for the machine's beep and posts `AnsweredBy` to
the URL (so does a plain call whose TwiML is longer than Twilio takes inline). The
`StatusCallback` carries our message id, with every progress event asked for.

Webhooks are signed as for messages (providers/twilio.py). An incoming call is answered
with a greeting and `<Record>`; the recording's status callback and its transcription
come back to our inbound webhook, with the caller's and the called number in the URL
(the recording callback has neither, and Twilio signs the URL with its query).

A call has no client reference at Twilio and no body to match: an ambiguous create is
reconciled by listing the calls between the same two numbers created since our message
(docs/voice.md says what that cannot tell apart).
"""

import logging
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from providers.base import (
    AnsweredBy,
    CallMode,
    CallSpec,
    Greeting,
    HumanAnswer,
    InboundMessage,
    IncomingCall,
    OutboundMessage,
    Outcome,
    PermanentError,
    Provider,
    Recording,
    Reply,
    SendResult,
    StatusUpdate,
    TransientError,
    Verdict,
    WebhookRequest,
)
from providers.http import call
from providers.twilio import created_result, twilio_verify

logger = logging.getLogger(__name__)

# Twilio's call statuses in ours. A call placed is `sent`; one that connected and ended
# is `delivered`; one that never reached anybody (busy, no answer, failed, canceled) is
# `undelivered`, the provider's final word (docs/voice.md).
STATUS_MAP = {
    "queued": "",
    "initiated": "sent",
    "ringing": "sent",
    "in-progress": "sent",
    "completed": "delivered",
    "busy": "undelivered",
    "no-answer": "undelivered",
    "failed": "undelivered",
    "canceled": "undelivered",
}
ANSWERED_BY = {
    "human": AnsweredBy.HUMAN,
    "machine_start": AnsweredBy.MACHINE,
    "machine_end_beep": AnsweredBy.MACHINE,
    "machine_end_silence": AnsweredBy.MACHINE,
    "machine_end_other": AnsweredBy.MACHINE,
    "fax": AnsweredBy.FAX,
    "unknown": AnsweredBy.UNKNOWN,
}
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Twilio refuses a longer `Twiml` parameter; such a call is given a `Url` instead
TWIML_INLINE_MAX = 4000
#: a call Twilio dated this much before our message still counts in a lookup (clocks differ)
LOOKUP_CLOCK_SKEW = timedelta(seconds=60)
RECORDING_MAX_BYTES = 50 * 1024 * 1024
# XML 1.0 has no way to write these characters, escaped or not.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _element(tag: str, text: str = "", **attributes: str) -> ET.Element:
    element = ET.Element(tag, {name: _text(value) for name, value in attributes.items() if value})
    if text:
        element.text = _text(text)
    return element


def twiml(*verbs: ET.Element, declaration: bool = True) -> str:
    """A TwiML document: ElementTree escapes every text and attribute we put in it."""
    response = ET.Element("Response")
    response.extend(verbs)
    return (XML_DECLARATION if declaration else "") + ET.tostring(response, encoding="unicode")


def message_verbs(spec: CallSpec, *, answered_by: str = "") -> list[ET.Element]:
    """What a call says to whoever answered: a drop answered by a person does what its
    `human` behaviour asks; anything else says or plays the message."""
    if spec.mode == CallMode.VOICEMAIL_DROP and answered_by == AnsweredBy.HUMAN:
        if spec.human == HumanAnswer.HANGUP:
            return [_element("Hangup")]
        if spec.human == HumanAnswer.MESSAGE:
            return [_element("Say", spec.human_say, voice=spec.voice, language=spec.language)]
    if spec.play:
        return [_element("Play", spec.play)]
    return [_element("Say", spec.say, voice=spec.voice, language=spec.language)]


def _form(request: WebhookRequest) -> dict[str, str]:
    return {name: values[-1] for name, values in request.form.items()}


def _query(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query).get(name, [""])[0]


def _seconds(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 9 else None


class TwilioVoiceProvider(Provider):
    format = "twilio-voice"

    @property
    def _calls_url(self) -> str:
        return f"{self.options['base_url']}/2010-04-01/Accounts/{self.options['account_sid']}/Calls.json"

    @property
    def _auth(self) -> tuple[str, str]:
        return self.options["account_sid"], self.options["auth_token"]

    def send(self, message: OutboundMessage) -> SendResult:
        spec = message.call
        if spec is None:
            return SendResult(Outcome.PERMANENT, error=f"{self.name} places calls only (a {message.type} came)")
        ref = urlencode({"ref": message.reference})
        form = [("To", message.to_address), ("From", message.from_address)]
        inline = twiml(*message_verbs(spec), declaration=False)
        if spec.mode == CallMode.VOICEMAIL_DROP or len(inline) > TWIML_INLINE_MAX:
            form += [("Url", f"{self.webhook_url('twiml')}?{ref}"), ("Method", "POST")]
        else:
            form.append(("Twiml", inline))
        if spec.mode == CallMode.VOICEMAIL_DROP:
            form.append(("MachineDetection", "DetectMessageEnd"))
        form += [("StatusCallback", f"{self.status_callback_url}?{ref}"), ("StatusCallbackMethod", "POST")]
        form += [("StatusCallbackEvent", event) for event in STATUS_EVENTS]
        result = call("POST", self._calls_url, timeout=self.timeout, data=form, auth=self._auth)
        return created_result(result)

    def lookup(self, message: OutboundMessage, *, since: datetime) -> list[str]:
        # No reference and no body on a call: the calls between the same two numbers
        # created since our message (newest first from Twilio, a page is plenty).
        params = {"To": message.to_address, "From": message.from_address, "PageSize": 50}
        result = call("GET", self._calls_url, timeout=self.timeout, params=params, auth=self._auth)
        payload = result.json() if result.status == 200 else None
        if not isinstance(payload, dict) or not isinstance(payload.get("calls"), list):
            raise TransientError(f"{self.name} lookup failed: {result.error or result.status}")
        cutoff = since - LOOKUP_CLOCK_SKEW
        found = []
        for resource in payload["calls"]:
            created = _date(resource.get("date_created"))
            if resource.get("sid") and created is not None and created >= cutoff:
                found.append((created, resource["sid"]))
        return [sid for _, sid in sorted(found)]

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> Verdict:
        return twilio_verify(self.options, request)

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        form = _form(request)
        provider_status = form.get("CallStatus", "")
        status = STATUS_MAP.get(provider_status)
        if status is None:
            logger.warning("twilio voice: unknown call status %r", provider_status)
            status = "unknown"
        sid = form.get("CallSid", "")
        return [
            StatusUpdate(
                status=status,
                provider_status=provider_status,
                provider_message_id=sid,
                reference=_query(request.url, "ref"),
                event_id=f"{sid}:{provider_status}",
                # Busy and no-answer come without an ErrorCode: the status is the reason.
                error_code=form.get("ErrorCode", "") or (provider_status if status == "undelivered" else ""),
                raw=form,
                duration_seconds=_seconds(form.get("CallDuration", "")),
                answered_by=_answered_by(form.get("AnsweredBy", "")),
            )
        ]

    def call_reply(self, message: OutboundMessage | None, request: WebhookRequest) -> Reply:
        if message is None:
            return Reply(twiml(_element("Hangup")), "text/xml")
        answered_by = _answered_by(_form(request).get("AnsweredBy", ""))
        spec = message.call or CallSpec(say=message.body)
        return Reply(twiml(*message_verbs(spec, answered_by=answered_by)), "text/xml")

    def parse_call(self, request: WebhookRequest) -> IncomingCall:
        form = _form(request)
        missing = [name for name in ("CallSid", "From", "To") if not form.get(name)]
        if missing:
            raise PermanentError(f"an incoming call needs {', '.join(missing)}")
        return IncomingCall(
            call_sid=form["CallSid"], from_address=form["From"], to_address=form["To"], recorded="RecordingSid" in form
        )

    def answer_call(self, call: IncomingCall, *, greeting: Greeting | None) -> Reply:
        if call.recorded:
            return Reply(twiml(_element("Hangup")), "text/xml")
        if greeting is None:
            return Reply(twiml(_element("Reject")), "text/xml")
        # Neither the recording callback nor the transcription need say who called:
        # both come back with the numbers in the (signed) URL.
        inbound = f"{self.webhook_url('inbound')}?{urlencode({'from': call.from_address, 'to': call.to_address})}"
        record = _element(
            "Record",
            action=self.webhook_url("voice"),
            method="POST",
            maxLength=str(greeting.max_seconds),
            playBeep="true",
            finishOnKey="#",
            timeout="5",
            transcribe="true",
            transcribeCallback=inbound,
            recordingStatusCallback=inbound,
            recordingStatusCallbackEvent="completed",
            recordingStatusCallbackMethod="POST",
        )
        return Reply(twiml(_element("Say", greeting.text), record, _element("Hangup")), "text/xml")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """A voicemail, from the recording's status callback or from its transcription:
        the same message either way (keyed by the recording's sid), whichever comes first."""
        form = _form(request)
        sid = form.get("RecordingSid", "")
        if not sid:
            raise PermanentError("a voicemail callback needs RecordingSid")
        if "TranscriptionStatus" in form or "TranscriptionSid" in form:
            body = form.get("TranscriptionText", "") if form.get("TranscriptionStatus") == "completed" else ""
        elif form.get("RecordingStatus", "completed") != "completed":
            return []  # absent (silence) or failed: nothing was left
        else:
            body = ""
        url = form.get("RecordingUrl", "")
        return [
            InboundMessage(
                provider_message_id=sid,
                type="voice",
                from_address=form.get("From") or _query(request.url, "from"),
                to_address=form.get("To") or _query(request.url, "to"),
                body=body,
                attachments=[url] if url else [],
                raw=form,
                duration_seconds=_seconds(form.get("RecordingDuration", "")),
            )
        ]

    def recording_fetch(self, url: str) -> Recording:
        # The URL came in a signed callback, but it is fetched with our credentials:
        # only from the host this instance talks to.
        if urlsplit(url)[:2] != urlsplit(self.options["base_url"])[:2]:
            raise PermanentError(f"{self.name}: not a recording of this provider: {urlsplit(url).netloc}")
        result = call("GET", url, timeout=self.timeout, auth=self._auth)
        if result.status == 200:
            if len(result.body) > RECORDING_MAX_BYTES:
                raise PermanentError(f"{self.name}: recording larger than {RECORDING_MAX_BYTES} bytes")
            content_type = {k.lower(): v for k, v in result.headers.items()}.get("content-type", "audio/x-wav")
            return Recording(result.body, content_type.split(";")[0].strip())
        if result.status is None or result.status == 429 or result.status >= 500:
            raise TransientError(f"{self.name}: recording unavailable: {result.error or result.status}")
        raise PermanentError(f"{self.name}: recording refused: HTTP {result.status}")


def _answered_by(value: str) -> str:
    if not value:
        return ""
    if value not in ANSWERED_BY:
        logger.warning("twilio voice: unknown AnsweredBy %r", value)
        return AnsweredBy.UNKNOWN
    return ANSWERED_BY[value]


def _date(value) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if isinstance(value, str) else None
    except (TypeError, ValueError):
        return None
