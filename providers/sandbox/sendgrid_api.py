"""The sandbox's SendGrid face: v3 Mail Send and the Email Activity API, at
/sandbox/<label>/v3/..., validating a send as SendGrid does (every error at once, with
its field path) and keeping one message per recipient of every personalization."""

import json
import re
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from providers.sandbox.behaviour import Behaviour, behaviour_for, is_down
from providers.sandbox.common import accept, instance, with_headers
from providers.sandbox.models import SandboxMessage

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_RECIPIENTS = 1000
KINDS = ("to", "cc", "bcc")


def sendgrid_error(status: int, message: str, field: str | None = None, **headers) -> JsonResponse:
    return sendgrid_errors(status, [(message, field)], **headers)


def sendgrid_errors(status: int, errors: list[tuple[str, str | None]], **headers) -> JsonResponse:
    body = {"errors": [{"message": message, "field": field, "help": None} for message, field in errors]}
    return with_headers(JsonResponse(body, status=status), headers)


def _authorised(request: HttpRequest, label: str) -> bool:
    expected = instance(label).get("api_key", settings.SENDGRID_API_KEY)
    return secrets.compare_digest(request.headers.get("Authorization", ""), f"Bearer {expected}")


def _email_of(item) -> str:
    return str(item.get("email", "")) if isinstance(item, dict) else ""


def _body(content) -> str:
    """The HTML part when there is one, else the first part; nothing for a template."""
    parts = [c for c in content or [] if isinstance(c, dict)]
    html = next((str(c.get("value", "")) for c in parts if c.get("type") == "text/html"), None)
    return html if html is not None else next((str(c.get("value", "")) for c in parts), "")


def validation_errors(payload) -> list[tuple[str, str | None]]:
    """What SendGrid refuses in a v3 mail send body, as (message, field) pairs."""
    if not isinstance(payload, dict):
        return [("The request body must be a JSON object.", None)]
    errors = []
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            ("The personalizations field is required and must have at least one personalization.", "personalizations")
        )
        personalizations = []
    recipients = 0
    for p, personalization in enumerate(personalizations):
        personalization = personalization if isinstance(personalization, dict) else {}
        if not isinstance(personalization.get("to"), list) or not personalization["to"]:
            errors.append(
                (
                    "The to array is required for all personalization objects, and must have at least one email "
                    "object with a valid email address.",
                    f"personalizations.{p}.to",
                )
            )
        for kind in KINDS:
            items = personalization.get(kind) if isinstance(personalization.get(kind), list) else []
            recipients += len(items)
            for r, item in enumerate(items):
                if not EMAIL.match(_email_of(item)):
                    errors.append(("Does not contain a valid address.", f"personalizations.{p}.{kind}.{r}.email"))
    if recipients > MAX_RECIPIENTS:
        errors.append((f"The total number of recipients must be no more than {MAX_RECIPIENTS}.", "personalizations"))
    sender = payload.get("from")
    if not isinstance(sender, dict):
        errors.append(("The from object must be provided for every email send.", "from"))
    elif not EMAIL.match(_email_of(sender)):
        errors.append(("The from email does not contain a valid address.", "from.email"))
    templated = bool(payload.get("template_id"))
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not templated and not payload.get("subject") and not every_has_subject:
        errors.append(
            (
                "The subject is required. You can get around this requirement if you use a template with a subject "
                "defined or if every personalization has a subject defined.",
                "subject",
            )
        )
    content = payload.get("content")
    if content is None and not templated:
        errors.append(("Unless a valid template_id is provided, the content parameter is required.", "content"))
    elif content is not None and not isinstance(content, list):
        errors.append(("The content field must be an array of content blocks.", "content"))
    for c, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, dict) or not isinstance(block.get("value"), str) or not block["value"]:
            errors.append(
                ("The content value must be a string at least one character in length.", f"content.{c}.value")
            )
    for field, value in [("custom_args", payload.get("custom_args"))] + [
        (f"personalizations.{p}.custom_args", q.get("custom_args"))
        for p, q in enumerate(personalizations)
        if isinstance(q, dict)
    ]:
        if value is not None and not isinstance(value, dict):
            errors.append(("The custom_args field must be an object of strings.", field))
    return errors


def recipients(payload: dict) -> list[tuple[str, dict]]:
    """One (field path, row fields) per recipient: a personalization's custom_args and
    subject override the mail's, as SendGrid merges them."""
    rows = []
    for p, personalization in enumerate(payload["personalizations"]):
        custom_args = (payload.get("custom_args") or {}) | (personalization.get("custom_args") or {})
        for kind in KINDS:
            for r, item in enumerate(personalization.get(kind) or []):
                row = {
                    "format": "sendgrid",
                    "reference": str(custom_args.get("message_id", "")),
                    "to_address": item["email"],
                    "from_address": payload["from"]["email"],
                    "subject": str(personalization.get("subject") or payload.get("subject") or ""),
                    "body": _body(payload.get("content")),
                }
                rows.append((f"personalizations.{p}.{kind}.{r}.email", row))
    return rows


@csrf_exempt
@require_http_methods(["POST"])
def mail_send(request: HttpRequest, label: str) -> HttpResponse:
    if is_down(label):
        return sendgrid_error(503, "Service Unavailable")
    if not _authorised(request, label):
        return sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
    try:
        payload = json.loads(request.body)
    except ValueError:
        return sendgrid_error(400, "Bad Request: the body is not valid JSON.")
    errors = validation_errors(payload)
    if errors:
        return sendgrid_errors(400, errors)
    message_id = secrets.token_urlsafe(16)
    found = recipients(payload)
    rows = [row | {"sid": f"{message_id}.filterdrecv-sandbox-{n}"} for n, (_, row) in enumerate(found)]
    rejected = next((path for path, row in found if behaviour_for(row["to_address"]) is Behaviour.REJECT), None)

    def accepted(_messages: list[SandboxMessage]) -> HttpResponse:
        response = HttpResponse(status=202)
        response["X-Message-Id"] = message_id
        return response

    return accept(
        label,
        rows=rows,
        respond=accepted,
        errors={
            Behaviour.REJECT: lambda: sendgrid_error(400, "The recipient address is rejected.", rejected),
            Behaviour.ERROR: lambda: sendgrid_error(500, "Internal server error"),
            Behaviour.RATE_LIMIT: lambda: sendgrid_error(429, "too many requests", Retry_After="1"),
        },
    )


@csrf_exempt
@require_GET
def activity(request: HttpRequest, label: str) -> HttpResponse:
    """The Email Activity API, queried by our custom arg: unique_args['message_id']="<id>"."""
    if not _authorised(request, label):
        return sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
    match = re.search(r"unique_args\['message_id'\]=\"([^\"]*)\"", request.GET.get("query", ""))
    rows = SandboxMessage.objects.filter(label=label, format="sendgrid")
    rows = rows.filter(reference=match.group(1)) if match else rows.none()
    try:
        limit = int(request.GET.get("limit") or 10)
    except ValueError:
        return sendgrid_error(400, "limit must be an integer from 1 to 1000.", "limit")
    if not 1 <= limit <= 1000:
        return sendgrid_error(400, "limit must be an integer from 1 to 1000.", "limit")
    return JsonResponse(
        {
            "messages": [
                {
                    "msg_id": m.sid,
                    "from_email": m.from_address,
                    "to_email": m.to_address,
                    "subject": m.subject,
                    "status": m.status,
                    "opens_count": 0,
                    "clicks_count": 0,
                    "last_event_time": m.created_at.isoformat(),
                }
                for m in rows.order_by("created_at", "id")[:limit]
            ]
        }
    )
