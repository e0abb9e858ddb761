"""Our Prometheus metrics, beside django-prometheus's request metrics.

Counters are incremented where things happen (the services, the dispatcher, the
webhooks, the rate limiter), in whichever process that is: a gunicorn worker, a Celery
pool process, beat. prometheus_client's multiprocess mode keeps each process's values in
a file under PROMETHEUS_MULTIPROC_DIR (settings sets it to VAR_DIR/metrics; bin/start.sh
empties it at start) and sums them at scrape time, so nothing is lost when a process
exits and `/metrics` on the web sees the worker's counts when they share a machine.

Gauges of state (queue depth, outstanding messages, breaker states) are not kept by any
process: `StateCollector` reads them from the broker, the message table and the cache
when Prometheus scrapes. A Celery worker and beat can also serve their own `/metrics` on
METRICS_PORT (config/celery.py), and gunicorn's master can too (config/gunicorn.py),
for deployments where processes do not share a folder (containers, machines). Those
gauges describe the cluster, not a host: with METRICS_STATE_GAUGES off everywhere but
one place (beat's exporter), a sum over hosts counts each queue once.
"""

import logging
import os
import time
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

# --- Messages -------------------------------------------------------------------------
MESSAGES = Counter(
    "messages",
    "Messages that entered a status (queued, sending, sent, delivered, undelivered, failed, received)",
    ["direction", "channel", "status"],
)
DELIVERY_ATTEMPTS = Counter(
    "delivery_attempts",
    "Delivery attempts recorded (one per try), by channel, provider instance and outcome",
    ["channel", "provider", "outcome"],
)
RETRIES = Counter(
    "message_retries",
    "Retries scheduled after a try that did not get the message out, by channel and the try's outcome",
    ["channel", "outcome"],
)
DEAD_LETTERS = Counter(
    "dead_letters",
    "Messages that became dead letters (failed), by channel and reason (permanent, exhausted)",
    ["channel", "reason"],
)
REPLAYS = Counter(
    "dead_letter_replays",
    "Dead letters re-queued, by channel and who asked (api, admin, replay_failed)",
    ["channel", "actor"],
)
PACED = Counter(
    "messages_paced",
    "Messages that waited for their sender's throughput (a slot later than now) instead of going at once, "
    "by sender kind (long_code, toll_free, short_code, email)",
    ["sender_kind"],
)
SWEPT = Counter(
    "sweep_messages",
    "Messages the sweep handed back to the relay: requeued (their task was lost) or recovered (lease expired)",
    ["kind"],
)
SEGMENTS = Counter(
    "message_segments",
    "SMS/MMS segments accepted (outbound) or received (inbound), as carriers count them, by account id, "
    "direction and channel",
    ["account", "direction", "channel"],
)
CALLS = Counter(
    "voice_calls",
    "Outbound calls that ended, by provider instance, the provider's final call status (completed, busy, "
    "no-answer, failed, canceled) and who answered (human, machine, fax, unknown, none)",
    ["provider", "outcome", "answered_by"],
)
OUTBOX_PUBLISHED = Counter("outbox_published", "Queued messages the outbox relay published in dispatch batches")

KEYWORDS = Counter(
    "sms_keywords",
    "Inbound SMS keywords applied, by kind (opt_out, opt_in, help)",
    ["keyword"],
)

