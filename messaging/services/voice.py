"""Voice messages on the message pipeline (docs/voice.md): what a call says, what its
progress means for the message, voicemails completed by a later callback, and their
recordings copied into our own storage.

A voice message is stored, published, claimed, dispatched, retried, reconciled and
replayed as any other message; only these few things are its own.
"""

import logging
import mimetypes

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from messaging.models import Message, MessageEvent
from messaging.services.events import event_new
from providers.base import AnsweredBy, CallMode, CallSpec, HumanAnswer, PermanentError, StatusUpdate, UnsupportedError
from providers.registry import provider_get

logger = logging.getLogger(__name__)

RECORDING_COPY_TASK = "messaging.tasks.voicemail_recording_copy"
#: the error code of a drop that hung up on a person, as its `human` behaviour asked
ANSWERED_BY_HUMAN = "answered_by_human"


class RecordingNotCopied(Exception):
    """The recording cannot be copied, and trying again will not change that."""


def call_spec(message: Message) -> CallSpec:
    """What the adapter sees of a voice message's call: `say` is the body, `play` its
    one attachment, the rest as the client gave it."""
    options = message.call or {}
    attachments = message.attachments or []
    return CallSpec(
        mode=CallMode(options.get("mode", CallMode.CALL)),
        say=message.body,
        play=attachments[0] if attachments else "",
        voice=options.get("voice", ""),
        language=options.get("language", ""),
        human=HumanAnswer(options.get("human", HumanAnswer.SAME)),
        human_say=options.get("human_say", ""),
    )


def call_status(*, call: dict, answered_by: str, update: StatusUpdate) -> tuple[str, str]:
    """The status a call's progress moves its message to, with its error code. As the
    provider says, except for a drop that reached a person and hung up on them (its
    `human` behaviour): that call completed, but the message was not left."""
    answered_by = update.answered_by or answered_by
    if (
        update.status == Message.Status.DELIVERED
        and call.get("mode") == CallMode.VOICEMAIL_DROP
        and call.get("human") == HumanAnswer.HANGUP
        and answered_by == AnsweredBy.HUMAN
    ):
        return Message.Status.UNDELIVERED, ANSWERED_BY_HUMAN
    return update.status, update.error_code


def voicemail_complete(*, message: Message, body: str, duration: int | None, attachments: list[str]) -> bool:
    """Fill in what a voicemail stored by one callback lacked and another brings (the
    transcription comes after the recording, or before it); never overwrite. True when
    something was added."""
    now = timezone.now()
    added = []
    rows = Message.objects.filter(pk=message.pk)
    with transaction.atomic():
        if body and rows.filter(body="").update(body=body, updated_at=now):
            added.append("transcription")
        if duration is not None and rows.filter(duration__isnull=True).update(duration=duration, updated_at=now):
            added.append("duration")
        if attachments and rows.filter(attachments=[]).update(attachments=attachments, updated_at=now):
            added.append("recording")
        if added:
            event_new(message.pk, MessageEvent.Kind.CALLBACK, at=now, provider=message.provider, added=added).save(
                force_insert=True
            )
    if added:
        message.refresh_from_db(fields=["body", "duration", "attachments", "updated_at"])
    return bool(added)


def voicemail_recording_copy_later(*, message: Message) -> None:
    """Have a worker copy a new voicemail's recording (VOICE_RECORDINGS_COPY), once the
    message is committed. A publish that fails loses only the copy: the provider's URL
    stays on the message, and `manage.py copy_recordings` copies what was missed."""
    if not settings.VOICE_RECORDINGS_COPY or not message.attachments:
        return

    def publish() -> None:
        try:
            celery_app.send_task(RECORDING_COPY_TASK, args=[message.pk], queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:
            logger.warning("voicemail %s: cannot publish the recording copy", message.pk, exc_info=True)

    transaction.on_commit(publish)


def voicemail_recording_copy(*, message_id: int) -> str:
    """Copy an inbound voicemail's recording from its provider into the `recordings`
    storage; returns the stored name ("" when the message has no recording). A copied
    recording is not fetched again. The provider's TransientError propagates (try
    later); anything that will not change raises RecordingNotCopied."""
    message = Message.objects.filter(
        pk=message_id, type=Message.Type.VOICE, direction=Message.Direction.INBOUND
    ).first()
    if message is None or not message.attachments:
        return ""
    if stored := (message.call or {}).get("recording_file"):
        return stored
    provider = provider_get(message.provider)
    if provider is None:
        raise RecordingNotCopied(f"provider {message.provider!r} is not configured")
    try:
        recording = provider.recording_fetch(message.attachments[0])
    except (PermanentError, UnsupportedError) as exc:
        raise RecordingNotCopied(str(exc)) from exc
    extension = mimetypes.guess_extension(recording.content_type) or ".wav"
    name = storages["recordings"].save(
        f"voicemail/{message.account_id}/{message.pk}-{message.provider_message_id}{extension}",
        ContentFile(recording.content),
    )
    call = (message.call or {}) | {"recording_file": name, "recording_type": recording.content_type}
    Message.objects.filter(pk=message.pk).update(call=call, updated_at=timezone.now())
    logger.info("voicemail %s: recording copied to %s (%d bytes)", message.pk, name, len(recording.content))
    return name
