from django.conf import settings
from rest_framework import serializers

from messaging.fields import (
    AttachmentsField,
    EmailAddressField,
    FromFieldMixin,
    PhoneField,
    StringField,
    check_email_message,
    check_phone_message,
)
from messaging.serializers import EMAIL_MAX_BODY
from messaging.services import ReceivedMessage

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
