"""The sandbox's Twilio face: the Messages API (create, fetch, list, update, delete) and
its Media subresource, at /sandbox/<label>/2010-04-01/Accounts/<sid>/..., answering in
Twilio's own resources, list pages and error bodies. The official `twilio` SDK is held
to it in tests/providers/test_sandbox_twilio_sdk.py."""

import base64
import hashlib
import mimetypes
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from providers.sandbox.behaviour import Behaviour, is_down
from providers.sandbox.common import accept, instance, new_sid, query_param, with_headers
from providers.sandbox.models import SandboxMessage

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
API = "2010-04-01"
MAX_PAGE_SIZE = 1000
#: statuses after which Twilio lets a message record be deleted
FINISHED = {"sent", "delivered", "undelivered", "failed", "received", "canceled", "read"}


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, **headers):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JsonResponse:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return with_headers(JsonResponse(body, status=self.status), self.headers)


def twilio_error(status: int, code: int, message: str, **headers) -> JsonResponse:
    return TwilioError(status, code, message, **headers).response()


def twilio_endpoint(methods: tuple[str, ...]):
    """Twilio's envelope around a view: down instance (503), method (405), Basic auth
    (401), and any TwilioError raised inside answered as Twilio answers it."""

    def decorate(view):
        @csrf_exempt
        def wrapped(request: HttpRequest, label: str, account_sid: str, **kwargs) -> HttpResponse:
            if is_down(label):
                return twilio_error(503, 20503, "Service Unavailable")
            if request.method not in methods:
                return twilio_error(405, 20004, "Method not allowed", Allow=", ".join(methods))
            if not _authorised(request, label, account_sid):
                return twilio_error(401, 20003, "Authentication Error - invalid username")
            try:
                return view(request, label, account_sid, **kwargs)
            except TwilioError as error:
                return error.response()

        return wrapped

    return decorate


def _authorised(request: HttpRequest, label: str, account_sid: str) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    token = instance(label).get("auth_token", settings.TWILIO_AUTH_TOKEN)
    return scheme.lower() == "basic" and user == account_sid and secrets.compare_digest(password, token)


# --- Resources ------------------------------------------------------------------------


def _messages_uri(account_sid: str) -> str:
    return f"/{API}/Accounts/{account_sid}/Messages"


def message_resource(message: SandboxMessage, account_sid: str) -> dict:
    created = format_datetime(message.created_at, usegmt=True)
    uri = f"{_messages_uri(account_sid)}/{message.sid}"
    return {
        "account_sid": account_sid,
        "api_version": API,
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
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": message.to_address,
        "uri": f"{uri}.json",
    }


def _media_sid(message: SandboxMessage, index: int) -> str:
    """Stable while other media of the message are deleted: named by the URL (and which
    copy of it, should a message carry one URL twice), not by the position."""
    url = message.media[index]
    copy = message.media[:index].count(url)
    return "ME" + hashlib.sha256(f"{message.sid}:{url}:{copy}".encode()).hexdigest()[:32]


def _media_resource(message: SandboxMessage, index: int, account_sid: str) -> dict:
    created = format_datetime(message.created_at, usegmt=True)
    sid = _media_sid(message, index)
    content_type = mimetypes.guess_type(urlsplit(message.media[index]).path)[0] or "application/octet-stream"
    return {
        "account_sid": account_sid,
        "content_type": content_type,
        "date_created": created,
        "date_updated": created,
        "parent_sid": message.sid,
        "sid": sid,
        "uri": f"{_messages_uri(account_sid)}/{message.sid}/Media/{sid}.json",
    }


# --- Messages -------------------------------------------------------------------------


