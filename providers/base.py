"""The one interface every provider adapter implements, and the plain data it speaks.

Adapters never see a model or a Django request: they take dataclasses and return
dataclasses, so each can be tested against recorded wire payloads alone. Every outcome
of a send is classified as one of `Outcome`; the dispatcher decides what to do with it.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"  #: the provider accepted the message
    TRANSIENT = "transient"  #: not sent; safe to try again (429, connection refused)
    PERMANENT = "permanent"  #: refused for good (invalid number, bad request)
    AMBIGUOUS = "ambiguous"  #: may have been sent (timeout, 5xx): look it up before resending


class Verdict(StrEnum):
    """What a webhook's signature says about it."""

    VALID = "valid"
    MISSING = "missing"  #: not signed at all
    INVALID = "invalid"  #: signed, but not by a key we hold, or over other content
    STALE = "stale"  #: signed correctly, at a time outside the allowed window (a replay)


@dataclass(frozen=True)
class OutboundMessage:
    reference: str  #: our message id, carried to the provider where its API allows
    type: str  #: sms, mms or email
    from_address: str
    to_address: str
    body: str
    attachments: list[str] = field(default_factory=list)
    subject: str = ""


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str = ""
    http_status: int | None = None
    error_code: str = ""
    error: str = ""
    retry_after: float | None = None  #: seconds the provider asked us to wait
    latency_ms: int = 0


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt, in our status vocabulary (`sent`, `delivered`, `undelivered`)
    or `unknown` for a provider status we do not map (logged, never raised)."""

    status: str
    provider_status: str
    provider_message_id: str = ""
    reference: str = ""  #: our message id, when the provider echoed it back
    event_id: str = ""  #: the provider's id for this event, to process it once
    error_code: str = ""
    #: why the recipient's address must not be written to again (a hard bounce, a spam
    #: report, an unsubscribe: a `Suppression.Reason`), or "" for a receipt that says nothing of it
    suppress: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InboundMessage:
    provider_message_id: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: list[str] = field(default_factory=list)
    subject: str = ""
    timestamp: datetime | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookRequest:
    """What a provider sent us: the public URL it called, its headers and raw body."""

    url: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class ProviderError(Exception):
    """The one error adapters raise, after anymail's: its class says what the caller may
    do next, so a bug of ours (a KeyError, a ValueError) is never mistaken for one."""

    outcome = Outcome.TRANSIENT


class TransientError(ProviderError):
    """Not done, and safe to try again: the provider could not be reached, or answered
    a lookup with an error."""


class PermanentError(ProviderError):
    """Refused for good: trying again changes nothing (a webhook body we cannot read)."""

    outcome = Outcome.PERMANENT


class AmbiguousError(ProviderError):
    """It may or may not have happened at the provider: look before trying again."""

    outcome = Outcome.AMBIGUOUS


class UnsupportedError(ProviderError):
    """This provider has no such operation (e.g. no inbound-message webhook)."""

    outcome = Outcome.PERMANENT


class Provider(ABC):
    """A provider instance: an adapter class plus its own base URL and credentials.

    Subclasses implement `send`, `lookup`, `verify_webhook`, `parse_status` and,
    where the provider forwards inbound messages, `parse_inbound`.
    """

    #: the adapter's wire format, e.g. "twilio"; the instance name may differ
    format = ""

    def __init__(self, name: str, *, options: dict, callback_base_url: str, timeout: float):
        self.name = name
        self.options = options
        self.callback_base_url = callback_base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def status_callback_url(self) -> str:
        return f"{self.callback_base_url}/api/webhooks/providers/{self.name}/status"

    @abstractmethod
    def send(self, message: OutboundMessage) -> SendResult: ...

    @abstractmethod
    def lookup(self, message: OutboundMessage, *, since: datetime) -> list[str]:
        """Provider ids of messages the provider holds that match `message` and were
        created at or after `since`, oldest first: how an ambiguous try is reconciled.
        Raises TransientError when the provider cannot answer."""

    @abstractmethod
    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> Verdict:
        """Whether the webhook was signed by this provider; `now` (Unix seconds) for
        providers that sign a timestamp, which must be within the allowed window."""

    @abstractmethod
    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """The receipts in a verified webhook; PermanentError when it cannot be read."""

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        raise UnsupportedError(f"{self.name} does not forward inbound messages")


def outcome_for(status: int | None, *, maybe_delivered: bool = False) -> Outcome:
    """The usual reading of an HTTP answer to a create call (see docs/delivery.md)."""
    if status is None:
        return Outcome.AMBIGUOUS if maybe_delivered else Outcome.TRANSIENT
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 429:
        return Outcome.TRANSIENT
    if status >= 500:
        return Outcome.AMBIGUOUS
    return Outcome.PERMANENT
