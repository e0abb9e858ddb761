"""The assignment-format webhooks' HMAC signatures: rotation, replay window, missing or
half-present headers, in local and in production mode."""

import json
import time

import pytest

from messaging.models import Message
from webhooks.models import WebhookEvent
from webhooks.signatures import Verdict, sign, verify

BODY = json.dumps(
    {"from": "+18045551234", "to": "+12016661234", "type": "sms", "messaging_provider_id": "sig-1", "body": "hi"}
).encode()


def _post(api, *, secret=None, timestamp=None, signature=None):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {}
    if secret is not None or signature is not None:
        headers["HTTP_X_SIGNATURE"] = signature or sign(secret, timestamp, BODY)
        headers["HTTP_X_SIGNATURE_TIMESTAMP"] = timestamp
    return api.post("/api/webhooks/sms", BODY, content_type="application/json", **headers)


@pytest.fixture
def rotating(settings):
    """Mid-rotation: the new secret is first, the old one still accepted."""
    settings.WEBHOOK_SECRETS = ["new-secret", "old-secret"]


@pytest.mark.parametrize("secret", ["new-secret", "old-secret"])
def test_both_secrets_are_accepted_during_a_rotation(api, rotating, secret):
    response = _post(api, secret=secret)

    assert response.status_code == 201
    assert WebhookEvent.objects.get().signed


def test_a_retired_secret_is_refused(api, settings):
    settings.WEBHOOK_SECRETS = ["new-secret"]

    response = _post(api, secret="old-secret")

    assert response.status_code == 401
    assert not Message.objects.exists()


@pytest.mark.parametrize("age", [-400, 301, 3600])
def test_a_timestamp_outside_five_minutes_either_way_is_refused(api, rotating, age):
    response = _post(api, secret="new-secret", timestamp=str(int(time.time()) - age))

    assert response.status_code == 401
    assert "window" in response.json()["error"]["message"]


def test_a_signature_over_another_body_is_refused(api, rotating):
    timestamp = str(int(time.time()))
    response = _post(api, signature=sign("new-secret", timestamp, BODY + b" "), timestamp=timestamp)

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("signature", "timestamp"), [("sha256=00", ""), ("", "1700000000"), ("sha256=00", "yesterday")]
)
def test_half_present_or_malformed_headers_are_invalid_not_missing(signature, timestamp, rotating):
    assert verify(signature=signature, timestamp=timestamp, body=BODY) is not Verdict.MISSING


def test_unsigned_webhooks_pass_in_local_mode_marked_unsigned(api, settings, caplog):
    settings.ALLOW_UNSIGNED_WEBHOOKS = True

    response = _post(api)

    assert response.status_code == 201
    assert not WebhookEvent.objects.get().signed
    assert "unsigned webhook accepted" in caplog.text


def test_unsigned_webhooks_are_refused_in_production(api, settings, rotating):
    settings.ALLOW_UNSIGNED_WEBHOOKS = False

    response = _post(api)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The webhook is not signed."
    assert not Message.objects.exists() and not WebhookEvent.objects.exists()
    assert _post(api, secret="new-secret").status_code == 201
