"""Delivering events to consumers' endpoints, as Standard Webhooks specifies
(https://www.standardwebhooks.com): headers `webhook-id` (the event's id, the same on
every retry, so a consumer can drop duplicates), `webhook-timestamp` and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, one per signing
secret, space-separated).

One try per task, each delivery on its own, with a timeout and no redirects followed:
one slow endpoint holds one worker slot for at most WEBHOOK_TIMEOUT_SECONDS, never the
others' deliveries. The database is the truth: a try claims its delivery with a
conditional UPDATE and a lease (`next_attempt_at`), so a task redelivered after a
killed worker finds it taken until the lease runs out, then the sweep publishes it again.
"""

import base64
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from webhooks.endpoints import UrlRefused, endpoint_secrets, secret_key, url_addresses
from webhooks.events import deliveries_publish, endpoints_changed
from webhooks.models import DELIVERY_OPEN, Delivery, Event, WebhookEndpoint

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 500
USER_AGENT = "messaging-service-webhooks/1"
#: a task may run this early for its delivery (a countdown's clock against the database's)
RETRY_AFTER_MAX_SECONDS = 86400.0
EARLY_SECONDS = 1.0


@dataclass(frozen=True)
class Answer:
    """What one try got: the HTTP status (None: no response), or why it was not made."""

    status: int | None
    latency_ms: int = 0
    excerpt: str = ""
    error: str = ""
    refused: bool = False  #: the URL's host resolved to an address we may not post to
    retry_after: float | None = None  #: seconds, from a 429's or 503's Retry-After


@dataclass(frozen=True)
class Verdict:
    status: str  #: a Delivery.Status: succeeded, retrying or failed
    delay: float | None = None  #: before the next try, when retrying


def delivery_decide(*, attempts: int, answer: Answer, schedule: list[float], jitter: float) -> Verdict:
    """After try number `attempts`: 2xx succeeded; 5xx, 429 and no answer (timeout,
    connection refused) retried after the schedule's wait (jittered +-20%), or the
    endpoint's Retry-After if longer (up to a day), until the schedule runs out; anything
    else (4xx, a redirect, a refused address) failed for good."""
    if answer.status is not None and 200 <= answer.status < 300:
        return Verdict(Delivery.Status.SUCCEEDED)
    transient = (answer.status is None and not answer.refused) or answer.status == 429 or (answer.status or 0) >= 500
    if not transient or attempts > len(schedule):
        return Verdict(Delivery.Status.FAILED)
    delay = schedule[attempts - 1] * (0.8 + 0.4 * jitter)
    if answer.retry_after is not None:
        delay = max(delay, min(answer.retry_after, RETRY_AFTER_MAX_SECONDS))
    return Verdict(Delivery.Status.RETRYING, delay)


def event_body(event: Event) -> bytes:
    document = {
        "id": event.public_id,
        "type": event.type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(*, secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode() for s in secrets
    )


def delivery_lease_seconds() -> float:
    """How long a try holds its delivery: past its task's time limit, so the sweep never
    hands a delivery to a second worker while the first may still be posting it."""
    return settings.WEBHOOK_TIMEOUT_SECONDS + 10


def delivery_attempt(*, delivery_id: int) -> str:
    """Make one try of the delivery if it is due and nobody holds it; what came of it:
    skipped, succeeded, retrying or failed."""
    now = timezone.now()
    lease = now + timedelta(seconds=delivery_lease_seconds())
    claimed = Delivery.objects.filter(
        pk=delivery_id, status__in=DELIVERY_OPEN, next_attempt_at__lte=now + timedelta(seconds=EARLY_SECONDS)
    ).update(status=Delivery.Status.DELIVERING, attempts=F("attempts") + 1, next_attempt_at=lease)
    if not claimed:
        return "skipped"
    delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.enabled:
        answer = Answer(None, error=f"endpoint disabled: {endpoint.disabled_reason}"[:EXCERPT_CHARS], refused=True)
    else:
        body = event_body(event)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": event.public_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                secrets=endpoint_secrets(endpoint, now=now), msg_id=event.public_id, timestamp=timestamp, body=body
            ),
        }
        answer = http_post(endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    verdict = delivery_decide(
        attempts=delivery.attempts,
        answer=answer,
        schedule=settings.WEBHOOK_RETRY_SCHEDULE_SECONDS,
        jitter=random.random(),
    )
    _write(delivery, answer, verdict, now=timezone.now())
    if endpoint.enabled:
        _endpoint_health(endpoint, answer, verdict, now=timezone.now())
    if verdict.status == Delivery.Status.RETRYING and verdict.delay <= settings.WEBHOOK_COUNTDOWN_MAX_SECONDS:
        deliveries_publish([delivery.pk], countdown=verdict.delay)
    return str(verdict.status)


def _write(delivery: Delivery, answer: Answer, verdict: Verdict, *, now: datetime) -> None:
    next_at = now + timedelta(seconds=verdict.delay) if verdict.delay is not None else None
    # Fenced by the attempt number: a try whose lease ran out writes nothing over the next one's.
    Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts, status=Delivery.Status.DELIVERING).update(
        status=verdict.status,
        next_attempt_at=next_at,
        last_attempt_at=now,
        last_status_code=answer.status,
        latency_ms=answer.latency_ms,
        response_excerpt=answer.excerpt[:EXCERPT_CHARS],
        error=answer.error[:EXCERPT_CHARS],
    )


