"""What is said and how it travels: messages, their audit trail, and delivery attempts."""

from django.db import models
from django.db.models import Q

from conversations.models import Account, Conversation
from messaging.segments import GSM7, UCS2
from providers.base import AnsweredBy


class FailureReason(models.TextChoices):
    """Why a message is a dead letter."""

    PERMANENT = "permanent"  #: the provider refused it for good
    EXHAUSTED = "exhausted"  #: every try in the budget failed
    OPTED_OUT = "opted_out"  #: its recipient opted out of its sender before it left
    SUPPRESSED = "suppressed"  #: its email address was suppressed before it left


class Encoding(models.TextChoices):
    """How an SMS or MMS text travels (messaging/segments.py)."""

    GSM7 = GSM7, "GSM-7"  #: the GSM 03.38 default alphabet: 160 characters, 153 a part
    UCS2 = UCS2, "UCS-2"  #: UTF-16: 70 code units, 67 a part


class Message(models.Model):
    """One SMS, MMS, email or voice call (inbound: a voicemail), in either direction. The
    row is also the outbox: the relay publishes a `queued` message whose `enqueued_at` is
    empty (services/outbox.py)."""

    class Direction(models.TextChoices):
        OUTBOUND = "outbound"
        INBOUND = "inbound"

    class Type(models.TextChoices):
        SMS = "sms", "SMS"
        MMS = "mms", "MMS"
        EMAIL = "email", "Email"
        VOICE = "voice", "Voice"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"  #: stored with a `send_at`; released to `queued` when it falls due
        CANCELED = "canceled"  #: a scheduled message canceled before its time: never sent
        QUEUED = "queued"  #: stored, waiting for a worker (also between retries)
        SENDING = "sending"  #: claimed by a worker, provider call in flight
        SENT = "sent"  #: accepted by a provider
        DELIVERED = "delivered"  #: the provider says it reached the recipient
        UNDELIVERED = "undelivered"  #: the provider says it did not reach the recipient
        FAILED = "failed"  #: permanent error or retries exhausted: a dead letter, replayable
        RECEIVED = "received"  #: inbound, stored

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    type = models.CharField(max_length=5, choices=Type.choices)
    from_address = models.CharField(max_length=254)
    to_address = models.CharField(max_length=254)
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    attachments = models.JSONField(default=list, blank=True)
    # SMS/MMS only, fixed when the message is accepted or received (messaging/segments.py):
    # what was billed does not change if the counting rules do. Empty/NULL for email.
    encoding = models.CharField(max_length=5, choices=Encoding.choices, blank=True)
    segments = models.PositiveSmallIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True, help_text="The time the client or provider gave.")
    # A scheduled send's time: the message stays `scheduled` until then (services/scheduling.py).
    send_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    provider = models.CharField(max_length=32, blank=True)
    # NULL, not "", until known: the unique constraint ignores NULLs.
    provider_message_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Tries in the current attempt budget.")
    failure_reason = models.CharField(max_length=12, choices=FailureReason.choices, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    # Dispatch bookkeeping: not before `next_attempt_at`; a task was last published at
    # `enqueued_at` (empty: never published, the relay's to do); a worker owns a
    # `sending` message until `lease_expires_at`; a try
    # whose outcome is unknown sets `needs_reconcile` so the next one asks the provider.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    needs_reconcile = models.BooleanField(default=False)
    # The answer to an SMS keyword (STOP, START, HELP): carriers require it even to a
    # number that just opted out, so consent checks pass it.
    keyword_reply = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Voice only (docs/voice.md): how an outbound call speaks (mode, voice, language,
    # human) or, inbound, what became of the voicemail's recording; the call's or the
    # recording's length; who answered an outbound call.
    call = models.JSONField(default=dict, blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds: the call's, or the voicemail's.")
    answered_by = models.CharField(max_length=8, blank=True, choices=[(v.value, v.value) for v in AnsweredBy])

    class Meta:
        constraints = [
            # The provider id leads, so staff can find a message by it alone (admin search).
            models.UniqueConstraint(
                fields=["provider_message_id", "provider"],
                condition=Q(provider_message_id__isnull=False),
                name="message_provider_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_thread"),
            models.Index(fields=["account", "-id"], name="message_account"),
            # Admin search by a participant's number or address; each address repeats in
            # many rows, which PostgreSQL's B-tree deduplication stores compactly.
            models.Index(fields=["from_address"], name="message_from"),
            models.Index(fields=["to_address"], name="message_to"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="queued"), name="message_queued_due"),
            # The outbox relay's claim: due messages no task was published for yet.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="queued", enqueued_at__isnull=True),
                name="message_outbox",
            ),
            models.Index(fields=["lease_expires_at"], condition=Q(status="sending"), name="message_sending_lease"),
            # The release of scheduled messages takes the earliest due ones: a range scan of
            # this small index, whatever the size of the table.
            models.Index(fields=["send_at"], condition=Q(status="scheduled"), name="message_scheduled_due"),
            models.Index(fields=["failed_at"], condition=Q(status="failed"), name="message_dead_letters"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} {self.from_address} → {self.to_address} ({self.status})"

    @property
    def is_dead_letter(self) -> bool:
        return self.status == self.Status.FAILED


# Forward-only: a status change is applied only if it ranks higher than the current
# one, so duplicate and out-of-order callbacks change nothing.
# `failed` ranks below the provider's final word: if a try we gave up on did reach the
# recipient, the provider's `delivered` is the truth and takes the message out of the
# dead letters.
# `scheduled` ranks below everything, `canceled` above: a canceled message never leaves.
STATUS_RANK = {
    Message.Status.SCHEDULED: -1,
    Message.Status.QUEUED: 0,
    Message.Status.SENDING: 1,
    Message.Status.SENT: 2,
    Message.Status.FAILED: 3,
    Message.Status.DELIVERED: 4,
    Message.Status.UNDELIVERED: 4,
    Message.Status.RECEIVED: 4,
    Message.Status.CANCELED: 5,
}


FINAL_STATUSES = frozenset(
    {Message.Status.DELIVERED, Message.Status.UNDELIVERED, Message.Status.FAILED, Message.Status.CANCELED}
)


def statuses_below(status: str) -> list[str]:
    return [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]


class MessageEvent(models.Model):
    """The audit trail: every status change, webhook and operator action on a message."""

    class Kind(models.TextChoices):
        STATUS = "status"  #: the message moved to `status`
        CALLBACK = "callback"  #: a provider status callback (applied or not)
        RETRY = "retry"  #: a try failed and another is scheduled
        REPLAY = "replay"  #: an operator re-queued a dead letter
        RECONCILE = "reconcile"  #: the provider was asked whether it already had the message

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=12, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["message", "id"], name="event_message")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}".strip()


class DeliveryAttempt(models.Model):
    """One call to a provider to send a message, whatever came of it."""

    class Outcome(models.TextChoices):
        SUCCESS = "success"  #: accepted by the provider
        TRANSIENT = "transient"  #: failed, worth retrying (429, connection refused...)
        PERMANENT = "permanent"  #: refused for good (bad number, 4xx)
        AMBIGUOUS = "ambiguous"  #: may or may not have been sent (timeout, 5xx)
        RECONCILED = "reconciled"  #: found at the provider from an earlier try

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="delivery_attempts")
    provider = models.CharField(max_length=32)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["message", "id"], name="attempt_message")]

    def __str__(self) -> str:
        return f"{self.provider}: {self.outcome}"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` on a POST that creates messages, and the answer it got.

    The row is inserted (and committed) before the request runs, so a concurrent request
    with the same key finds it in flight; the answer is stored in the same transaction
    as the messages it created, so a stored answer always means they exist.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and canonical JSON body")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="empty while in flight")
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    locked_at = models.DateTimeField(help_text="when the request holding the key started")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="idempotency_key_per_account")]

    def __str__(self) -> str:
        return self.key
