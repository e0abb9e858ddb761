"""All outbound HTTP to providers goes through `call`: one keep-alive session per
process, a timeout on every request, and errors sorted by whether the request may
have reached the provider. Tests intercept here (or at `requests`) and nowhere else."""

import json
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

_local = threading.local()
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResult:
    status: int | None  #: None when no response came back
    headers: dict
    body: bytes
    latency_ms: int
    error: str = ""
    maybe_delivered: bool = False  #: no response, but the request may have arrived

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def call(method: str, url: str, *, timeout: float, **kwargs) -> HttpResult:
    result = _call(method, url, timeout=timeout, **kwargs)
    parts = urlsplit(url)
    logger.debug(
        "provider http",
        extra={
            "method": method,
            "url": f"{parts.scheme}://{parts.netloc}{parts.path}",  # no query: it may carry our references
            "http_status": result.status,
            "latency_ms": result.latency_ms,
            "error": result.error or None,
        },
    )
    return result


def _call(method: str, url: str, *, timeout: float, **kwargs) -> HttpResult:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = _session().request(method, url, timeout=(min(timeout, 5.0), timeout), **kwargs)
    except requests.ConnectTimeout as exc:
        return HttpResult(None, {}, b"", elapsed(), f"connect timeout: {exc}")
    except requests.ReadTimeout as exc:
        return HttpResult(None, {}, b"", elapsed(), f"read timeout: {exc}", maybe_delivered=True)
    except requests.ConnectionError as exc:
        return HttpResult(None, {}, b"", elapsed(), f"connection error: {exc}", maybe_delivered=not _refused(exc))
    except requests.RequestException as exc:
        return HttpResult(None, {}, b"", elapsed(), f"request error: {exc}")
    return HttpResult(response.status_code, dict(response.headers), response.content, elapsed())


def _refused(exc: requests.ConnectionError) -> bool:
    """True when the connection was never made, so the provider cannot have the request."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def retry_after_seconds(headers: dict) -> float | None:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
