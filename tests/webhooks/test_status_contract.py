"""One contract, every provider: receipts are verified, applied forward only, once."""

import json
import secrets
import time
from urllib.parse import urlencode

import pytest
from django.conf import settings

from messaging.models import Message
from providers.sandbox.signing import sendgrid_sign
from providers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from providers.twilio import twilio_signature
from tests.factories import MessageFactory
from tests.providers.helpers import EcKey
from webhooks.models import WebhookEvent


class Twilio:
    name = "twilio"

    def post(self, api, message, status, *, event_id=None, token=None, signature=None):
        url = f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/twilio/status?ref={message.pk}"
        params = {
            "MessageSid": message.provider_message_id or "SMunknown",
            "MessageStatus": status,
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "To": message.to_address,
            "From": message.from_address,
        }
        sig = signature or twilio_signature(
            token or settings.TWILIO_AUTH_TOKEN, url, {k: [v] for k, v in params.items()}
        )
        return api.post(
            url.removeprefix(settings.PUBLIC_BASE_URL),
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=sig,
        )

    def rotate(self, settings):
        settings.PROVIDERS = settings.PROVIDERS | {
            self.name: settings.PROVIDERS[self.name]
            | {"auth_token": "new-token", "previous_auth_tokens": [settings.TWILIO_AUTH_TOKEN]}
        }


class TwilioVoice(Twilio):
    """Call progress: our statuses as the call statuses that mean them."""

    name = "twilio-voice"
    _statuses = {"sent": "ringing", "delivered": "completed", "undelivered": "busy"}

    def post(self, api, message, status, *, event_id=None, token=None, signature=None):
        url = f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/twilio-voice/status?ref={message.pk}"
        params = {
            "CallSid": message.provider_message_id or "CAunknown",
            "CallStatus": self._statuses.get(status, status),
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "To": message.to_address,
            "From": message.from_address,
        }
        sig = signature or twilio_signature(
            token or settings.TWILIO_AUTH_TOKEN, url, {k: [v] for k, v in params.items()}
        )
        return api.post(
            url.removeprefix(settings.PUBLIC_BASE_URL),
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=sig,
        )


class SendGrid:
    name = "sendgrid"
    _events = {"sent": "processed", "delivered": "delivered", "undelivered": "bounce"}

    def post(self, api, message, status, *, event_id=None, key=None, signature=None, signed_at=None):
        event = {
            "email": message.to_address,
            "timestamp": int(time.time()),
            "event": self._events.get(status, status),
            "sg_event_id": event_id or secrets.token_hex(8),
            "sg_message_id": f"{message.provider_message_id}.filter1",
            "message_id": str(message.pk),
        }
        body = json.dumps([event]).encode()
        timestamp = str(int(signed_at or time.time()))
        if key is not None:
            sig = key.headers(body, timestamp)[SIGNATURE_HEADER.lower()]
        else:
            sig = signature or sendgrid_sign(timestamp, body)
        return api.post(
            "/api/webhooks/providers/sendgrid/status",
            body,
            content_type="application/json",
            **{
                "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): sig,
                "HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_"): timestamp,
            },
        )


@pytest.fixture(params=[Twilio(), SendGrid(), TwilioVoice()], ids=lambda p: p.name)
def provider(request):
    return request.param


@pytest.fixture
def sent(provider):
    message_type = {"sendgrid": "email", "twilio-voice": "voice"}.get(provider.name, "sms")
    kwargs = (
        {"from_address": "user@usehatchapp.com", "to_address": "contact@gmail.com"} if message_type == "email" else {}
    )
    return MessageFactory(
        type=message_type,
        status="sent",
        provider=provider.name,
        provider_message_id=f"pm-{secrets.token_hex(4)}",
        **kwargs,
    )


def test_valid_receipt_moves_the_message_forward(api, provider, sent):
    response = provider.post(api, sent, "delivered")

    assert response.status_code == 200, response.content
    assert response.json()["processed"] == 1
    sent.refresh_from_db()
    assert sent.status == "delivered" and sent.delivered_at is not None


