"""The provider sandbox: the subset of Twilio's Messages API and SendGrid's v3 API that
our adapters use, served over real HTTP under /sandbox/<label>/, where <label> names a
provider instance (twilio, twilio-backup, sendgrid, ...). It answers in the providers'
own formats and error bodies, posts signed status callbacks back to our webhooks, and
misbehaves on purpose for the recipients in `behaviour.RECIPIENTS`.
"""

import base64
import json
import re
import secrets
import time
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from providers.models import SandboxMessage
from providers.sandbox.behaviour import RATE_LIMITED_TRIES, Behaviour, behaviour_for, is_down, set_down, try_number

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TWILIO_API = "2010-04-01"


def _instance(label: str) -> dict:
    return settings.PROVIDERS.get(label, {})


def _answer_slowly() -> None:
    """Take as long as a real provider API does to answer a create call (SANDBOX_LATENCY_MS)."""
    if settings.SANDBOX_LATENCY_MS:
        time.sleep(settings.SANDBOX_LATENCY_MS / 1000)


def _schedule_callbacks(message: SandboxMessage, *, delay: float = 0) -> None:
    from providers.tasks import sandbox_send_callbacks

    transaction.on_commit(
        lambda: sandbox_send_callbacks.apply_async(args=[message.pk], queue="sandbox", countdown=delay or None)
    )


# --- Twilio ---------------------------------------------------------------------------


def twilio_error(status: int, code: int, message: str, **headers) -> JsonResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _twilio_resource(message: SandboxMessage, account_sid: str) -> dict:
    created = format_datetime(message.created_at, usegmt=True)
    return {
        "account_sid": account_sid,
        "api_version": TWILIO_API,
        "body": message.body,
        "date_created": created,
        "date_updated": created,
        "date_sent": created if message.status != "queued" else None,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_address,
        "messaging_service_sid": None,
        "num_media": str(len(message.media)),
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "to": message.to_address,
        "uri": f"/{TWILIO_API}/Accounts/{account_sid}/Messages/{message.sid}.json",
    }


