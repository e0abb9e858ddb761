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


class CallMode(StrEnum):
    """How an outbound voice message is delivered."""

    CALL = "call"  #: say or play it to whoever answers
    VOICEMAIL_DROP = "voicemail_drop"  #: leave it after the answering machine's beep


class HumanAnswer(StrEnum):
    """What a voicemail drop does when a person, not a machine, answers."""

    SAME = "same"  #: say or play the same message to them
    MESSAGE = "message"  #: say `human_say` instead (a short different message)
    HANGUP = "hangup"  #: hang up without a word


class AnsweredBy(StrEnum):
    """Who picked up an outbound call, in our words (providers' answering-machine
    detection has finer values: each adapter maps them)."""

    HUMAN = "human"
    MACHINE = "machine"
    FAX = "fax"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CallSpec:
    """What an outbound voice message says, and how: `say` (spoken text, in `voice` and
    `language` when given) or `play` (an audio URL), exactly one of them."""

    mode: CallMode = CallMode.CALL
    say: str = ""
    play: str = ""
    voice: str = ""
    language: str = ""
    human: HumanAnswer = HumanAnswer.SAME
    human_say: str = ""


@dataclass(frozen=True)
class OutboundMessage:
    reference: str  #: our message id, carried to the provider where its API allows
    type: str  #: sms, mms, email or voice
    from_address: str
    to_address: str
    body: str
    attachments: list[str] = field(default_factory=list)
    subject: str = ""
    call: CallSpec | None = None  #: a voice message's call (type voice only)


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
    duration_seconds: int | None = None  #: a call's length, once it ended
    answered_by: str = ""  #: an AnsweredBy value, when the provider detected who answered


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
    duration_seconds: int | None = None  #: a voicemail's length


@dataclass(frozen=True)
class IncomingCall:
    """A provider asking what to do with a call to one of our numbers."""

    call_sid: str
    from_address: str
    to_address: str
    recorded: bool = False  #: the caller's voicemail has just been recorded (hang up now)


@dataclass(frozen=True)
class Greeting:
    """What an account's voicemail says before the beep."""

    text: str
    max_seconds: int = 120


@dataclass(frozen=True)
class Reply:
    """A webhook answer in the provider's own format (TwiML for Twilio's voice)."""

    body: str
    content_type: str


@dataclass(frozen=True)
class Recording:
    content: bytes
    content_type: str


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
        return self.webhook_url("status")

    def webhook_url(self, kind: str) -> str:
        """Our webhook of this instance: status, inbound, voice or twiml."""
        return f"{self.callback_base_url}/api/webhooks/providers/{self.name}/{kind}"

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
        """Inbound messages in a verified webhook (voicemails, for a voice provider)."""
        raise UnsupportedError(f"{self.name} does not forward inbound messages")

    # Voice: a provider that places calls also asks us, over webhooks, what a call
    # says (`call_reply`) and what to do with a call to our numbers (`parse_call`,
    # `answer_call`), and holds the recordings of voicemails (`recording_fetch`).

    def call_reply(self, message: OutboundMessage | None, request: WebhookRequest) -> Reply:
        """What an answered outbound call says, given who answered (the provider's
        request carries it): the instructions in the provider's format. `message` None:
        we know no such call (end it)."""
        raise UnsupportedError(f"{self.name} does not place calls")

    def parse_call(self, request: WebhookRequest) -> IncomingCall:
        """The incoming call a verified webhook asks about; PermanentError when unreadable."""
        raise UnsupportedError(f"{self.name} does not answer calls")

    def answer_call(self, call: IncomingCall, *, greeting: Greeting | None) -> Reply:
        """Greet the caller and record a voicemail; `greeting` None: nobody takes calls
        at this number (refuse it). After the recording (`call.recorded`), hang up."""
        raise UnsupportedError(f"{self.name} does not answer calls")

    def recording_fetch(self, url: str) -> Recording:
        """The audio of a voicemail this provider recorded. TransientError when it cannot
        be had now, PermanentError when it never will (not this provider's URL, gone)."""
        raise UnsupportedError(f"{self.name} holds no recordings")


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
