"""SendGrid's v3 Mail Send API and Event Webhook, for email.

Send: JSON `personalizations` / `from` / `subject` / `content`, our message id as the
custom arg `message_id`; `202` with the `X-Message-Id` header. Errors are JSON
`{"errors": [{"message", "field", "help"}]}`. Lookup uses the Email Activity API,
queried by that custom arg. Events arrive as a JSON array signed with ECDSA (P-256,
SHA-256) over timestamp + raw body, in `X-Twilio-Email-Event-Webhook-Signature` and
`-Timestamp`; the verification keys are SendGrid's base64 DER public keys.
"""

import base64
import json
import logging
import re
import time
from datetime import datetime
from html import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from providers.base import (
    OutboundMessage,
    Outcome,
    PermanentError,
    Provider,
    SendResult,
    StatusUpdate,
    TransientError,
    Verdict,
    WebhookRequest,
    outcome_for,
)
from providers.http import call, retry_after_seconds

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid event types in our statuses; engagement events change nothing we track.
STATUS_MAP = {
    "processed": "sent",
    "deferred": "",
    "delivered": "delivered",
    "bounce": "undelivered",
    "dropped": "undelivered",
    "open": "",
    "click": "",
    "spamreport": "",
    "unsubscribe": "",
    "group_unsubscribe": "",
    "group_resubscribe": "",
}
_TAG = re.compile(r"<[^>]+>")

# Events that mean "never write to this address again", after SendGrid's own
# suppression lists: a hard bounce (a `blocked` bounce is soft: the server refused for
# now), a spam report, an unsubscribe, and drops for an address SendGrid already holds
# on one of those lists. Deferrals, blocks and drops for content say nothing of the address.
SUPPRESSING_EVENTS = {"spamreport": "spam_report", "unsubscribe": "unsubscribe", "group_unsubscribe": "unsubscribe"}
SUPPRESSING_DROPS = {
    "bounced address": "bounce",
    "invalid": "invalid",
    "spam reporting address": "spam_report",
    "unsubscribed address": "unsubscribe",
}


def suppression_reason(event: dict) -> str:
    """The Suppression.Reason one Event Webhook event calls for, or ""."""
    kind = str(event.get("event", ""))
    if kind == "bounce":
        return "bounce" if str(event.get("type", "bounce")).lower() == "bounce" else ""
    if kind == "dropped":
        return SUPPRESSING_DROPS.get(str(event.get("reason", "")).strip().lower(), "")
    return SUPPRESSING_EVENTS.get(kind, "")


def email_content(body: str, attachments: list[str]) -> list[dict]:
    """text/plain first (SendGrid requires that order), then text/html when the body is
    HTML. Attachments are URLs, so they travel as links rather than as files."""
    is_html = bool(_TAG.search(body))
    text = _TAG.sub("", body) if is_html else body
    if attachments:
        text += "\n\nAttachments:\n" + "\n".join(attachments)
    content = [{"type": "text/plain", "value": text or " "}]
    if is_html:
        links = "".join(f'<li><a href="{escape(u)}">{escape(u)}</a></li>' for u in attachments)
        content.append({"type": "text/html", "value": body + (f"<ul>{links}</ul>" if links else "")})
    return content


def verify_event_signature(public_key_b64: str, signature_b64: str, timestamp: str, body: bytes) -> bool:
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature_b64), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class SendGridProvider(Provider):
    format = "sendgrid"

    @property
    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.options['api_key']}"}

    def send(self, message: OutboundMessage) -> SendResult:
        payload = {
            "personalizations": [
                {"to": [{"email": message.to_address}], "custom_args": {"message_id": message.reference}}
            ],
            "from": {"email": message.from_address},
            "subject": message.subject or "(no subject)",
            "content": email_content(message.body, message.attachments),
        }
        result = call(
            "POST",
            f"{self.options['base_url']}/v3/mail/send",
            timeout=self.timeout,
            json=payload,
            headers=self._headers,
        )
        outcome = outcome_for(result.status, maybe_delivered=result.maybe_delivered)
        message_id = {k.lower(): v for k, v in result.headers.items()}.get("x-message-id", "")
        if outcome is Outcome.SUCCESS and not message_id:
            outcome = Outcome.AMBIGUOUS
        error = ""
        if outcome is not Outcome.SUCCESS:
            errors = (result.json() or {}).get("errors") if result.status is not None else None
            error = (
                "; ".join(e.get("message", "") for e in errors if isinstance(e, dict))
                if isinstance(errors, list)
                else ""
            )
            error = error or result.error or f"HTTP {result.status}"
        return SendResult(
            outcome=outcome,
            provider_message_id=message_id if outcome is Outcome.SUCCESS else "",
            http_status=result.status,
            error=error,
            retry_after=retry_after_seconds(result.headers),
            latency_ms=result.latency_ms,
        )

    def lookup(self, message: OutboundMessage, *, since: datetime) -> list[str]:
        params = {"query": f"unique_args['message_id']=\"{message.reference}\"", "limit": 10}
        result = call(
            "GET", f"{self.options['base_url']}/v3/messages", timeout=self.timeout, params=params, headers=self._headers
        )
        payload = result.json() if result.status == 200 else None
        if not isinstance(payload, dict):
            raise TransientError(f"{self.name} lookup failed: {result.error or result.status}")
        # Activity ids are "<X-Message-Id>.<filter suffix>"; we store the X-Message-Id.
        return [m["msg_id"].split(".")[0] for m in payload.get("messages", []) if m.get("msg_id")]

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> Verdict:
        """SendGrid signs the timestamp with the body, so a captured batch replayed later
        is refused as stale once outside the window (each delivery attempt is signed
        anew, so SendGrid's own retries stay inside it)."""
        signature, timestamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER)
        if not signature and not timestamp:
            return Verdict.MISSING
        signed = bool(signature and timestamp) and any(
            verify_event_signature(key, signature, timestamp, request.body)
            for key in self.options.get("public_keys", [])
        )
        if not signed or not timestamp.isdigit():
            return Verdict.INVALID
        if abs((now or time.time()) - int(timestamp)) > self.options.get("signature_tolerance_seconds", 300):
            return Verdict.STALE
        return Verdict.VALID

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        try:
            events = json.loads(request.body)
        except ValueError:
            raise PermanentError("the event webhook body is not JSON") from None
        if not isinstance(events, list):
            raise PermanentError("the event webhook body must be a JSON array")
        updates = []
        for event in events:
            if not isinstance(event, dict):
                continue
            kind = str(event.get("event", ""))
            status = STATUS_MAP.get(kind)
            if status is None:
                logger.warning("sendgrid: unknown event type %r", kind)
                status = "unknown"
            updates.append(
                StatusUpdate(
                    status=status,
                    provider_status=kind,
                    provider_message_id=str(event.get("sg_message_id", "")).split(".")[0],
                    reference=str(event.get("message_id", "")),
                    event_id=str(event.get("sg_event_id", "")),
                    error_code=str(event.get("status", "") or event.get("reason", ""))[:64],
                    suppress=suppression_reason(event),
                    raw=event,
                )
            )
        return updates
