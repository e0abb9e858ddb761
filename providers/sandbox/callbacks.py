"""The sandbox's side of delivery receipts: what Twilio and SendGrid post back to us
once a message is out, signed as each of them signs it."""

import json
import secrets
import time

from django.conf import settings

from providers.http import call
from providers.models import SandboxMessage
from providers.sandbox.behaviour import Behaviour, behaviour_for
from providers.sandbox.signing import sendgrid_sign
from providers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from providers.twilio import twilio_signature


class CallbackFailed(Exception):
    """Our webhook did not take the callback; the task retries, as providers do."""


def callbacks_send(*, message: SandboxMessage) -> None:
    final = "undelivered" if behaviour_for(message.to_address) is Behaviour.BOUNCE else "delivered"
    if message.format == "twilio":
        for status in ("sent", final):
            _twilio_callback(message, status)
    else:
        _sendgrid_events(message, final)
    SandboxMessage.objects.filter(pk=message.pk).update(status=final)


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
    _post(message.status_callback, data=params, headers={"X-Twilio-Signature": signature})


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
    _post(f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/{message.label}/status", data=body, headers=headers)


def _post(url: str, **kwargs) -> None:
    result = call("POST", url, timeout=settings.PROVIDER_TIMEOUT_SECONDS, **kwargs)
    if result.status is None or result.status >= 500 or result.status == 429:
        raise CallbackFailed(f"{url}: {result.error or result.status}")
