"""The service's own Prometheus metrics, beside django-prometheus's."""

from prometheus_client import Counter

RATELIMIT_REJECTIONS = Counter("ratelimit_rejections_total", "API requests answered 429 by the rate limiter", ["scope"])
RATELIMIT_FAILOPEN = Counter(
    "ratelimit_failopen_total", "Requests let through because the rate-limit store was unreachable"
)
