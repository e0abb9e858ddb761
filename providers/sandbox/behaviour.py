"""How the sandbox misbehaves, by recipient (the table in README and docs/delivery.md),
and the switches tests use: take a provider instance down, count tries per message."""

import hashlib
from enum import StrEnum

from django.core.cache import cache


class Behaviour(StrEnum):
    REJECT = "reject"  #: 400: permanent failure, no retry
    ERROR = "error"  #: 500 on every attempt
    RATE_LIMIT = "rate_limit"  #: 429 with Retry-After: 1 twice, then accepted
    TIMEOUT = "timeout"  #: first attempt stored but answered after the client timeout
    BOUNCE = "bounce"  #: accepted, then an `undelivered` callback (a call: `failed`)
    DELIVER = "deliver"  #: accepted, then a `delivered` callback (a call: answered by a person)
    # Calls only (an SMS to these is delivered):
    BUSY = "busy"  #: rings busy
    NO_ANSWER = "no_answer"  #: rings until it gives up
    MACHINE = "machine"  #: answered by an answering machine: a drop plays after its beep
    HUMAN = "human"  #: answered by a person


RECIPIENTS = {
    "+15005550001": Behaviour.REJECT,
    "permanent@fail.test": Behaviour.REJECT,
    "+15005550002": Behaviour.ERROR,
    "error500@fail.test": Behaviour.ERROR,
    "+15005550003": Behaviour.RATE_LIMIT,
    "ratelimit@fail.test": Behaviour.RATE_LIMIT,
    "+15005550004": Behaviour.TIMEOUT,
    "timeout@fail.test": Behaviour.TIMEOUT,
    "+15005550005": Behaviour.BOUNCE,
    "bounce@fail.test": Behaviour.BOUNCE,
    "+15005550006": Behaviour.BUSY,
    "+15005550007": Behaviour.NO_ANSWER,
    "+15005550008": Behaviour.MACHINE,
    "+15005550009": Behaviour.HUMAN,
}
RATE_LIMITED_TRIES = 2
_TTL = 24 * 3600


def behaviour_for(recipient: str) -> Behaviour:
    return RECIPIENTS.get(recipient.strip().lower(), Behaviour.DELIVER)


def try_number(label: str, *, reference: str, fallback: str) -> int:
    """How many times this message has now been submitted to `label` (1 the first time).
    Keyed by our reference when the client sent one, else by recipient and content."""
    key = reference or hashlib.sha256(fallback.encode()).hexdigest()
    cache_key = f"sandbox:tries:{label}:{key}"
    cache.add(cache_key, 0, timeout=_TTL)
    try:
        return cache.incr(cache_key)
    except ValueError:
        cache.set(cache_key, 1, timeout=_TTL)
        return 1


def set_down(label: str, down: bool) -> None:
    if down:
        cache.set(f"sandbox:down:{label}", True, timeout=None)
    else:
        cache.delete(f"sandbox:down:{label}")


def is_down(label: str) -> bool:
    return bool(cache.get(f"sandbox:down:{label}"))
