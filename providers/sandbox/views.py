"""The provider sandbox: the parts of Twilio's Messages API and SendGrid's v3 API that
our adapters and the providers' SDKs use, served over real HTTP under /sandbox/<label>/,
where <label> names a provider instance (twilio, twilio-backup, sendgrid, ...). It
answers in the providers' own formats and error bodies (twilio_api.py, sendgrid_api.py),
posts signed status callbacks back to our webhooks, and misbehaves on purpose for the
recipients in `behaviour.RECIPIENTS`. This module holds the operator's side: what
reached the sandbox, and the switch that takes an instance down.
"""

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from providers.sandbox.behaviour import set_down
from providers.sandbox.models import SandboxMessage


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
