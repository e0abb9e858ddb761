"""Signatures of the assignment-format webhooks (/api/webhooks/sms and /email).

The sender signs `<timestamp>.<raw body>` with HMAC-SHA256 under a shared secret and
sends `X-Signature-Timestamp: <unix seconds>` and `X-Signature: sha256=<hex digest>`.
We accept any secret in WEBHOOK_SECRETS (so a new one can be added before the old one
is retired) and timestamps within WEBHOOK_TOLERANCE_SECONDS (so a captured request
cannot be replayed later). Provider-format webhooks use their providers' own schemes.
"""

import hashlib
import hmac
import time

from django.conf import settings

from providers.base import Verdict

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Verdict", "sign", "verify"]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(*, signature: str, timestamp: str, body: bytes, now: float | None = None) -> Verdict:
    if not signature and not timestamp:
        return Verdict.MISSING
    try:
        age = abs((now or time.time()) - int(timestamp))
    except ValueError:
        return Verdict.INVALID
    if age > settings.WEBHOOK_TOLERANCE_SECONDS:
        return Verdict.STALE
    for secret in settings.WEBHOOK_SECRETS:
        if hmac.compare_digest(sign(secret, timestamp, body), signature):
            return Verdict.VALID
    return Verdict.INVALID
