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


class SandboxCall(models.Model):
    """A call the sandbox placed (Twilio's Calls API) or simulated coming in to one of our
    numbers, and how it went: what reached "the provider", and what the callee heard."""

    label = models.CharField(max_length=32)
    sid = models.CharField(max_length=64, unique=True)
    direction = models.CharField(max_length=16, default="outbound-api", help_text="outbound-api or inbound")
    reference = models.CharField(max_length=64, blank=True, help_text="Our message id, from the StatusCallback.")
    to_address = models.CharField(max_length=254)
    from_address = models.CharField(max_length=254)
    twiml = models.TextField(blank=True, help_text="The TwiML given inline (Twiml), if any.")
    url = models.URLField(max_length=2048, blank=True, help_text="The URL asked for TwiML once answered (Url).")
    machine_detection = models.CharField(max_length=32, blank=True)
    status_callback = models.URLField(max_length=2048, blank=True)
    status_callback_events = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, default="queued")
    answered_by = models.CharField(max_length=32, blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True)
    played = models.TextField(blank=True, help_text="The TwiML the call ran once answered.")
    speech = models.TextField(blank=True, help_text="Inbound: what the caller says on the voicemail.")
    recording_sid = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    callbacks_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When the call is to run; empty once it ran."
    )
    callback_tries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["label", "to_address"], name="sandbox_call_to"),
            models.Index(fields=["recording_sid"], name="sandbox_call_recording"),
            models.Index(
                fields=["callbacks_due_at"],
                name="sandbox_call_due",
                condition=models.Q(callbacks_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.sid} {self.from_address} → {self.to_address}"
