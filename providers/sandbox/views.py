"""The provider sandbox: the parts of Twilio's Messages API and SendGrid's v3 API that
our adapters and the providers' SDKs use, served over real HTTP under /sandbox/<label>/,
where <label> names a provider instance (twilio, twilio-backup, sendgrid, ...). It
answers in the providers' own formats and error bodies (twilio_api.py, sendgrid_api.py),
posts signed status callbacks back to our webhooks, and misbehaves on purpose for the
recipients in `behaviour.RECIPIENTS`. This module holds the operator's side: what
reached the sandbox, and the switch that takes an instance down.
"""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from providers.sandbox.behaviour import set_down
from providers.sandbox.callbacks import callbacks_wake
from providers.sandbox.calls import call_incoming_new
from providers.sandbox.models import SandboxCall, SandboxMessage


@require_GET
def inspect_messages(request: HttpRequest) -> JsonResponse:
    """What reached the sandbox: filter by to, label, reference."""
    messages = SandboxMessage.objects.order_by("id")
    for param, field in (("to", "to_address"), ("label", "label"), ("reference", "reference")):
        if request.GET.get(param):
            messages = messages.filter(**{field: request.GET[param]})
    rows = list(
        messages.values("sid", "label", "reference", "to_address", "from_address", "body", "status", "created_at")[
            :1000
        ]
    )
    return JsonResponse({"count": messages.count(), "messages": rows})


@csrf_exempt
@require_http_methods(["POST"])
def control(request: HttpRequest) -> JsonResponse:
    """{"label": "twilio", "down": true}: take a provider instance down (or back up)."""
    try:
        payload = json.loads(request.body)
        label, down = str(payload["label"]), bool(payload["down"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse(
            {"error": {"code": "invalid_request", "message": 'send {"label": "...", "down": true|false}'}}, status=400
        )
    set_down(label, down)
    return JsonResponse({"label": label, "down": down})


@require_GET
def inspect_calls(request: HttpRequest) -> JsonResponse:
    """The calls the sandbox placed or simulated, and how each went: filter by to, from,
    label, reference."""
    calls = SandboxCall.objects.order_by("id")
    for param, field in (
        ("to", "to_address"),
        ("from", "from_address"),
        ("label", "label"),
        ("reference", "reference"),
    ):
        if request.GET.get(param):
            calls = calls.filter(**{field: request.GET[param]})
    fields = ["sid", "label", "direction", "reference", "to_address", "from_address", "status", "answered_by"]
    rows = list(calls.values(*fields, "duration", "played", "recording_sid", "created_at")[:1000])
    return JsonResponse({"count": calls.count(), "calls": rows})


@csrf_exempt
@require_http_methods(["POST"])
def call_inbound(request: HttpRequest) -> JsonResponse:
    """{"label": "twilio-voice", "from": "+1804...", "to": "+1201...", "speech": "..."}: someone
    calls one of our numbers and leaves `speech` as a voicemail. 202: the call runs in the
    sandbox's callbacks task, as Twilio would run it (see calls.py)."""
    try:
        payload = json.loads(request.body)
        label, sender, to = str(payload["label"]), str(payload["from"]), str(payload["to"])
        speech = str(payload.get("speech", ""))
    except (ValueError, KeyError, TypeError):
        return JsonResponse(
            {"error": {"code": "invalid_request", "message": 'send {"label", "from", "to", "speech"}'}}, status=400
        )
    if label not in settings.PROVIDERS:
        return JsonResponse({"error": {"code": "not_found", "message": f"no provider instance {label!r}"}}, status=404)
    call = call_incoming_new(label=label, from_address=sender, to_address=to, speech=speech)
    callbacks_wake()
    return JsonResponse({"sid": call.sid, "status": call.status}, status=202)
