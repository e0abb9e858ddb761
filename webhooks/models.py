from django.db import models
from django.db.models import Q

from conversations.models import Account
from messaging.models import Message


class WebhookEvent(models.Model):
    """The raw log of every authenticated webhook call and what came of it. For status
    callbacks the provider's event id is unique, so a redelivered event is seen once."""

    class Kind(models.TextChoices):
        INBOUND = "inbound"
        STATUS = "status"

    class Outcome(models.TextChoices):
        PROCESSED = "processed"  #: stored a message / applied a receipt
        DUPLICATE = "duplicate"  #: seen before; nothing changed
        UNROUTED = "unrouted"  #: inbound to an address no account owns: kept here only
        UNMATCHED = "unmatched"  #: a receipt for a message we do not know

    provider = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    event_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULLs escape the unique constraint)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    signed = models.BooleanField(help_text="The signature was present and verified.")
    payload = models.TextField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "kind", "event_id"], condition=Q(event_id__isnull=False), name="webhook_event_once"
            )
        ]
        indexes = [models.Index(fields=["-received_at"], name="webhook_recent")]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.outcome}"


# --- Outbound: events for our API consumers (docs/webhooks.md) ------------------------


class WebhookEndpoint(models.Model):
    """Where an account wants its events posted, signed with its secret."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list, blank=True, help_text="The event types it gets; empty: all.")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True, default="")
    secret = models.CharField(max_length=100, help_text="whsec_…: signs every delivery.")
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="The first failed try since the last success."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.url

    @property
    def public_id(self) -> str:
        return f"ep_{self.pk}"

    def listens_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Event(models.Model):
    """One change reported to the account's endpoints: the outbox row, written in the
    transaction of the change it reports; `fanned_out_at` is set once its deliveries exist."""

    id = models.UUIDField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40)
    payload = models.JSONField(help_text="The resource as the API shows it, after the change.")
    created_at = models.DateTimeField()
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # What the sweep looks for: events a lost fan-out task left without deliveries.
            models.Index(fields=["created_at"], condition=Q(fanned_out_at__isnull=True), name="event_fan_out_due"),
            # The retention prune: the oldest first.
            models.Index(fields=["created_at"], name="event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"

    @property
    def public_id(self) -> str:
        return f"evt_{self.id.hex}"


DELIVERY_OPEN = ("pending", "delivering", "retrying")


class Delivery(models.Model):
    """One event to one endpoint: its state, and what its last try got back."""

    class Status(models.TextChoices):
        PENDING = "pending"  #: not tried yet
        DELIVERING = "delivering"  #: a worker holds it until next_attempt_at (its lease)
        RETRYING = "retrying"  #: the last try failed; the next is due at next_attempt_at
        SUCCEEDED = "succeeded"  #: the endpoint answered 2xx
        FAILED = "failed"  #: a permanent answer, retries exhausted, or the endpoint disabled

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_endpoint")]
        indexes = [
            # The beat pick-up: open deliveries by when they are due (or their lease ends).
            models.Index(fields=["next_attempt_at"], condition=Q(status__in=DELIVERY_OPEN), name="delivery_due"),
            # An endpoint's delivery log, newest first.
            models.Index(fields=["endpoint", "-id"], name="delivery_log"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"
