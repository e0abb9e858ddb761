"""Twilio's Programmable Messaging API (the subset we use) for SMS and MMS.

Create: form-encoded POST with HTTP Basic auth, repeated `MediaUrl`, a `StatusCallback`
that carries our message id (Twilio signs the full URL, query included). Errors are JSON
`{"code", "message", "more_info", "status"}`. Status callbacks are form posts signed
with `X-Twilio-Signature`: base64 HMAC-SHA1, keyed by the auth token, of the URL
followed by every POST parameter name and value, sorted by name and, for a repeated
field, by value (as twilio's RequestValidator signs). Twilio's own signing is not
consistent about the default port, so the URL is tried with and without it.
"""

import base64
import hashlib
import hmac
import logging
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from providers.base import (
    InboundMessage,
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
from providers.http import HttpResult, call, retry_after_seconds

logger = logging.getLogger(__name__)

# Twilio's message statuses in ours; the early ones change nothing we track.
STATUS_MAP = {
    "accepted": "",
    "scheduled": "",
    "queued": "",
    "sending": "",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "undelivered",
    "canceled": "undelivered",
}


def twilio_signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """As twilio's RequestValidator tries it: without the port, and with the scheme's
    default port when the URL names none."""
    parts = urlsplit(url)
    without = parts._replace(netloc=parts.netloc.split(":")[0]).geturl()
    default = 443 if parts.scheme == "https" else 80
    with_port = url if parts.port else parts._replace(netloc=f"{parts.netloc}:{default}").geturl()
    return [without, with_port]


def twilio_verify(options: dict, request: WebhookRequest) -> Verdict:
    """A Twilio webhook's signature, under the auth token or a previous one (rotation)."""
    signature = request.header("X-Twilio-Signature")
    if not signature:
        return Verdict.MISSING
    tokens = [options["auth_token"], *options.get("previous_auth_tokens", [])]
    valid = any(
        hmac.compare_digest(twilio_signature(token, url, request.form), signature)
        for token in tokens
        for url in _port_variants(request.url)
    )
    return Verdict.VALID if valid else Verdict.INVALID


def created_result(result: HttpResult) -> SendResult:
    """What Twilio's answer to a create (a message or a call) says: a 2xx with the new
    resource's `sid`, or the error body `{"code", "message"}`."""
    outcome = outcome_for(result.status, maybe_delivered=result.maybe_delivered)
    payload = result.json() if result.status is not None else None
    payload = payload if isinstance(payload, dict) else {}
    if outcome is Outcome.SUCCESS and not payload.get("sid"):
        outcome = Outcome.AMBIGUOUS  # accepted, but we cannot tell which resource it is
    failed = outcome is not Outcome.SUCCESS
    return SendResult(
        outcome=outcome,
        provider_message_id="" if failed else payload.get("sid", ""),
        http_status=result.status,
        error_code=str(payload.get("code") or "") if failed else "",
        error=(payload.get("message") or result.error or f"HTTP {result.status}") if failed else "",
        retry_after=retry_after_seconds(result.headers),
        latency_ms=result.latency_ms,
    )


class TwilioProvider(Provider):
    format = "twilio"

    @property
    def _messages_url(self) -> str:
        return f"{self.options['base_url']}/2010-04-01/Accounts/{self.options['account_sid']}/Messages.json"

    @property
    def _auth(self) -> tuple[str, str]:
        return self.options["account_sid"], self.options["auth_token"]

    def send(self, message: OutboundMessage) -> SendResult:
        form = [("To", message.to_address), ("From", message.from_address), ("Body", message.body)]
        form += [("MediaUrl", url) for url in message.attachments]
        form.append(("StatusCallback", f"{self.status_callback_url}?{urlencode({'ref': message.reference})}"))
        result = call("POST", self._messages_url, timeout=self.timeout, data=form, auth=self._auth)
        return created_result(result)

    def lookup(self, message: OutboundMessage, *, since: datetime) -> list[str]:
        # Twilio has no client reference on a message: match sender, recipient and body
        # among messages sent since the first try (the dispatcher skips ids it already
        # attributed to another of our messages).
        params = {
            "To": message.to_address,
            "From": message.from_address,
            "DateSent>": since.date().isoformat(),
            "PageSize": 100,
        }
        result = call("GET", self._messages_url, timeout=self.timeout, params=params, auth=self._auth)
        payload = result.json() if result.status == 200 else None
        if not isinstance(payload, dict):
            raise TransientError(f"{self.name} lookup failed: {result.error or result.status}")
        found = [m for m in payload.get("messages", []) if m.get("body") == message.body and m.get("sid")]
        found.sort(key=lambda m: m.get("date_created") or "")
        return [m["sid"] for m in found]

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> Verdict:
        return twilio_verify(self.options, request)

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        form = {name: values[-1] for name, values in request.form.items()}
        provider_status = form.get("MessageStatus", form.get("SmsStatus", ""))
        status = STATUS_MAP.get(provider_status)
        if status is None:
            logger.warning("twilio: unknown message status %r", provider_status)
            status = "unknown"
        reference = parse_qs(urlsplit(request.url).query).get("ref", [""])[0]
        sid = form.get("MessageSid", form.get("SmsSid", ""))
        return [
            StatusUpdate(
                status=status,
                provider_status=provider_status,
                provider_message_id=sid,
                reference=reference,
                event_id=f"{sid}:{provider_status}",
                error_code=form.get("ErrorCode", ""),
                raw=form,
            )
        ]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        form = {name: values[-1] for name, values in request.form.items()}
        try:
            media_count = int(form.get("NumMedia", "0") or 0)
        except ValueError:
            raise PermanentError(f"NumMedia is not a number: {form['NumMedia'][:20]!r}") from None
        media = [form[f"MediaUrl{i}"] for i in range(media_count) if form.get(f"MediaUrl{i}")]
        return [
            InboundMessage(
                provider_message_id=form.get("MessageSid", ""),
                type="mms" if media else "sms",
                from_address=form.get("From", ""),
                to_address=form.get("To", ""),
                body=form.get("Body", ""),
                attachments=media,
                raw=form,
            )
        ]