def test_bad_signature_is_refused_and_changes_nothing(api, provider, sent):
    response = provider.post(api, sent, "delivered", signature="c2lnbmF0dXJl")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert not WebhookEvent.objects.exists()


def test_missing_signature_is_refused(api, provider, sent):
    path = f"/api/webhooks/providers/{provider.name}/status"

    response = api.post(
        path,
        "[]" if provider.name == "sendgrid" else "MessageStatus=delivered",
        content_type="application/json" if provider.name == "sendgrid" else "application/x-www-form-urlencoded",
    )

    assert response.status_code == 401


def test_duplicate_receipt_is_processed_once(api, provider, sent):
    first = provider.post(api, sent, "delivered", event_id="evt-1").json()
    second = provider.post(api, sent, "delivered", event_id="evt-1").json()

    assert (first["processed"], second["duplicates"]) == (1, 1)
    assert sent.events.filter(kind="callback").count() == 1


def test_out_of_order_receipt_does_not_move_backwards(api, provider, sent):
    provider.post(api, sent, "delivered")
    provider.post(api, sent, "sent")

    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert list(sent.events.filter(kind="callback").values_list("detail__applied", flat=True)) == [True, False]


def test_unknown_status_is_acknowledged_and_kept_without_effect(api, provider, sent):
    response = provider.post(api, sent, "teleported")

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert sent.events.get(kind="callback").detail["provider_status"] == "teleported"


def test_receipt_for_an_unknown_message_is_acknowledged(api, provider, sent):
    sent.pk, sent.provider_message_id = 987654321, "pm-nobody"

    response = provider.post(api, sent, "delivered")

    assert response.status_code == 200 and response.json()["unmatched"] == 1
    assert WebhookEvent.objects.get().outcome == "unmatched"


def test_receipt_before_the_worker_recorded_the_send_still_applies(api, provider, sent):
    Message.objects.filter(pk=sent.pk).update(status="sending", provider_message_id=None)
    sent.provider_message_id = "pm-late"

    provider.post(api, sent, "delivered")

    sent.refresh_from_db()
    assert sent.status == "delivered" and sent.provider_message_id == "pm-late"


def test_rotated_credentials_are_accepted(api, provider, sent, settings):
    if provider.name.startswith("twilio"):
        provider.rotate(settings)
        response = provider.post(api, sent, "delivered")  # still signed with the previous token
    else:
        key = EcKey()
        settings.PROVIDERS = settings.PROVIDERS | {
            "sendgrid": settings.PROVIDERS["sendgrid"] | {"public_keys": [key.public_b64]}
        }
        response = provider.post(api, sent, "delivered", key=key)

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "delivered"


def test_unknown_provider_is_a_404(api):
    assert api.post("/api/webhooks/providers/nobody/status", "{}", content_type="application/json").status_code == 404


def test_failed_message_is_revived_by_a_delivered_receipt(api, provider, sent):
    Message.objects.filter(pk=sent.pk).update(status="failed", failure_reason="exhausted")

    provider.post(api, sent, "delivered")

    sent.refresh_from_db()
    assert sent.status == "delivered" and sent.failure_reason == ""


def test_a_correctly_signed_sendgrid_batch_from_a_week_ago_is_refused_as_stale(api, db):
    provider = SendGrid()
    message = MessageFactory(
        type="email",
        status="sent",
        provider="sendgrid",
        provider_message_id="pm-stale",
        from_address="user@usehatchapp.com",
        to_address="contact@gmail.com",
    )

    response = provider.post(api, message, "delivered", signed_at=time.time() - 7 * 24 * 3600)

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_signature",
        "message": "sendgrid webhook: The signature timestamp is outside the allowed window.",
    }
    message.refresh_from_db()
    assert message.status == "sent" and not WebhookEvent.objects.exists()