def _twilio_authorised(request: HttpRequest, label: str, account_sid: str) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    instance = _instance(label)
    token = instance.get("auth_token", settings.TWILIO_AUTH_TOKEN)
    return scheme.lower() == "basic" and user == account_sid and secrets.compare_digest(password, token)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def twilio_messages(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    if is_down(label):
        return twilio_error(503, 20503, "Service Unavailable")
    if not _twilio_authorised(request, label, account_sid):
        return twilio_error(401, 20003, "Authentication Error - invalid username")
    if request.method == "GET":
        return _twilio_list(request, label, account_sid)
    return _twilio_create(request, label, account_sid)


def _twilio_create(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    to, sender = request.POST.get("To", ""), request.POST.get("From", "")
    body, media = request.POST.get("Body", ""), request.POST.getlist("MediaUrl")
    callback = request.POST.get("StatusCallback", "")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not body and not media:
        return twilio_error(400, 21602, "Message body is required.")
    if not E164.match(to):
        return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    reference = _query_param(callback, "ref")
    return _accept(
        label,
        reference=reference,
        fields={
            "format": "twilio",
            "to_address": to,
            "from_address": sender,
            "body": body,
            "media": media,
            "status_callback": callback,
        },
        respond=lambda message: JsonResponse(_twilio_resource(message, account_sid), status=201),
        errors={
            Behaviour.REJECT: lambda: twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number."),
            Behaviour.ERROR: lambda: twilio_error(500, 20500, "Internal Server Error"),
            Behaviour.RATE_LIMIT: lambda: twilio_error(429, 20429, "Too Many Requests", Retry_After="1"),
        },
    )


def _twilio_list(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    messages = SandboxMessage.objects.filter(label=label).order_by("-created_at", "-id")
    if request.GET.get("To"):
        messages = messages.filter(to_address=request.GET["To"])
    if request.GET.get("From"):
        messages = messages.filter(from_address=request.GET["From"])
    if request.GET.get("DateSent>"):
        messages = messages.filter(created_at__date__gte=request.GET["DateSent>"].lstrip("="))
    page_size = min(int(request.GET.get("PageSize", 50) or 50), 1000)
    uri = f"/{TWILIO_API}/Accounts/{account_sid}/Messages.json"
    return JsonResponse(
        {
            "messages": [_twilio_resource(m, account_sid) for m in messages[:page_size]],
            "page": 0,
            "page_size": page_size,
            "first_page_uri": uri,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": uri,
        }
    )


@csrf_exempt
@require_GET
def twilio_message(request: HttpRequest, label: str, account_sid: str, sid: str) -> HttpResponse:
    if not _twilio_authorised(request, label, account_sid):
        return twilio_error(401, 20003, "Authentication Error - invalid username")
    message = SandboxMessage.objects.filter(label=label, sid=sid).first()
    if message is None:
        return twilio_error(404, 20404, f"The requested resource /Messages/{sid}.json was not found")
    return JsonResponse(_twilio_resource(message, account_sid))


# --- SendGrid -------------------------------------------------------------------------


def sendgrid_error(status: int, message: str, field: str | None = None, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "field": field, "help": None}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _sendgrid_authorised(request: HttpRequest, label: str) -> bool:
    expected = _instance(label).get("api_key", settings.SENDGRID_API_KEY)
    return secrets.compare_digest(request.headers.get("Authorization", ""), f"Bearer {expected}")


@csrf_exempt
@require_http_methods(["POST"])
def sendgrid_mail_send(request: HttpRequest, label: str) -> HttpResponse:
    if is_down(label):
        return sendgrid_error(503, "Service Unavailable")
    if not _sendgrid_authorised(request, label):
        return sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
    try:
        payload = json.loads(request.body)
        personalization = payload["personalizations"][0]
        to = personalization["to"][0]["email"]
        sender = payload["from"]["email"]
        content = payload["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return sendgrid_error(400, "Bad Request: personalizations, from and content are required", "personalizations")
    if not EMAIL.match(str(to)):
        return sendgrid_error(400, "Does not contain a valid address.", "personalizations.0.to.0.email")
    text = next((c.get("value", "") for c in content if isinstance(c, dict) and c.get("type") == "text/html"), None)
    text = text if text is not None else next((c.get("value", "") for c in content if isinstance(c, dict)), "")
    reference = str((personalization.get("custom_args") or {}).get("message_id", ""))

    def accepted(message: SandboxMessage) -> HttpResponse:
        response = HttpResponse(status=202)
        response["X-Message-Id"] = message.sid
        return response

    return _accept(
        label,
        reference=reference,
        fields={
            "format": "sendgrid",
            "to_address": to,
            "from_address": sender,
            "subject": payload.get("subject", ""),
            "body": text,
        },
        respond=accepted,
        errors={
            Behaviour.REJECT: lambda: sendgrid_error(
                400, "The recipient address is rejected.", "personalizations.0.to.0.email"
            ),
            Behaviour.ERROR: lambda: sendgrid_error(500, "Internal server error"),
            Behaviour.RATE_LIMIT: lambda: sendgrid_error(429, "too many requests", Retry_After="1"),
        },
    )


@csrf_exempt
@require_GET
def sendgrid_messages(request: HttpRequest, label: str) -> HttpResponse:
    """The Email Activity API, queried by our custom arg: unique_args['message_id']="<id>"."""
    if not _sendgrid_authorised(request, label):
        return sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
    match = re.search(r"unique_args\['message_id'\]=\"([^\"]*)\"", request.GET.get("query", ""))
    messages = (
        SandboxMessage.objects.filter(label=label, reference=match.group(1)) if match else SandboxMessage.objects.none()
    )
    limit = min(int(request.GET.get("limit", 10) or 10), 1000)
    return JsonResponse(
        {
            "messages": [
                {
                    "msg_id": f"{m.sid}.filterdrecv-sandbox-1",
                    "from_email": m.from_address,
                    "to_email": m.to_address,
                    "subject": m.subject,
                    "status": m.status,
                    "opens_count": 0,
                    "clicks_count": 0,
                    "last_event_time": m.created_at.isoformat(),
                }
                for m in messages.order_by("created_at", "id")[:limit]
            ]
        }
    )


# --- Shared ---------------------------------------------------------------------------


def _accept(label: str, *, reference: str, fields: dict, respond, errors: dict) -> HttpResponse:
    """Apply the recipient's behaviour; store and answer for the ones that accept.

    The latency comes first, before any database work: a request that slept while
    holding a pooled connection made the pool, not the sandbox's CPU, its ceiling."""
    _answer_slowly()
    behaviour = behaviour_for(fields["to_address"])
    if behaviour in (Behaviour.REJECT, Behaviour.ERROR):
        return errors[behaviour]()
    tries = try_number(label, reference=reference, fallback=f"{fields['to_address']}|{fields['body']}")
    if behaviour is Behaviour.RATE_LIMIT and tries <= RATE_LIMITED_TRIES:
        return errors[behaviour]()
    sid = ("SM" + secrets.token_hex(16)) if fields["format"] == "twilio" else secrets.token_urlsafe(16)
    message = SandboxMessage.objects.create(label=label, sid=sid, reference=reference, **fields)
    if behaviour is Behaviour.TIMEOUT and tries == 1:
        # Stored, but answered after the client gave up; the receipts follow later, so
        # the client has to find the message by looking it up.
        _schedule_callbacks(message, delay=settings.PROVIDER_TIMEOUT_SECONDS * 2 + 2)
        time.sleep(settings.PROVIDER_TIMEOUT_SECONDS + 1)
    else:
        _schedule_callbacks(message)
    return respond(message)


def _query_param(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query).get(name, [""])[0]


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
