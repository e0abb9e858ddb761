"""What webhooks change: inbound messages stored once, receipts applied once, and the
raw event log. Called only after the request's signature has been checked."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config import metrics
from conversations.addresses import normalize_phone
from conversations.selectors import account_for_address
from conversations.services import suppression_add
from messaging.models import Message
from messaging.services import (
    ReceivedMessage,
    message_apply_status,
    message_for_status,
    message_keyword_apply,
    message_receive,
)
from providers.base import Greeting, IncomingCall, StatusUpdate
from webhooks.models import WebhookEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundResult:
    outcome: str  #: a WebhookEvent.Outcome
    message: Message | None = None


@dataclass
class StatusResult:
    processed: int = 0
    duplicates: int = 0
    unmatched: int = 0


def webhook_inbound(*, received: ReceivedMessage, payload: str, signed: bool) -> InboundResult:
    account = account_for_address(address=received.to_address)
    now = timezone.now()
    if account is None:
        logger.warning(
            "%s: inbound message to an address no account owns; kept in the webhook log only", received.provider
        )
        _log(received.provider, WebhookEvent.Kind.INBOUND, WebhookEvent.Outcome.UNROUTED, payload, signed, now)
        _count(received.provider, WebhookEvent.Kind.INBOUND, WebhookEvent.Outcome.UNROUTED)
        return InboundResult(WebhookEvent.Outcome.UNROUTED)
    # The message is stored (one statement, its own transaction) before the raw event is
    # logged, and the answer waits for both. A crash between them leaves the message
    # without its log line; the provider, never answered, sends it again, and that copy
    # is logged as a duplicate of the stored message.
    message, created = message_receive(account=account, received=received)
    # A keyword (STOP, START, HELP) takes effect before the provider hears back, so a
    # send right after it sees it; a redelivered copy applies it only if the first did not.
    message_keyword_apply(message=message, first_time=created)
    outcome = WebhookEvent.Outcome.PROCESSED if created else WebhookEvent.Outcome.DUPLICATE
    _log(received.provider, WebhookEvent.Kind.INBOUND, outcome, payload, signed, now, message=message)
    _count(received.provider, WebhookEvent.Kind.INBOUND, outcome)
    return InboundResult(outcome, message)


def webhook_call_greeting(*, call: IncomingCall) -> Greeting | None:
    """The greeting of the account that owns the called number, or None when no account
    owns it (the call is refused)."""
    try:
        account = account_for_address(address=normalize_phone(call.to_address))
    except ValidationError:
        account = None
    if account is None:
        logger.warning("incoming call to a number no account owns; refused")
        return None
    return Greeting(
        text=account.voicemail_greeting or settings.VOICEMAIL_GREETING, max_seconds=settings.VOICEMAIL_MAX_SECONDS
    )


def webhook_status(*, provider: str, updates: list[StatusUpdate], payload: str, signed: bool) -> StatusResult:
    result = StatusResult()
    now = timezone.now()
    for update in updates:
        message = message_for_status(provider=provider, update=update)
        outcome = WebhookEvent.Outcome.PROCESSED if message else WebhookEvent.Outcome.UNMATCHED
        try:
            with transaction.atomic():
                # The event id is unique: a redelivered receipt fails here, before it
                # can touch the message (and a concurrent copy waits for this one).
                _log(
                    provider,
                    WebhookEvent.Kind.STATUS,
                    outcome,
                    payload,
                    signed,
                    now,
                    message=message,
                    event_id=update.event_id or None,
                )
                if message is not None:
                    message_apply_status(message=message, provider=provider, update=update)
                    if update.suppress:
                        _suppress(message, provider, update)
        except IntegrityError:
            _count(provider, WebhookEvent.Kind.STATUS, WebhookEvent.Outcome.DUPLICATE)
            result.duplicates += 1
            continue
        _count(provider, WebhookEvent.Kind.STATUS, outcome)
        if message is None:
            logger.info("%s: receipt for an unknown message (%s); acknowledged", provider, update.provider_message_id)
            result.unmatched += 1
        else:
            result.processed += 1
    return result


def _suppress(message: Message, provider: str, update: StatusUpdate) -> None:
    """A hard bounce, spam report or unsubscribe: the account writes to that address no more."""
    if message.direction != Message.Direction.OUTBOUND or message.type != Message.Type.EMAIL:
        return
    detail = {
        "provider": provider,
        "event": update.provider_status,
        "event_id": update.event_id,
        "code": update.error_code,
    }
    _, created = suppression_add(
        account=message.account, address=message.to_address, reason=update.suppress, detail=detail
    )
    if created:
        logger.info("%s: address suppressed (%s) after message %s", provider, update.suppress, message.pk)


def _count(provider: str, kind: str, outcome: str) -> None:
    metrics.WEBHOOK_EVENTS.labels(provider=provider, kind=kind, outcome=outcome).inc()


def _log(provider, kind, outcome, payload, signed, now, *, message=None, event_id=None) -> WebhookEvent:
    return WebhookEvent.objects.create(
        provider=provider,
        kind=kind,
        outcome=outcome,
        event_id=event_id,
        account_id=message.account_id if message else None,
        message=message,
        signed=signed,
        payload=payload,
        received_at=now,
    )
