"""Storing an inbound message once, in the right account's conversation."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from config import metrics
from conversations.models import Account
from messaging.models import Message
from messaging.segments import message_segmentation
from messaging.services.storing import message_store_once
from messaging.services.voice import voicemail_complete, voicemail_recording_copy_later

#: the call mode of an inbound voice message
VOICEMAIL = "voicemail"


@dataclass(frozen=True)
class ReceivedMessage:
    """A validated inbound message: addresses already normalised."""

    provider: str
    provider_message_id: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: list[str] = field(default_factory=list)
    timestamp: datetime | None = None
    subject: str = ""
    duration: int | None = None  #: a voicemail's length, in seconds


def message_receive(*, account: Account, received: ReceivedMessage) -> tuple[Message, bool]:
    """Store `received` in its conversation; (message, True) when new, (the stored
    one, False) when the provider sent it before. The unique constraint on provider
    and provider id decides, so concurrent duplicates store one message."""
    now = timezone.now()
    encoding, segments = message_segmentation(received.type, received.body)
    message = Message(
        account=account,
        direction=Message.Direction.INBOUND,
        type=received.type,
        from_address=received.from_address,
        to_address=received.to_address,
        subject=received.subject,
        body=received.body,
        attachments=received.attachments,
        encoding=encoding,
        segments=segments,
        timestamp=received.timestamp,
        call={"mode": VOICEMAIL} if received.type == Message.Type.VOICE else {},
        duration=received.duration,
        status=Message.Status.RECEIVED,
        provider=received.provider,
        provider_message_id=received.provider_message_id,
        created_at=now,
        updated_at=now,
    )
    if not message_store_once(message=message, contact_address=received.from_address):
        existing = Message.objects.get(provider=received.provider, provider_message_id=received.provider_message_id)
        if existing.type == Message.Type.VOICE:
            # A voicemail is told by two callbacks (its recording, its transcription), in
            # either order: the second completes the message the first stored.
            voicemail_complete(
                message=existing, body=received.body, duration=received.duration, attachments=received.attachments
            )
        return existing, False
    metrics.message_status(direction=message.direction, channel=message.type, status=message.status)
    metrics.message_segments(
        account_id=account.pk, direction=message.direction, channel=message.type, count=message.segments
    )
    if message.type == Message.Type.VOICE:
        voicemail_recording_copy_later(message=message)
    return message, True
