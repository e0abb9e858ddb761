from django.db import models


class SandboxMessage(models.Model):
    """A message the provider sandbox accepted: the provider's side of the wire, kept so
    tests and operators can count what really reached "the provider"."""

    label = models.CharField(max_length=32, help_text="The sandbox instance, e.g. twilio or sendgrid-backup.")
    format = models.CharField(max_length=16)
    sid = models.CharField(max_length=64, unique=True)
    reference = models.CharField(max_length=64, blank=True, help_text="Our message id, as the client passed it.")
    to_address = models.CharField(max_length=254)
    from_address = models.CharField(max_length=254)
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    media = models.JSONField(default=list, blank=True)
    status_callback = models.URLField(max_length=2048, blank=True)
    status = models.CharField(max_length=16, default="queued")
    created_at = models.DateTimeField(auto_now_add=True)
    callbacks_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When its delivery receipts are to be posted; empty once they were."
    )
    callback_tries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["label", "to_address"]),
            models.Index(fields=["reference"]),
            models.Index(
                fields=["callbacks_due_at"],
                name="sandbox_callbacks_due",
                condition=models.Q(callbacks_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.sid} → {self.to_address}"
