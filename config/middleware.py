"""Request-level guards: a request id on every request and response, and a body cap."""

import re
import uuid
from contextvars import ContextVar

from django.conf import settings

from config.errors import json_error

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Take the caller's `X-Request-ID` when it is sane, else make one; echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


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
