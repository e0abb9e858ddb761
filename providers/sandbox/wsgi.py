"""The sandbox's requests skip the middleware: it stands in for a provider's API, and
none of what ours does for a request (request ids and log lines, metrics, sessions, CSRF,
authentication, lockouts, rate-limit headers) is the provider's. Every sandbox view is a
plain function that authenticates as its provider does. Measured, the middleware was
about a third of a create's CPU (docs/performance.md), and the sandbox must not be the
ceiling of the drain it measures.

config/wsgi.py mounts it in front of the application when PROVIDER_SANDBOX is on;
Django's own request handling (signals that return pooled connections, the error
handlers, the URL conf) is kept."""

from collections.abc import Callable, Iterable

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler

PREFIX = "/sandbox/"


class SandboxHandler(WSGIHandler):
    """Django's WSGI handler with no middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)


def sandbox_mounted(application: Callable) -> Callable:
    """`application` with the paths under /sandbox/ served by a `SandboxHandler`."""
    sandbox = SandboxHandler()

    def dispatch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return sandbox(environ, start_response)
        return application(environ, start_response)

    return dispatch
