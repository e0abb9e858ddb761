"""A circuit breaker per provider instance, shared by every worker through the cache
(Redis in production, a locked file cache locally).

Closed: calls flow; transient failures are counted in a sliding minute. At the
threshold it opens: calls are refused (the dispatcher fails over to the next
instance) until the cool-down ends. Then it is half-open: one trial call at a time is
let through; success closes it, failure opens it again.
"""

import logging
import time
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache

from config import metrics

logger = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, name: str):
        self.name = name
        self._failures = f"breaker:{name}:failures"
        self._open_until = f"breaker:{name}:open_until"
        self._trial = f"breaker:{name}:trial"

    def state(self) -> BreakerState:
        open_until = cache.get(self._open_until)
        if open_until is None:
            return BreakerState.CLOSED
        return BreakerState.OPEN if time.time() < open_until else BreakerState.HALF_OPEN

    def allow(self) -> bool:
        state = self.state()
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        # Half-open: the first caller takes the single trial slot.
        return cache.add(self._trial, 1, timeout=settings.PROVIDER_TIMEOUT_SECONDS * 2)

    def record_success(self) -> None:
        if cache.get_many([self._failures, self._open_until]):
            cache.delete_many([self._failures, self._open_until, self._trial])

    def record_failure(self) -> None:
        self.record_failures(1)

    def record_failures(self, count: int) -> None:
        """`count` transient failures at once (a batch's), in one increment."""
        if self.state() is BreakerState.HALF_OPEN:
            self._open()
            return
        cache.add(self._failures, 0, timeout=settings.BREAKER_WINDOW_SECONDS)
        try:
            failures = cache.incr(self._failures, count)
        except ValueError:  # the window expired between add and incr
            cache.set(self._failures, failures := count, timeout=settings.BREAKER_WINDOW_SECONDS)
        if failures >= settings.BREAKER_FAILURE_THRESHOLD:
            self._open()

    def _open(self) -> None:
        cache.set(self._open_until, time.time() + settings.BREAKER_COOLDOWN_SECONDS, timeout=None)
        cache.delete_many([self._failures, self._trial])
        metrics.BREAKER_OPENED.labels(provider=self.name).inc()
        logger.warning(
            "circuit breaker opened", extra={"provider": self.name, "cooldown_s": settings.BREAKER_COOLDOWN_SECONDS}
        )