def _endpoint_health(endpoint: WebhookEndpoint, answer: Answer, verdict: Verdict, *, now: datetime) -> None:
    """A success clears the endpoint's failing streak; a streak longer than
    WEBHOOK_DISABLE_AFTER_SECONDS disables it, saying why."""
    if verdict.status == Delivery.Status.SUCCEEDED:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    since = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    what = f"HTTP {answer.status}" if answer.status is not None else answer.error
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True, failing_since__lte=since).update(
        enabled=False,
        disabled_at=now,
        disabled_reason=f"every delivery failed for {settings.WEBHOOK_DISABLE_AFTER_SECONDS / 86400:g} days "
        f"(last: {what})"[:255],
        updated_at=now,
    )
    if disabled:
        logger.warning("webhook endpoint %s disabled: failing for days (last: %s)", endpoint.pk, what)
        endpoints_changed()


def http_post(url: str, *, body: bytes, headers: dict, timeout: float) -> Answer:
    """POST to `url` at an address its host resolves to now, checked first: the
    connection goes to that very address (the certificate still checked against the
    host name), so a DNS answer cannot change between the check and the connection."""
    started = time.monotonic()
    try:
        addresses = url_addresses(url)
    except UrlRefused as exc:
        return Answer(None, error=f"URL refused: {exc}", refused=True)
    parts = urlsplit(url)
    address, port = addresses[0]
    options = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, **options)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        with pool:
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers=headers | {"Host": parts.netloc.rsplit("@", 1)[-1]},
                redirect=False,
                retries=False,
                preload_content=False,
            )
            excerpt = response.read(EXCERPT_CHARS * 4, decode_content=True)[: EXCERPT_CHARS * 4]
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return Answer(None, latency_ms=_since(started), error=f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS])
    return Answer(
        response.status,
        latency_ms=_since(started),
        excerpt=excerpt.decode("utf-8", "replace")[:EXCERPT_CHARS],
        retry_after=_seconds(response.headers.get("Retry-After")) if response.status in (429, 503) else None,
    )


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds (an HTTP date is not honoured: the schedule applies)."""
    try:
        return max(float(retry_after), 0.0) if retry_after else None
    except ValueError:
        return None


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- Replay ---------------------------------------------------------------------------


def deliveries_replay(*, delivery_ids: list[int]) -> int:
    """Queue these deliveries again, each with a fresh retry schedule and the same
    `webhook-id` (its event's), unless one is being tried right now; how many."""
    now = timezone.now()
    ids = list(
        Delivery.objects.filter(pk__in=delivery_ids)
        .exclude(status=Delivery.Status.DELIVERING)
        .values_list("pk", flat=True)
    )
    replayed = (
        Delivery.objects.filter(pk__in=ids)
        .exclude(status=Delivery.Status.DELIVERING)
        .update(status=Delivery.Status.PENDING, attempts=0, next_attempt_at=now, error="")
    )
    deliveries_publish(ids)
    return replayed


def event_replay(*, event: Event, endpoint: WebhookEndpoint | None = None) -> int:
    """Send `event` again to every endpoint it went to, or only to `endpoint` (which gets
    it even if it did not listen to it then); how many deliveries were queued."""
    if endpoint is not None:
        delivery, created = Delivery.objects.get_or_create(
            event=event,
            endpoint=endpoint,
            defaults={"next_attempt_at": timezone.now(), "created_at": timezone.now()},
        )
        if created:
            deliveries_publish([delivery.pk])
            return 1
        return deliveries_replay(delivery_ids=[delivery.pk])
    return deliveries_replay(delivery_ids=list(event.deliveries.values_list("pk", flat=True)))


def deliveries_replay_failed(*, since: datetime, endpoint: WebhookEndpoint | None = None, dry_run: bool = False) -> int:
    """Queue again every delivery that failed at or after `since` (of one endpoint, or
    of all); how many (or would be, with `dry_run`)."""
    failed = Delivery.objects.filter(status=Delivery.Status.FAILED, last_attempt_at__gte=since)
    if endpoint is not None:
        failed = failed.filter(endpoint=endpoint)
    ids = list(failed.values_list("pk", flat=True))
    if dry_run:
        return len(ids)
    total = 0
    for start in range(0, len(ids), 1000):
        total += deliveries_replay(delivery_ids=ids[start : start + 1000])
    return total
