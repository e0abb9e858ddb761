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
