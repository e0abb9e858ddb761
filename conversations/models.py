"""Who talks to whom: accounts (tenants), their sender addresses and API keys, contacts,
and conversations."""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class Account(models.Model):
    """A customer business: the tenant every conversation and message belongs to."""

    name = models.CharField(max_length=100, unique=True)
    # The built-in development account: in APP_ENV=local it owns every address and acts
    # for requests that carry no API key, so the service works with no setup.
    is_development = models.BooleanField(default=False)
    # What the account's numbers answer to the SMS keywords (conversations/keywords.py);
    # empty: the defaults in settings.CONSENT_REPLIES.
    optout_reply = models.CharField(max_length=320, blank=True, help_text="The answer to STOP and its synonyms.")
    optin_reply = models.CharField(max_length=320, blank=True, help_text="The answer to START, YES and UNSTOP.")
    help_reply = models.CharField(max_length=320, blank=True, help_text="The answer to HELP and INFO.")
    voicemail_greeting = models.TextField(
        blank=True, max_length=1000, help_text="What callers to its numbers hear before the beep (empty: the default)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_development"], condition=Q(is_development=True), name="one_development_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SenderKind(models.TextChoices):
    """What a sender address is to the carriers, which sets how fast it may send
    (settings.PACING_RATES)."""

    LONG_CODE = "long_code"  #: an ordinary 10-digit number: about 1 message a second
    TOLL_FREE = "toll_free"  #: an 8XX number: a few a second (more once verified)
    SHORT_CODE = "short_code"  #: a 5-6 digit code: about 100 a second
    EMAIL = "email"  #: an email address or domain: the provider's own limits, far higher


class Sender(models.Model):
    """An address an account sends from and receives at: an E.164 number, an email
    address, or a whole email domain written `@example.com`."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="senders")
    address = models.CharField(max_length=254, unique=True)
    kind = models.CharField(
        max_length=10, choices=SenderKind.choices, blank=True, help_text="Empty: inferred from the address."
    )
    throughput = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text="Messages (or segments, per PACING_UNIT) a second; empty: the default of its kind.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address


class ApiKey(models.Model):
    """A secret an account's software presents as `Authorization: Bearer <key>`.

    Only a SHA-256 of the key is stored: keys are 256-bit random, so a fast hash is as
    safe as a slow one and keeps authentication to one indexed lookup.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.account})"


class Contact(models.Model):
    """Someone an account talks to, across channels: one contact may have several phone
    numbers and email addresses, and its conversations are those with any of them."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True)
    automatic = models.BooleanField(
        default=False,
        help_text="Made by threading for an address no contact had. A contact created or edited by hand "
        "may take its address (and conversations); editing it makes it an ordinary contact.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or f"Contact {self.pk}"


class ContactAddress(models.Model):
    """A phone number (E.164) or email address (lower-cased) of a contact, normalised as
    sends normalise them; unique within the account."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="addresses")
    address = models.CharField(max_length=254)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "address"], name="contact_address_unique")]

    def __str__(self) -> str:
        return self.address


class Conversation(models.Model):
    """A thread between two addresses within an account, whatever the direction.

    `participant_a` sorts before `participant_b` (normalised, compared by code point in
    Python, not by the database's collation), and the unique constraint on the pair makes
    find-or-create one race-safe upsert. The last-message fields are kept
    here so the list needs no join into messages.
    """

    class Channel(models.TextChoices):
        PHONE = "phone", "SMS/MMS"
        EMAIL = "email", "Email"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    participant_a = models.CharField(max_length=254)
    participant_b = models.CharField(max_length=254)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations")
    message_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=160, blank=True)
    last_message_direction = models.CharField(max_length=8, blank=True)
    last_message_type = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "participant_a", "participant_b"], name="conversation_participants_unique"
            ),
        ]
        indexes = [models.Index(fields=["account", "-last_message_at", "-id"], name="conversation_activity")]

    def __str__(self) -> str:
        return f"{self.participant_a} ↔ {self.participant_b}"

    @property
    def participants(self) -> list[str]:
        return [self.participant_a, self.participant_b]


class OptOut(models.Model):
    """A number that asked one of the account's senders to stop writing (an opt-out
    keyword), or that the account opted out itself: no SMS or MMS from `sender` reaches
    `address` until it opts back in (START) or the opt-out is removed."""

    class Source(models.TextChoices):
        KEYWORD = "keyword"  #: the recipient replied with an opt-out keyword
        API = "api"  #: the account, through the API
        ADMIN = "admin"  #: staff, in the admin

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="opt_outs")
    sender = models.CharField(max_length=254, help_text="The account's number the recipient wrote to.")
    address = models.CharField(max_length=254, help_text="The number that opted out.")
    source = models.CharField(max_length=8, choices=Source.choices)
    keyword = models.CharField(max_length=16, blank=True, help_text="The word it replied, e.g. STOP.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name = "opt-out"
        constraints = [
            # Also the index of the check every SMS send makes.
            models.UniqueConstraint(fields=["account", "sender", "address"], name="optout_once")
        ]

    def __str__(self) -> str:
        return f"{self.address} ✕ {self.sender}"


class Suppression(models.Model):
    """An email address the account must not write to again: it bounced for good, was
    invalid, reported spam or unsubscribed (provider events), or the account said so."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce"  #: a hard bounce
        INVALID = "invalid"  #: the provider found the address invalid
        SPAM_REPORT = "spam_report"  #: the recipient reported a message as spam
        UNSUBSCRIBE = "unsubscribe"  #: the recipient unsubscribed
        MANUAL = "manual"  #: the account (API) or staff (admin) added it

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="suppressions")
    address = models.CharField(max_length=254)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.JSONField(default=dict, blank=True, help_text="The provider event that caused it, if any.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Also the index of the check every email send makes.
            models.UniqueConstraint(fields=["account", "address"], name="suppression_once")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"
