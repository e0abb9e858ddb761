"""Request-level guards: a request id on every request and response, one log line per
request, the request metrics operators read, a body cap, and the site's middleware
kept off the API."""

import re
import time
import uuid

import structlog
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import common
from django_prometheus.conf import NAMESPACE, PROMETHEUS_LATENCY_BUCKETS
from django_prometheus.middleware import Metrics
from prometheus_client import Counter, Histogram

from config.errors import json_error

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = structlog.get_logger("config.request")


class RequestIdMiddleware:
    """Take the caller's `X-Request-ID` when it is sane, else make one; echo it back.

    Every log line written while the request runs carries the id (and Celery tasks
    published meanwhile carry it on, see config/celery.py); when the response is ready
    one line sums the request up: method, path, status, duration, account, and what the
    view bound to the log context (the message id of a send or a webhook). That line is
    the only one a successful send or webhook writes.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            _log_request(request, response.status_code, time.monotonic() - started)
        finally:
            # Views bind what the line should carry (a message id, say): none of it
            # may reach the next request served by this thread.
            structlog.contextvars.clear_contextvars()
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


# --- Request metrics --------------------------------------------------------------------


class RequestMetrics(Metrics):
    """The django-prometheus request metrics that the dashboard, the alerts and
    docs/operations.md read, and no others: its full set updates about twenty series in
    every request (a tenth of a send's CPU in the cost ledger)."""

    def register(self):
        self.requests_by_method = self.register_metric(
            Counter, "django_http_requests_total_by_method", "Requests by method.", ["method"], namespace=NAMESPACE
        )
        self.responses_by_status = self.register_metric(
            Counter, "django_http_responses_total_by_status", "Responses by status.", ["status"], namespace=NAMESPACE
        )
        self.requests_latency_by_view_method = self.register_metric(
            Histogram,
            "django_http_requests_latency_seconds_by_view_method",
            "How long requests took (all middleware included), by view and method.",
            ["view", "method"],
            buckets=PROMETHEUS_LATENCY_BUCKETS,
            namespace=NAMESPACE,
        )
        self.exceptions_by_type = self.register_metric(
            Counter,
            "django_http_exceptions_total_by_type",
            "Exceptions a view raised, by type.",
            ["type"],
            namespace=NAMESPACE,
        )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})


class RequestMetricsMiddleware:
    """First in the chain, so every answer is counted, a 413 or a 429 too."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.metrics = RequestMetrics.get_instance()

    def __call__(self, request):
        started = time.perf_counter()
        method = request.method if request.method in _METHODS else "<invalid method>"
        self.metrics.requests_by_method.labels(method=method).inc()
        response = self.get_response(request)
        self.metrics.responses_by_status.labels(status=str(response.status_code)).inc()
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or "<unnamed view>"
        self.metrics.requests_latency_by_view_method.labels(view=view, method=method).observe(
            time.perf_counter() - started
        )
        return response

    def process_exception(self, request, exception):
        self.metrics.exceptions_by_type.labels(type=type(exception).__name__).inc()


# --- The site's middleware, kept off the API -------------------------------------------

API_PREFIX = "/api/"


class _SiteOnly:
    """Runs the middleware it is mixed into for the admin and the site, not for the API:
    API requests are authenticated by key (DRF) and carry no session, so sessions,
    messages, the lazy user and slash redirects only cost them time. (CSRF and framing
    headers stay on everything: Django's deploy checks want its own classes, and their
    cost is small.)"""

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_SiteOnly, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_SiteOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_SiteOnly, messages.MessageMiddleware):
    pass


class CommonMiddleware(_SiteOnly, common.CommonMiddleware):
    pass
