"""Every state change of messages. Views and tasks call these; nothing else writes."""

from messaging.services.batch import BatchSent, messages_send_batch
from messaging.services.consent import message_keyword_apply
from messaging.services.dispatch import message_dispatch, messages_dispatch, outbound_for
from messaging.services.idempotency import (
    Claim,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    idempotency_claim,
    idempotency_fingerprint,
    idempotency_finish,
    idempotency_keys_prune,
    idempotency_release,
)
from messaging.services.outbox import outbox_relay, outbox_run
from messaging.services.receiving import ReceivedMessage, message_receive
from messaging.services.recovery import SweepResult, message_replay, messages_sweep
from messaging.services.scheduling import Canceled, message_cancel, messages_release
from messaging.services.sending import ConsentRefused, NewMessage, SenderNotOwned, message_send
from messaging.services.status import message_apply_status, message_for_status
from messaging.services.voice import RecordingNotCopied, voicemail_recording_copy

__all__ = [
    "BatchSent",
    "Canceled",
    "Claim",
    "ConsentRefused",
    "IdempotencyKeyInUse",
    "IdempotencyKeyMismatch",
    "NewMessage",
    "ReceivedMessage",
    "RecordingNotCopied",
    "SenderNotOwned",
    "SweepResult",
    "idempotency_claim",
    "idempotency_fingerprint",
    "idempotency_finish",
    "idempotency_keys_prune",
    "idempotency_release",
    "message_apply_status",
    "message_cancel",
    "message_dispatch",
    "message_for_status",
    "message_keyword_apply",
    "message_receive",
    "message_replay",
    "message_send",
    "messages_dispatch",
    "messages_release",
    "messages_send_batch",
    "messages_sweep",
    "outbound_for",
    "outbox_relay",
    "outbox_run",
    "voicemail_recording_copy",
]
