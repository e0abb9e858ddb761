"""Request-level guards: a request id on every request and response, one log line per
request, and a body cap."""

import re
import time
import uuid

import structlog
from django.conf import settings

from config.errors import json_error

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = structlog.get_logger("config.request")


class RequestIdMiddleware:
    """Take the caller's `X-Request-ID` when it is sane, else make one; echo it back.

    Every log line written while the request runs carries the id (and Celery tasks
    published meanwhile carry it on, see config/celery.py); when the response is ready
    one line sums the request up: method, path, status, duration, account.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        context = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            _log_request(request, response.status_code, time.monotonic() - started)
        finally:
            structlog.contextvars.reset_contextvars(**context)
        return response


def _log_request(request, status: int, seconds: float) -> None:
    from conversations.models import Account

    # The API's user is an Account (conversations.authentication). type(), not
    # isinstance(): the latter would evaluate the admin's lazy user (a session query).
    user = getattr(request, "user", None)
    account = user.pk if type(user) is Account else None
    level = "warning" if status >= 500 else "info"
    getattr(access_log, level)(
        "request",
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round(seconds * 1000, 1),
        account=account,
    )


BATCH_PATH = "/api/messages/batch"  # up to 1,000 messages: a larger cap of its own


class BodySizeLimitMiddleware:
    """413 before anything reads a body larger than MAX_REQUEST_BYTES.

    DRF streams JSON bodies itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE alone would
    not stop a large one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            limit = settings.MAX_BATCH_REQUEST_BYTES if request.path == BATCH_PATH else settings.MAX_REQUEST_BYTES
            too_large = int(length) > limit
        except ValueError:
            return json_error(400, "bad_request", "Content-Length is not a number.")
        if too_large:
            return json_error(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        return self.get_response(request)
