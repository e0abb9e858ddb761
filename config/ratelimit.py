"""Rate limits: a sliding window per API key (per client IP when anonymous).

The window is the sliding-window counter: the current fixed window's count plus the
previous window's count weighted by how much of it still overlaps the sliding window.
It is exact enough (it assumes the previous window's requests were spread evenly), needs
two keys per client, and is kept atomically in Redis by one Lua script, so every web
process sees the same counts. Without Redis it runs on the configured cache, whose
increments are atomic across processes (config/cache.py).

Rejected requests are not counted, so a client that backs off for `Retry-After` gets in
again. If the store cannot be reached the request is let through (fail open): a limiter
outage must not become an API outage. It is logged and counted, and the store is left
alone for a few seconds so each request does not wait on a dead socket.
"""

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework.throttling import BaseThrottle

from config import metrics

logger = logging.getLogger(__name__)

_WINDOW_SCRIPT = """
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * weight + current + 1 > limit then
  return {0, current, previous}
end
current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {1, current, previous}
"""
_store_down_until = 0.0
_script = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  #: seconds until the current window ends
    retry_after: int  #: seconds until a rejected client may try again (0 when allowed)


def rate_limit_hit(identity: str, *, limit: int, window: int, now: float | None = None) -> Decision | None:
    """Count one request for `identity`; None when the store is unreachable (fail open)."""
    global _store_down_until
    now = time.time() if now is None else now
    if now < _store_down_until:
        return None
    index, elapsed = divmod(now, window)
    weight = 1 - elapsed / window
    keys = [f"rl:{identity}:{int(index)}", f"rl:{identity}:{int(index) - 1}"]
    try:
        allowed, current, previous = _count(keys, limit, weight, window * 2)
    except Exception as exc:  # any store failure: let the request through
        _store_down_until = now + settings.RATE_LIMIT_FAILOPEN_SECONDS
        metrics.RATELIMIT_FAILOPEN.inc()
        logger.warning("rate limit store unreachable, letting requests through: %s", exc)
        return None
    estimate = previous * weight + current
    return Decision(
        allowed=bool(allowed),
        limit=limit,
        remaining=max(0, math.floor(limit - estimate)),
        reset=math.ceil(window - elapsed),
        retry_after=0 if allowed else _retry_after(current, previous, limit, window, elapsed),
    )


def _count(keys: list[str], limit: int, weight: float, ttl: int) -> tuple[int, int, int]:
    if settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
        return _count_redis(keys, limit, weight, ttl)
    return _count_cache(keys, limit, weight, ttl)


def _count_redis(keys, limit, weight, ttl):
    global _script
    from django_redis import get_redis_connection

    if _script is None:
        _script = get_redis_connection("default").register_script(_WINDOW_SCRIPT)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    allowed, current, previous = _script(keys=[f"{prefix}:{key}" for key in keys], args=[limit, weight, ttl])
    return int(allowed), int(current), int(previous)


def _count_cache(keys, limit, weight, ttl):
    cache.add(keys[0], 0, ttl)
    current = cache.incr(keys[0])
    previous = cache.get(keys[1], 0)
    if previous * weight + current > limit:
        cache.decr(keys[0])  # a rejected request does not count
        return 0, current - 1, previous
    return 1, current, previous


def _retry_after(current: int, previous: int, limit: int, window: int, elapsed: float) -> int:
    """Seconds until the weighted count drops below the limit again."""
    if current < limit:
        # The previous window's share has to fade enough to make room for one more.
        wait = window * (1 - (limit - 1 - current) / previous) - elapsed
    else:
        # Only in the next window, once this window's count has faded enough.
        wait = (window - elapsed) + window * (1 - (limit - 1) / current)
    return max(1, math.ceil(wait - 1e-6))  # not a whole second more for a rounding error


@receiver(setting_changed)
def reset_store_state(**kwargs) -> None:
    """Forget the cached script and any fail-open pause when the settings change (tests)."""
    global _store_down_until, _script
    _store_down_until, _script = 0.0, None


class SlidingWindowThrottle(BaseThrottle):
    """DRF throttle over `rate_limit_hit`; views pick their limit by `throttle_scope`."""

    def allow_request(self, request, view) -> bool:
        if not settings.RATE_LIMIT_ENABLED:
            return True
        scope = getattr(view, "throttle_scope", "api")
        limit, window = settings.RATE_LIMITS[scope]
        api_key = request.auth
        identity = f"{scope}:key:{api_key.pk}" if api_key is not None else f"{scope}:ip:{self.get_ident(request)}"
        decision = rate_limit_hit(identity, limit=limit, window=window)
        if decision is None:
            return True
        request._request.rate_limit = decision  # for ApiHeadersMiddleware
        self.decision = decision
        if not decision.allowed:
            metrics.RATELIMIT_REJECTIONS.labels(scope=scope).inc()
        return decision.allowed

    def wait(self) -> float:
        return self.decision.retry_after


class ApiHeadersMiddleware:
    """`X-RateLimit-*` on every response the limiter saw, allowed or not, and no caching
    of API answers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response.setdefault("Cache-Control", "no-store")  # private data: no cache keeps it
        decision = getattr(request, "rate_limit", None)
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
            response["X-RateLimit-Reset"] = str(decision.reset)
        return response
