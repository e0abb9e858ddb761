"""The sandbox's side of delivery receipts: what Twilio and SendGrid post back to us
once a message is out, signed as each of them signs it.

A create stores its message with `callbacks_due_at` set and publishes nothing of its
own: `callbacks_wake` asks a worker to post what is due at most once per WAKE_SECONDS
per process, a little later, so one task takes the receipts of every create of that
window (a Celery publish per create was one of the largest parts of its cost). The task
claims a few messages at a time for CLAIM_SECONDS (a killed worker strands no more than
that, and no longer), and before it ends wakes itself again for the earliest receipts
still waiting (a retry's backoff, a timed-out create's, a dead worker's claim). A beat
entry runs it too, for a wake the broker lost."""

import json
import logging
import secrets
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from providers.http import HttpResult, call
from providers.sandbox.behaviour import Behaviour, behaviour_for
from providers.sandbox.models import SandboxCall, SandboxMessage
from providers.sandbox.signing import sendgrid_sign
from providers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from providers.twilio import twilio_signature

logger = logging.getLogger(__name__)

#: a create wakes the callbacks task at most this often per process, this much later
WAKE_SECONDS = 0.1
#: tries of a message's receipts before the sandbox gives up, as providers do
MAX_TRIES = 9
BACKOFF_MAX_SECONDS = 60
#: a claimed message whose receipts were not posted in this time (the task died) is due again
CLAIM_SECONDS = 10
BATCH = 20

_last_wake = 0.0
_wake_lock = threading.Lock()


class CallbackFailed(Exception):
    """Our webhook did not take the callback; the receipts are tried again later, as
    providers do."""


def callbacks_wake(*, delay: float = 0.0) -> None:
    """Have a worker post the receipts due by now (plus `delay`). Called once the rows
    are committed: a wake published at t runs at t + WAKE_SECONDS, so a create that
    publishes none (one went out less than WAKE_SECONDS before it) is still taken."""
    global _last_wake
    if not delay:
        now = time.monotonic()
        with _wake_lock:
            if now - _last_wake < WAKE_SECONDS:
                return
            _last_wake = now
    from providers.sandbox.tasks import sandbox_callbacks_send

    try:
        sandbox_callbacks_send.apply_async(queue="sandbox", countdown=delay + WAKE_SECONDS)
    except Exception:
        # The receipts wait in the table; the beat entry takes them.
        logger.warning("sandbox: cannot wake the callbacks task", exc_info=True)


def _claim_sql(model: type[models.Model]) -> str:
    table = model._meta.db_table
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    # The table from the model's _meta; the values go as parameters.
    due = f"SELECT id FROM {table} WHERE callbacks_due_at <= %s ORDER BY callbacks_due_at LIMIT %s{lock}"  # noqa: S608
    claimed = "callbacks_due_at = %s, callback_tries = callback_tries + 1"
    return f"UPDATE {table} SET {claimed} WHERE id IN ({due}) RETURNING id"  # noqa: S608


def callbacks_due_send(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """Post the receipts of up to `limit` messages whose receipts are due; returns how
    many messages were taken."""
    ids = claim_due(SandboxMessage, now=now or timezone.now(), limit=limit)
    for message in SandboxMessage.objects.filter(pk__in=ids).order_by("id"):
        try:
            callbacks_send(message=message)
        except CallbackFailed as exc:
            later(message, exc)
    return len(ids)


def claim_due(model: type[models.Model], *, now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` rows of `model` (messages, calls) whose callbacks are due: their
    due time moves past the claim, so two tasks never post the same ones at once."""
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(model), [now + timedelta(seconds=CLAIM_SECONDS), now, limit])
        return [row[0] for row in cursor.fetchall()]


def callbacks_next_wake(*, now: datetime | None = None) -> None:
    """Wake the task again when the earliest receipts still waiting fall due (at least a
    second from now: receipts due already are another task's, or will be shortly)."""
    now = now or timezone.now()
    due = [
        model.objects.filter(callbacks_due_at__isnull=False)
        .order_by("callbacks_due_at")
        .values_list("callbacks_due_at", flat=True)
        .first()
        for model in (SandboxMessage, SandboxCall)
    ]
    earliest = min((d for d in due if d is not None), default=None)
    if earliest is not None:
        callbacks_wake(delay=max((earliest - now).total_seconds(), 1.0))


def later(row: SandboxMessage | SandboxCall, exc: CallbackFailed) -> None:
    """Try a message's receipts (or a call) again with backoff, as providers do."""
    if row.callback_tries >= MAX_TRIES:
        logger.warning("sandbox: gave up the callbacks of %s after %d tries: %s", row.sid, MAX_TRIES, exc)
        due = None
    else:
        due = timezone.now() + timedelta(seconds=min(2 ** (row.callback_tries - 1), BACKOFF_MAX_SECONDS))
    type(row).objects.filter(pk=row.pk).update(callbacks_due_at=due)


def callbacks_send(*, message: SandboxMessage) -> None:
    final = "undelivered" if behaviour_for(message.to_address) is Behaviour.BOUNCE else "delivered"
    if message.format == "twilio":
        for status in ("sent", final):
            _twilio_callback(message, status)
    else:
        _sendgrid_events(message, final)
    SandboxMessage.objects.filter(pk=message.pk).update(status=final, callbacks_due_at=None)


def _twilio_callback(message: SandboxMessage, status: str) -> None:
    if not message.status_callback:
        return
    instance = settings.PROVIDERS.get(message.label, {})
    account_sid = instance.get("account_sid", settings.TWILIO_ACCOUNT_SID)
    params = {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "AccountSid": account_sid,
        "From": message.from_address,
        "To": message.to_address,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
    }
    if status == "undelivered":
        params["ErrorCode"] = "30005"
    token = instance.get("auth_token", settings.TWILIO_AUTH_TOKEN)
    signature = twilio_signature(token, message.status_callback, {k: [v] for k, v in params.items()})
    post(message.status_callback, data=params, headers={"X-Twilio-Signature": signature})


def _sendgrid_events(message: SandboxMessage, final: str) -> None:
    now = int(time.time())
    base = {
        "email": message.to_address,
        "timestamp": now,
        "sg_message_id": message.sid,  # "<X-Message-Id>.filterdrecv-sandbox-<recipient>"
        "smtp-id": f"<{message.sid.split('.')[0]}@sandbox>",
        "message_id": message.reference,
    }
    events = [base | {"event": "processed", "sg_event_id": secrets.token_urlsafe(16)}]
    if final == "delivered":
        events.append(base | {"event": "delivered", "sg_event_id": secrets.token_urlsafe(16), "response": "250 OK"})
    else:
        events.append(
            base
            | {
                "event": "bounce",
                "sg_event_id": secrets.token_urlsafe(16),
                "type": "bounce",
                "status": "5.1.1",
                "reason": "550 5.1.1 The email account does not exist.",
            }
        )
    body = json.dumps(events).encode()
    timestamp = str(now)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sendgrid_sign(timestamp, body),
        TIMESTAMP_HEADER: timestamp,
    }
    post(f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/{message.label}/status", data=body, headers=headers)


def post(url: str, **kwargs) -> HttpResult:
    result = call("POST", url, timeout=settings.PROVIDER_TIMEOUT_SECONDS, **kwargs)
    if result.status is None or result.status >= 500 or result.status == 429:
        raise CallbackFailed(f"{url}: {result.error or result.status}")
    return result