# --- Providers ------------------------------------------------------------------------
PROVIDER_REQUESTS = Counter(
    "provider_requests",
    "Calls to provider APIs, by provider instance, operation (send, lookup) and outcome",
    ["provider", "operation", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "provider_request_duration_seconds",
    "How long provider API calls took, by provider instance and operation",
    ["provider", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BREAKER_OPENED = Counter(
    "circuit_breaker_opened",
    "Times a provider instance's circuit breaker opened",
    ["provider"],
)

# --- Webhooks and the API edge --------------------------------------------------------
WEBHOOK_EVENTS = Counter(
    "webhook_events",
    "Webhook events stored, by provider, kind (inbound, status) and outcome (processed, duplicate, ...)",
    ["provider", "kind", "outcome"],
)
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "webhook_signature_failures",
    "Webhooks refused because of their signature, by webhook and reason (missing, invalid, stale)",
    ["webhook", "reason"],
)
RATELIMIT_REJECTIONS = Counter(
    "ratelimit_rejections",
    "API requests answered 429 by the rate limiter, by scope (api, webhooks)",
    ["scope"],
)
RATELIMIT_FAILOPEN = Counter(
    "ratelimit_failopen",
    "Requests let through because the rate-limit store was unreachable",
)

# --- Celery ---------------------------------------------------------------------------
TASKS = Counter("celery_tasks", "Celery tasks run, by task and final state", ["task", "state"])
TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "How long Celery tasks ran, by task",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

BREAKER_STATES = ("closed", "half_open", "open")


def message_status(*, direction: str, channel: str, status: str, count: int = 1) -> None:
    """Count `count` messages entering `status`."""
    if count:
        MESSAGES.labels(direction=direction, channel=channel, status=status).inc(count)


def message_segments(*, account_id: int, direction: str, channel: str, count: int | None) -> None:
    """Count `count` SMS/MMS segments of an account. One series per account, direction and
    channel: the account label is bounded by the number of accounts (docs/operations.md)."""
    if count:
        SEGMENTS.labels(account=str(account_id), direction=direction, channel=channel).inc(count)


def provider_request(*, provider: str, operation: str, outcome: str, seconds: float) -> None:
    PROVIDER_REQUESTS.labels(provider=provider, operation=operation, outcome=outcome).inc()
    PROVIDER_LATENCY.labels(provider=provider, operation=operation).observe(seconds)


# --- Scrape-time state ----------------------------------------------------------------
class StateCollector:
    """Gauges read when scraped. Each source that cannot be read is reported in
    `metrics_source_up` and skipped; the scrape itself never fails.

    Served by a view, the request cycle manages the database connection; served from a
    thread of its own (`own_connection`), the collector does what a request would: drop a
    connection that broke or aged out before using it.
    """

    def __init__(self, *, own_connection: bool = False):
        self.own_connection = own_connection

    def collect(self) -> Iterator[Metric]:
        if self.own_connection:
            from django.db import close_old_connections

            close_old_connections()
        up = GaugeMetricFamily("metrics_source_up", "Whether a scrape-time source could be read", labels=["source"])
        for source, read in (("broker", _queue_depth), ("database", _outstanding), ("cache", _breakers)):
            started = time.monotonic()
            try:
                families = list(read())
            except Exception as exc:
                logger.warning("metrics: could not read %s: %s", source, exc)
                up.add_metric([source], 0)
                if self.own_connection and source == "database":
                    from django.db import connection

                    connection.close()  # the next scrape starts on a fresh one
                continue
            up.add_metric([source], 1)
            logger.debug("metrics: read %s in %.3fs", source, time.monotonic() - started)
            yield from families
        yield up


def queue_names() -> list[str]:
    """The Celery queues our workers consume: one per channel, maintenance, webhooks (the
    consumer event deliveries), sandbox."""
    from django.conf import settings

    from messaging.models import Message

    names = [t.value for t in Message.Type] + [settings.CELERY_TASK_DEFAULT_QUEUE, "webhooks"]
    return [*names, "sandbox"] if settings.PROVIDER_SANDBOX else names


def _queue_depth() -> Iterable[Metric]:
    from config.celery import queue_depths

    gauge = GaugeMetricFamily("queue_depth", "Tasks waiting in each broker queue", labels=["queue"])
    depths = queue_depths(queue_names(), strict=True)
    for queue, depth in depths.items():
        gauge.add_metric([queue], depth)
    return [gauge]


def _outstanding() -> Iterable[Metric]:
    from django.db.models import Count, Min
    from django.utils import timezone

    from messaging.models import Message

    statuses = (Message.Status.QUEUED, Message.Status.SENDING, Message.Status.FAILED)
    outstanding = GaugeMetricFamily(
        "messages_outstanding",
        "Outbound messages now queued, sending, or failed (dead letters not yet replayed), by channel",
        labels=["channel", "status"],
    )
    oldest = GaugeMetricFamily(
        "messages_oldest_due_seconds",
        "Age of the oldest queued message that is due for a try, by channel (0 when none)",
        labels=["channel"],
    )
    counts = {
        (row["type"], row["status"]): row["n"]
        for row in Message.objects.filter(status__in=statuses)
        .values("type", "status")
        .annotate(n=Count("id"))
        .order_by()
    }
    now = timezone.now()
    due = {
        row["type"]: row["due"]
        for row in Message.objects.filter(status=Message.Status.QUEUED, next_attempt_at__lte=now)
        .values("type")
        .annotate(due=Min("next_attempt_at"))
        .order_by()
    }
    for channel in Message.Type.values:
        for status in statuses:
            outstanding.add_metric([channel, status], counts.get((channel, status), 0))
        since = due.get(channel)
        oldest.add_metric([channel], max((now - since).total_seconds(), 0.0) if since else 0.0)
    return [outstanding, oldest]


def _breakers() -> Iterable[Metric]:
    from django.conf import settings

    from providers.breaker import CircuitBreaker

    gauge = GaugeMetricFamily(
        "circuit_breaker_state",
        "Each provider instance's circuit breaker: 1 for its current state (closed, half_open, open)",
        labels=["provider", "state"],
    )
    for name in settings.PROVIDERS:
        state = CircuitBreaker(name).state().value
        for candidate in BREAKER_STATES:
            gauge.add_metric([name, candidate], 1 if candidate == state else 0)
    return [gauge]


# --- Exposition -----------------------------------------------------------------------
class _Local:
    """This process's own registry, for when multiprocess mode is off."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def state_gauges_here() -> bool:
    """Whether this process serves the scrape-time gauges (METRICS_STATE_GAUGES). They
    describe the whole cluster, not a host: on many hosts, one place serves them (beat),
    so a sum over hosts does not count a backlog once per host."""
    from django.conf import settings

    return settings.METRICS_STATE_GAUGES


def registry_for_scrape(*, with_state: bool, own_connection: bool = False) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Local())
    if with_state and state_gauges_here():
        registry.register(StateCollector(own_connection=own_connection))
    return registry


def metrics_view(request):
    """GET /metrics: every process's counters on this machine, and the state gauges
    unless METRICS_STATE_GAUGES is off.

    Behind `Authorization: Bearer <METRICS_TOKEN>` when that is set, and always in
    production: the counters name accounts and reveal traffic. Production without a
    token answers 403 rather than exposing them (or a METRICS_PORT on a private bind
    serves them instead)."""
    import hmac

    from django.conf import settings
    from django.http import HttpResponse

    from config.errors import json_error

    token = settings.METRICS_TOKEN
    if settings.IS_PRODUCTION and not token:
        return json_error(403, "metrics_disabled", "Set METRICS_TOKEN to scrape /metrics in production.")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return json_error(401, "unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>.")
    body = generate_latest(registry_for_scrape(with_state=True))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def metrics_serve(port: int, *, with_state: bool, addr: str = "0.0.0.0") -> None:  # noqa: S104
    """Serve /metrics from a thread of this process (a Celery worker, gunicorn's master)."""
    start_http_server(port, addr=addr, registry=registry_for_scrape(with_state=with_state, own_connection=True))
    logger.info("metrics served on %s:%s", addr, port)


def process_dead(pid: int) -> None:
    """Forget a finished process's live gauges (its counters stay in the sums)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