@twilio_endpoint(("GET", "POST"))
def messages(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    if request.method == "GET":
        return _list(request, label, account_sid)
    return _create(request, label, account_sid)


def _create(request: HttpRequest, label: str, account_sid: str) -> HttpResponse:
    to, sender = request.POST.get("To", ""), request.POST.get("From", "")
    body, media = request.POST.get("Body", ""), request.POST.getlist("MediaUrl")
    callback = request.POST.get("StatusCallback", "")
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not sender:
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if not body and not media:
        raise TwilioError(400, 21602, "Message body is required.")
    if not E164.match(to):
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    row = {
        "format": "twilio",
        "sid": new_sid("SM"),
        "reference": query_param(callback, "ref"),
        "to_address": to,
        "from_address": sender,
        "body": body,
        "media": media,
        "status_callback": callback,
    }
    return accept(
        label,
        rows=[row],
        respond=lambda stored: JsonResponse(message_resource(stored[0], account_sid), status=201),
        errors={
            Behaviour.REJECT: lambda: twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number."),
            Behaviour.ERROR: lambda: twilio_error(500, 20500, "Internal Server Error"),
            Behaviour.RATE_LIMIT: lambda: twilio_error(429, 20429, "Too Many Requests", Retry_After="1"),
        },
    )


@dataclass(frozen=True)
class _Span:
    """The instants a DateSent value names: [start, end)."""

    start: datetime
    end: datetime


def _date_sent(name: str, value: str) -> _Span:
    """`2026-12-02` names that day; `2026-12-02T00:05:38Z` (what the SDK sends) names
    that second. Times without a zone are UTC, as Twilio reads them."""
    try:
        if "T" not in value:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return _Span(start, start + timedelta(days=1))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TwilioError(400, 20001, f"Invalid {name}: {value!r} is not a date (YYYY-MM-DD) or time.") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return _Span(moment, moment + timedelta(seconds=1))


def _filtered(request: HttpRequest, label: str) -> tuple[QuerySet, dict]:
    """The messages the list's filters select, and those filters as given (for page URIs).

    `DateSent` selects the day of its value, even when the SDK sends it as a time;
    `DateSent>` selects from its instant on, `DateSent<` up to its instant included."""
    rows = SandboxMessage.objects.filter(label=label)
    given = {}
    for name, field in (("To", "to_address"), ("From", "from_address")):
        if request.GET.get(name):
            given[name] = request.GET[name]
            rows = rows.filter(**{field: given[name]})
    for name in ("DateSent", "DateSent>", "DateSent<"):
        if not request.GET.get(name):
            continue
        given[name] = request.GET[name]
        span = _date_sent(name, given[name])
        if name == "DateSent":
            day = span.start.replace(hour=0, minute=0, second=0, microsecond=0)
            rows = rows.filter(created_at__gte=day, created_at__lt=day + timedelta(days=1))
        elif name == "DateSent>":
            rows = rows.filter(created_at__gte=span.start)
        else:
            rows = rows.filter(created_at__lt=span.end)
    return rows, given


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.GET.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = low - 1
    if value < low:
        raise TwilioError(400, 20001, f"Invalid {name}: {raw!r} must be an integer of at least {low}.")
    return min(value, high) if high else value


def _page(rows: QuerySet, token: str, page: int, size: int) -> list:
    """Newest first. A token `PA<id>` continues after that row, `PB<id>` goes back before
    it; without a token, `Page` counts pages from the newest."""
    if token.startswith("PA") and token[2:].isdigit():
        return list(rows.filter(id__lt=int(token[2:])).order_by("-id")[:size])
    if token.startswith("PB") and token[2:].isdigit():
        return list(reversed(rows.filter(id__gt=int(token[2:])).order_by("id")[:size]))
    if token:
        raise TwilioError(400, 20001, f"Invalid PageToken: {token!r}.")
    return list(rows.order_by("-id")[page * size : (page + 1) * size])


def list_page(request: HttpRequest, uri: str, key: str, rows: QuerySet, given: dict, render) -> JsonResponse:
    """Twilio's list envelope, with next and previous page URIs the SDK follows."""
    size = _int_param(request, "PageSize", 50, 1, MAX_PAGE_SIZE)
    page = _int_param(request, "Page", 0, 0)
    found = _page(rows, request.GET.get("PageToken", ""), page, size)

    def link(number: int, token: str = "") -> str:
        params = given | {"PageSize": size, "Page": number} | ({"PageToken": token} if token else {})
        return f"{uri}?{urlencode(params)}"

    more = bool(found) and rows.filter(id__lt=found[-1].id).exists()
    earlier = page > 0 and bool(found) and rows.filter(id__gt=found[0].id).exists()
    token = request.GET.get("PageToken", "")
    return JsonResponse(
        {
            key: [render(row) for row in found],
            "end": page * size + max(len(found) - 1, 0),
            "first_page_uri": link(0),
            "next_page_uri": link(page + 1, f"PA{found[-1].id}") if more else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": link(page - 1, f"PB{found[0].id}") if earlier else None,
            "start": page * size,
            "uri": link(page, token),
        }
    )


def _list(request: HttpRequest, label: str, account_sid: str) -> JsonResponse:
    rows, given = _filtered(request, label)
    uri = f"{_messages_uri(account_sid)}.json"
    return list_page(request, uri, "messages", rows, given, lambda row: message_resource(row, account_sid))


def _message(label: str, sid: str, path: str) -> SandboxMessage:
    found = SandboxMessage.objects.filter(label=label, sid=sid, format="twilio").first()
    if found is None:
        raise TwilioError(404, 20404, f"The requested resource {path} was not found")
    return found


@twilio_endpoint(("GET", "POST", "DELETE"))
def message(request: HttpRequest, label: str, account_sid: str, sid: str) -> HttpResponse:
    found = _message(label, sid, f"{_messages_uri(account_sid)}/{sid}.json")
    if request.method == "DELETE":
        if found.status not in FINISHED:
            raise TwilioError(409, 20009, "Cannot delete this resource before it is complete")
        found.delete()
        return HttpResponse(status=204)
    if request.method == "POST":
        _update(found, request.POST)
    return JsonResponse(message_resource(found, account_sid))


def _update(found: SandboxMessage, form) -> None:
    """Twilio allows two updates: redact the body (Body="") or cancel a scheduled message."""
    if ("Body" in form) == ("Status" in form):
        raise TwilioError(400, 30400, "Parameters are not valid: send either an empty Body or Status=canceled.")
    if "Status" in form:
        if form["Status"] != "canceled":
            raise TwilioError(400, 30400, f"Parameters are not valid: Status {form['Status']!r} is not 'canceled'.")
        raise TwilioError(400, 30409, "This message cannot be canceled")  # the sandbox schedules nothing
    if form["Body"] != "":
        raise TwilioError(400, 30400, "Parameters are not valid: a body can only be redacted to an empty string.")
    found.body = ""
    found.save(update_fields=["body"])


# --- Media ----------------------------------------------------------------------------


@twilio_endpoint(("GET",))
def media_list(request: HttpRequest, label: str, account_sid: str, sid: str) -> HttpResponse:
    uri = f"{_messages_uri(account_sid)}/{sid}/Media.json"
    found = _message(label, sid, uri)
    resources = [_media_resource(found, index, account_sid) for index in range(len(found.media))]
    size = _int_param(request, "PageSize", 50, 1, MAX_PAGE_SIZE)
    page = _int_param(request, "Page", 0, 0)
    shown = resources[page * size : (page + 1) * size]

    def link(number: int) -> str:
        return f"{uri}?{urlencode({'PageSize': size, 'Page': number})}"

    return JsonResponse(
        {
            "media_list": shown,
            "end": page * size + max(len(shown) - 1, 0),
            "first_page_uri": link(0),
            "next_page_uri": link(page + 1) if len(resources) > (page + 1) * size else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": link(page - 1) if page > 0 else None,
            "start": page * size,
            "uri": link(page),
        }
    )


@twilio_endpoint(("GET", "DELETE"))
def media(request: HttpRequest, label: str, account_sid: str, sid: str, media_sid: str) -> HttpResponse:
    path = f"{_messages_uri(account_sid)}/{sid}/Media/{media_sid}.json"
    found = _message(label, sid, path)
    index = next((i for i in range(len(found.media)) if _media_sid(found, i) == media_sid), None)
    if index is None:
        raise TwilioError(404, 20404, f"The requested resource {path} was not found")
    if request.method == "DELETE":
        found.media = [url for i, url in enumerate(found.media) if i != index]
        found.save(update_fields=["media"])
        return HttpResponse(status=204)
    return JsonResponse(_media_resource(found, index, account_sid))


def unknown(request: HttpRequest, label: str, account_sid: str, path: str) -> HttpResponse:
    """Everything else under the account: Twilio's 404, never our own envelope."""
    return twilio_error(404, 20404, f"The requested resource /{API}/Accounts/{account_sid}/{path} was not found")
