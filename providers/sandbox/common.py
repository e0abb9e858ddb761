"""What the sandbox's Twilio and SendGrid faces share: the instance settings, the
latency of a real provider, the behaviour table applied to a create, the callbacks."""

import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse

from providers.models import SandboxMessage
from providers.sandbox.behaviour import RATE_LIMITED_TRIES, Behaviour, behaviour_for, try_number


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


def _schedule_callbacks(message: SandboxMessage, *, delay: float = 0) -> None:
    from providers.tasks import sandbox_send_callbacks

    transaction.on_commit(
        lambda: sandbox_send_callbacks.apply_async(args=[message.pk], queue="sandbox", countdown=delay or None)
    )


def accept(
    label: str,
    *,
    rows: list[dict],
    respond: Callable[[list[SandboxMessage]], HttpResponse],
    errors: dict[Behaviour, Callable[[], HttpResponse]],
) -> HttpResponse:
    """Apply the recipients' behaviour to one create call; store a row per recipient and
    answer for the ones that accept. The first recipient whose behaviour refuses the
    call decides the answer, as a provider refuses a request as a whole.

    The latency comes first, before any database work: a request that slept while
    holding a pooled connection made the pool, not the sandbox's CPU, its ceiling."""
    _answer_slowly()
    behaviours = [behaviour_for(row["to_address"]) for row in rows]
    for behaviour in behaviours:
        if behaviour in (Behaviour.REJECT, Behaviour.ERROR):
            return errors[behaviour]()
    first = rows[0]
    tries = try_number(label, reference=first["reference"], fallback=f"{first['to_address']}|{first['body']}")
    if Behaviour.RATE_LIMIT in behaviours and tries <= RATE_LIMITED_TRIES:
        return errors[Behaviour.RATE_LIMIT]()
    with transaction.atomic():
        messages = [SandboxMessage.objects.create(label=label, **row) for row in rows]
    if Behaviour.TIMEOUT in behaviours and tries == 1:
        # Stored, but answered after the client gave up; the receipts follow later, so
        # the client has to find the message by looking it up.
        for message in messages:
            _schedule_callbacks(message, delay=settings.PROVIDER_TIMEOUT_SECONDS * 2 + 2)
        time.sleep(settings.PROVIDER_TIMEOUT_SECONDS + 1)
    else:
        for message in messages:
            _schedule_callbacks(message)
    return respond(messages)


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)
