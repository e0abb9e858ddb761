"""Idempotency keys with Stripe's semantics, per account, for POSTs that create messages.

The first request with a key claims it by inserting its row; the same key again gets the
stored answer (same status, same body), a different body under the key is refused, and
a request that arrives while the first is still running is refused too. A request that
fails validation releases the key, so the corrected request can use it. A holder that
died mid-request (its transaction rolled back, nothing was created) is taken over once
its lock is older than IDEMPOTENCY_LOCK_SECONDS. Keys are kept IDEMPOTENCY_KEY_TTL_HOURS.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Account
from messaging.models import IdempotencyKey


class IdempotencyKeyInUse(Exception):
    """Another request with this key is still running."""


class IdempotencyKeyMismatch(Exception):
    """The key was used before with a different request."""


@dataclass(frozen=True)
class Claim:
    record: IdempotencyKey
    replay: bool  #: True: answer with record.response_*, do not run the request again


def idempotency_fingerprint(*, method: str, path: str, data) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def idempotency_claim(*, account: Account, key: str, fingerprint: str) -> Claim:
    now = timezone.now()
    for _ in range(3):  # a row pruned, released or expired between two steps: look again
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    account=account, key=key, fingerprint=fingerprint, created_at=now, locked_at=now
                )
            return Claim(record, replay=False)
        except IntegrityError:
            pass  # the key exists: a concurrent insert waited for the holder's commit
        record = IdempotencyKey.objects.filter(account=account, key=key).first()
        if record is None:
            continue
        if record.created_at < now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS):
            IdempotencyKey.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyMismatch
        if record.response_status is not None:
            return Claim(record, replay=True)
        if record.locked_at < now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS) and _take_over(record, now):
            return Claim(record, replay=False)
        raise IdempotencyKeyInUse
    raise IdempotencyKeyInUse


def _take_over(record: IdempotencyKey, now) -> bool:
    """Claim a key whose holder is gone; a conditional UPDATE, so only one taker wins."""
    taken = IdempotencyKey.objects.filter(
        pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
    ).update(locked_at=now)
    return taken == 1


def idempotency_finish(*, record: IdempotencyKey, status: int, body) -> None:
    """Store the answer; call inside the transaction that created what it describes."""
    IdempotencyKey.objects.filter(pk=record.pk).update(response_status=status, response_body=body)


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Give the key back after a request that created nothing (refused or crashed)."""
    IdempotencyKey.objects.filter(pk=record.pk, response_status__isnull=True).delete()


def idempotency_keys_prune() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
