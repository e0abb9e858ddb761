"""What the sandbox's Twilio and SendGrid faces share: the instance settings, the
latency of a real provider, the behaviour table applied to a create, the callbacks."""

import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from providers.sandbox.behaviour import RATE_LIMITED_TRIES, Behaviour, behaviour_for, try_number
from providers.sandbox.callbacks import callbacks_wake
from providers.sandbox.models import SandboxMessage


def instance(label: str) -> dict:
    return settings.PROVIDERS.get(label, {})


def with_headers(response: HttpResponse, headers: dict) -> HttpResponse:
    """`Retry_After="1"` becomes the header `Retry-After: 1`."""
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def query_param(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query).get(name, [""])[0]


def _answer_slowly() -> None:
    """Take as long as a real provider API does to answer a create call (SANDBOX_LATENCY_MS)."""
    if settings.SANDBOX_LATENCY_MS:
        time.sleep(settings.SANDBOX_LATENCY_MS / 1000)


def messages_store(label: str, *, rows: list[dict], callbacks_in: float = 0.0) -> list[SandboxMessage]:
    """Store what a create accepted, one row per recipient, with its receipts due
    `callbacks_in` seconds from now: one INSERT in autocommit, where the ORM's
    bulk_create spends a BEGIN and a COMMIT around it."""
    now = timezone.now()
    due = now + timedelta(seconds=callbacks_in)
    messages = [SandboxMessage(label=label, created_at=now, callbacks_due_at=due, **row) for row in rows]
    fields = [f for f in SandboxMessage._meta.concrete_fields if not f.primary_key]
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Names from the model's _meta; the values go as parameters.
    table, columns = SandboxMessage._meta.db_table, ", ".join(f.column for f in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row_sql] * len(messages))  # noqa: S608
    values = [f.get_db_prep_save(getattr(m, f.attname), connection) for m in messages for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    return messages


def accept(
    label: str,
    *,
    rows: list[dict],
    respond: Callable[[list], HttpResponse],
    errors: dict[Behaviour, Callable[[], HttpResponse]],
    store: Callable[..., list] = messages_store,
) -> HttpResponse:
    """Apply the recipients' behaviour to one create call; store a row per recipient and
    answer for the ones that accept. The first recipient whose behaviour refuses the
    call decides the answer, as a provider refuses a request as a whole.

    The latency comes first, before any database work: a request that slept while
    holding a pooled connection made the pool, not the sandbox's CPU, its ceiling. Tries
    are counted only for the recipients whose answer depends on them."""
    _answer_slowly()
    behaviours = [behaviour_for(row["to_address"]) for row in rows]
    for behaviour in behaviours:
        if behaviour in (Behaviour.REJECT, Behaviour.ERROR):
            return errors[behaviour]()
    tries = 0
    if Behaviour.RATE_LIMIT in behaviours or Behaviour.TIMEOUT in behaviours:
        first = rows[0]
        fallback = f"{first['to_address']}|{first.get('body', '')}"
        tries = try_number(label, reference=first["reference"], fallback=fallback)
    if Behaviour.RATE_LIMIT in behaviours and tries <= RATE_LIMITED_TRIES:
        return errors[Behaviour.RATE_LIMIT]()
    if Behaviour.TIMEOUT in behaviours and tries == 1:
        # Stored, but answered after the client gave up; the receipts follow later, so
        # the client has to find the message by looking it up.
        delay = settings.PROVIDER_TIMEOUT_SECONDS * 2 + 2
        messages = store(label, rows=rows, callbacks_in=delay)
        transaction.on_commit(lambda: callbacks_wake(delay=delay))
        time.sleep(settings.PROVIDER_TIMEOUT_SECONDS + 1)
        return respond(messages)
    messages = store(label, rows=rows)
    transaction.on_commit(callbacks_wake)
    return respond(messages)


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)
