"""The sandbox's Twilio Voice face: the Calls API (create, fetch, list) and the audio of
the voicemails it recorded, at /sandbox/<label>/2010-04-01/Accounts/<sid>/..., in
Twilio's resources and error bodies. A create applies the recipients' behaviour as a
message create does (reject, 500, 429, a create answered after the client's timeout);
the call itself runs later, in the callbacks task (calls.py). The official `twilio`
SDK is held to it in tests/providers/test_sandbox_twilio_voice_sdk.py."""

import io
import math
import struct
import wave
import xml.etree.ElementTree as ET
from datetime import timedelta
from email.utils import format_datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from providers.sandbox.behaviour import Behaviour
from providers.sandbox.common import accept, new_sid, query_param
from providers.sandbox.models import SandboxCall
from providers.sandbox.twilio_api import (
    API,
    E164,
    TwilioError,
    list_page,
    twilio_endpoint,
    twilio_error,
)

#: Twilio refuses a longer `Twiml` parameter
TWIML_MAX = 4000
EVENTS = {"initiated", "ringing", "answered", "completed"}


def _calls_uri(account_sid: str) -> str:
    return f"/{API}/Accounts/{account_sid}/Calls"


def call_resource(found: SandboxCall, account_sid: str) -> dict:
    created = format_datetime(found.created_at, usegmt=True)
    started = found.status not in ("queued", "initiated", "ringing", "busy", "no-answer", "failed", "canceled")
    ended = found.duration is not None
    uri = f"{_calls_uri(account_sid)}/{found.sid}"
    return {
        "account_sid": account_sid,
        "annotation": None,
        "answered_by": found.answered_by or None,
        "api_version": API,
        "caller_name": None,
        "date_created": created,
        "date_updated": created,
        "direction": found.direction,
        "duration": str(found.duration) if ended else None,
        "end_time": format_datetime(found.created_at + timedelta(seconds=found.duration or 0), usegmt=True)
        if ended
        else None,
        "forwarded_from": None,
        "from": found.from_address,
        "from_formatted": found.from_address,
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": found.sid,
        "start_time": created if started else None,
        "status": found.status,
        "subresource_uris": {
            "recordings": f"{uri}/Recordings.json",
            "notifications": f"{uri}/Notifications.json",
        },
        "to": found.to_address,
        "to_formatted": found.to_address,
        "trunk_sid": None,
        "uri": f"{uri}.json",
    }


def calls_store(label: str, *, rows: list[dict], callbacks_in: float = 0.0) -> list[SandboxCall]:
    due = timezone.now() + timedelta(seconds=callbacks_in)
    return [SandboxCall.objects.create(label=label, callbacks_due_at=due, **row) for row in rows]


@twilio_endpoint(("GET", "POST"))
def calls(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    if request.method == "GET":
        rows = SandboxCall.objects.filter(label=label)
        given = {}
        for name, field in (("To", "to_address"), ("From", "from_address"), ("Status", "status")):
            if request.GET.get(name):
                given[name] = request.GET[name]
                rows = rows.filter(**{field: given[name]})
        uri = f"{_calls_uri(account_sid)}.json"
        return list_page(request, uri, "calls", rows, given, lambda row: call_resource(row, account_sid))
    return _create(request, label, account_sid)


def _create(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    form = request.POST
    to, sender = form.get("To", ""), form.get("From", "")
    twiml, url = form.get("Twiml", ""), form.get("Url", "")
    if not to:
        raise TwilioError(400, 21201, "No 'To' number is specified")
    if not sender:
        raise TwilioError(400, 21213, "No 'From' number is specified")
    if not E164.match(to):
        raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not (twiml or url) or (twiml and url):
        raise TwilioError(400, 21205, "Either Url or Twiml is required, and not both")
    if len(twiml) > TWIML_MAX:
        raise TwilioError(400, 20001, f"Twiml cannot be longer than {TWIML_MAX} characters")
    if twiml and not well_formed(twiml):
        raise TwilioError(400, 12100, "Document parse failure: Twiml is not a valid TwiML document")
    events = form.getlist("StatusCallbackEvent")
    if unknown := [event for event in events if event not in EVENTS]:
        raise TwilioError(400, 20001, f"Invalid StatusCallbackEvent: {', '.join(unknown)}")
    callback = form.get("StatusCallback", "")
    row = {
        "sid": new_sid("CA"),
        "reference": query_param(callback, "ref"),
        "to_address": to,
        "from_address": sender,
        "twiml": twiml,
        "url": url,
        "machine_detection": form.get("MachineDetection", ""),
        "status_callback": callback,
        # Without StatusCallbackEvent, Twilio posts only the call's end.
        "status_callback_events": events or ["completed"],
    }
    return accept(
        label,
        rows=[row],
        store=calls_store,
        respond=lambda stored: JsonResponse(call_resource(stored[0], account_sid), status=201),
        errors={
            Behaviour.REJECT: lambda: twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}"),
            Behaviour.ERROR: lambda: twilio_error(500, 20500, "Internal Server Error"),
            Behaviour.RATE_LIMIT: lambda: twilio_error(429, 20429, "Too Many Requests", Retry_After="1"),
        },
    )


def well_formed(document: str) -> bool:
    try:
        # ElementTree resolves no external entity and expat refuses entity bombs.
        return ET.fromstring(document).tag == "Response"  # noqa: S314
    except ET.ParseError:
        return False


@twilio_endpoint(("GET",))
def call(request: HttpRequest, label: str, account_sid: str, sid: str) -> HttpResponse:
    found = SandboxCall.objects.filter(label=label, sid=sid).first()
    if found is None:
        raise TwilioError(404, 20404, f"The requested resource {_calls_uri(account_sid)}/{sid}.json was not found")
    return JsonResponse(call_resource(found, account_sid))


@twilio_endpoint(("GET",))
def recording_audio(request: HttpRequest, label: str, account_sid: str, sid: str, extension: str) -> HttpResponse:
    """A recording's audio, as Twilio serves a RecordingUrl (WAV; `.mp3` is not made here)."""
    found = SandboxCall.objects.filter(label=label, recording_sid=sid).first()
    if found is None or extension == ".mp3":
        raise TwilioError(
            404, 20404, f"The requested resource /{API}/Accounts/{account_sid}/Recordings/{sid} was not found"
        )
    return HttpResponse(tone(seconds=found.duration or 1), content_type="audio/x-wav")


def tone(*, seconds: int, rate: int = 8000) -> bytes:
    """A WAV of `seconds` of a quiet 440 Hz tone: what the sandbox "recorded"."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        one = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(rate))
        audio.writeframes(one * max(seconds, 1))
    return buffer.getvalue()
