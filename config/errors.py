"""One error envelope for every client mistake:

    {"error": {"code": "invalid_request", "message": "...", "fields": {"to": ["..."]}}}

DRF exceptions pass through `exception_handler`; Django-level failures (unknown URL,
oversized body, an unexpected crash) through the `handler*` views, so no path answers
with HTML or a stack trace.
"""

import logging
import math

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

# DRF's own codes, renamed where ours are clearer for clients.
_CODES = {
    exceptions.ValidationError: "invalid_request",
    exceptions.ParseError: "malformed_request",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.AuthenticationFailed: "unauthenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "rate_limited",
}


class ApiError(exceptions.APIException):
    """An error with its own code and status, e.g. ApiError(409, "conflict", "...")."""

    def __init__(self, status_code: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message, code)
        self.status_code = status_code
        self.error_code = code
        self.fields = fields


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's handler500 answers, and it is logged

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(math.ceil(exc.wait))

    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, str(exc.detail), exc.fields)
    elif isinstance(exc, exceptions.ValidationError):
        fields = flatten_detail(exc.detail)
        general = fields.pop("non_field_errors", None)
        message = general[0] if general else "The request has invalid fields."
        body = error_body("invalid_request", message, fields)
    else:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
        body = error_body(code, str(exc.detail))
    return Response(body, status=exc.status_code, headers=headers)


def flatten_detail(detail) -> dict:
    """DRF's nested error detail as {"field": ["message", ...]}, nested keys dotted."""
    if not isinstance(detail, dict):
        return {"non_field_errors": _messages(detail)}
    out = {}
    for key, value in detail.items():
        if isinstance(value, dict):
            for sub_key, messages in flatten_detail(value).items():
                out[f"{key}.{sub_key}"] = messages
        else:
            out[key] = _messages(value)
    return out


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{key}: {m}" for key, item in value.items() for m in _messages(item)]
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    return [str(value)]


def json_error(status_code: int, code: str, message: str, **extra_headers) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status_code)
    for name, value in extra_headers.items():
        response[name.replace("_", "-")] = value
    return response


def handler400(request, exception=None):
    return json_error(400, "bad_request", "The request could not be understood.")


def handler403(request, exception=None):
    return json_error(403, "forbidden", "You may not do that.")


def handler404(request, exception=None):
    return json_error(404, "not_found", "No such resource.")


def handler500(request):
    return json_error(500, "internal_error", "Something went wrong on our side; it has been logged.")


_ERROR = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField()), required=False
                ),
            },
        )
    },
)

# The error answers any endpoint may give, for the OpenAPI schema.
ERROR_RESPONSES = {
    status.HTTP_400_BAD_REQUEST: OpenApiResponse(_ERROR, description="Invalid input"),
    status.HTTP_401_UNAUTHORIZED: OpenApiResponse(_ERROR, description="Missing or invalid API key"),
    status.HTTP_404_NOT_FOUND: OpenApiResponse(_ERROR, description="Not found in this account"),
    status.HTTP_429_TOO_MANY_REQUESTS: OpenApiResponse(_ERROR, description="Rate limit exceeded"),
}
WRITE_ERROR_RESPONSES = {
    **ERROR_RESPONSES,
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: OpenApiResponse(_ERROR, description="Body too large"),
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: OpenApiResponse(_ERROR, description="Body is not JSON"),
}
# POSTs that create messages: also the sender check and the Idempotency-Key outcomes.
CREATE_ERROR_RESPONSES = {
    **WRITE_ERROR_RESPONSES,
    status.HTTP_403_FORBIDDEN: OpenApiResponse(
        _ERROR,
        description="The account does not own the sender (`sender_not_allowed`), or the recipient opted out of "
        "this sender (`recipient_opted_out`) or is a suppressed email address (`recipient_suppressed`)",
    ),
    status.HTTP_409_CONFLICT: OpenApiResponse(_ERROR, description="A request with this Idempotency-Key is running"),
    status.HTTP_422_UNPROCESSABLE_ENTITY: OpenApiResponse(
        _ERROR, description="This Idempotency-Key was used with a different request"
    ),
}
