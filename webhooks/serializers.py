from django.conf import settings
from rest_framework import serializers

from config.events import EventType
from messaging.fields import (
    AttachmentsField,
    EmailAddressField,
    FromFieldMixin,
    PhoneField,
    StrictBooleanField,
    StringField,
    check_email_message,
    check_phone_message,
)
from messaging.serializers import EMAIL_MAX_BODY
from messaging.services import ReceivedMessage
from webhooks.models import Delivery, WebhookEndpoint

SMS_PROVIDER = "messaging_provider"
EMAIL_PROVIDER = "xillio"


class SmsWebhookSerializer(FromFieldMixin, serializers.Serializer):
    from_ = PhoneField()
    to = PhoneField(help_text="One of an account's numbers: it decides the account.")
    type = serializers.ChoiceField(choices=["sms", "mms"], default="sms")
    messaging_provider_id = StringField(max_length=255, help_text="The provider's message id (dedupe key).")
    body = StringField(max_length=settings.SMS_MAX_BODY, allow_blank=True, trim_whitespace=False, default="")
    attachments = AttachmentsField()
    timestamp = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, data):
        return check_phone_message(data)

    @staticmethod
    def received(data: dict) -> ReceivedMessage:
        """The inbound message `data` (as validated) describes."""
        return ReceivedMessage(
            provider=SMS_PROVIDER,
            provider_message_id=data["messaging_provider_id"],
            type=data["type"],
            from_address=data["from"],
            to_address=data["to"],
            body=data["body"],
            attachments=data["attachments"],
            timestamp=data.get("timestamp"),
        )


class EmailWebhookSerializer(FromFieldMixin, serializers.Serializer):
    from_ = EmailAddressField()
    to = EmailAddressField(help_text="An address (or domain) of an account: it decides the account.")
    xillio_id = StringField(max_length=255, help_text="The provider's message id (dedupe key).")
    subject = StringField(max_length=998, allow_blank=True, default="")
    body = StringField(max_length=EMAIL_MAX_BODY, trim_whitespace=False)
    attachments = AttachmentsField()
    timestamp = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, data):
        return check_email_message(data)

    @staticmethod
    def received(data: dict) -> ReceivedMessage:
        """The inbound message `data` (as validated) describes."""
        return ReceivedMessage(
            provider=EMAIL_PROVIDER,
            provider_message_id=data["xillio_id"],
            type="email",
            from_address=data["from"],
            to_address=data["to"],
            body=data["body"],
            attachments=data["attachments"],
            timestamp=data.get("timestamp"),
            subject=data["subject"],
        )


class WebhookAckSerializer(serializers.Serializer):
    status = serializers.CharField()
    detail = serializers.CharField(required=False)


# --- Consumers' webhook endpoints (docs/webhooks.md) -----------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=[t.value for t in EventType]),
        help_text="The event types it gets; empty: every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "event_types",
            "enabled",
            "description",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "created_at",
            "updated_at",
        ]


class WebhookEndpointSecretSerializer(WebhookEndpointSerializer):
    """The endpoint with its signing secret: shown only when it is made or rotated."""

    secret = serializers.CharField(help_text="whsec_…: verify each delivery with it. Shown only this once.")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret signs too (after a rotation)."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret", "previous_secret_expires_at"]


class WebhookEndpointWriteSerializer(serializers.Serializer):
    url = StringField(max_length=2000, help_text="https (http only in local development).")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=[t.value for t in EventType]),
        required=False,
        default=list,
        max_length=len(EventType),
        help_text="The event types it gets; empty or absent: every type.",
    )
    enabled = StrictBooleanField(required=False, default=True)
    description = StringField(max_length=255, required=False, default="", allow_blank=True)


class WebhookEndpointUpdateSerializer(WebhookEndpointWriteSerializer):
    url = StringField(max_length=2000, required=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=[t.value for t in EventType]), required=False, max_length=len(EventType)
    )
    enabled = StrictBooleanField(required=False)
    description = StringField(max_length=255, required=False, allow_blank=True)


class SecretRotateSerializer(serializers.Serializer):
    overlap_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=7 * 86400,
        help_text="How long the current secret keeps signing beside the new one (default 86400; 0: not at all).",
    )


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.SerializerMethodField()
    event_type = serializers.CharField(source="event.type")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "latency_ms",
            "response_excerpt",
            "error",
            "created_at",
        ]

    def get_event_id(self, delivery: Delivery) -> str:
        return delivery.event.public_id


class ReplayFailedSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Replay the deliveries that failed at or after this time.")


class EventReplaySerializer(serializers.Serializer):
    endpoint_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Only to this endpoint (it gets the event even if it had not)."
    )


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="The deliveries queued again.")
