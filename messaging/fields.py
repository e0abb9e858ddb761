"""Serializer fields and checks shared by the send API and the inbound webhooks."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.fields import EmailAddressField, PhoneField, StrictBooleanField, StringField, validated

__all__ = [  # the address and string fields are conversations', re-exported for the send API
    "AttachmentsField",
    "EmailAddressField",
    "FromFieldMixin",
    "PhoneField",
    "StrictBooleanField",
    "StringField",
    "check_email_message",
    "check_phone_message",
    "validated",
]

_url_validator = URLValidator(schemes=["http", "https"])


@extend_schema_field({"type": "string", "format": "uri", "example": "https://example.com/image.jpg"})
class AttachmentUrlField(StringField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2048)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            _url_validator(value)
        except DjangoValidationError:
            raise serializers.ValidationError("must be an http or https URL") from None
        return value


class AttachmentsField(serializers.ListField):
    """A list of http(s) URLs; null means none."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", AttachmentUrlField())
        kwargs.setdefault("max_length", settings.MAX_ATTACHMENTS)
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", list)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data is None:
            return True, []
        return super().validate_empty_values(data)


class FromFieldMixin:
    """`from` is a Python keyword: fields are declared as `from_` and renamed here."""

    def get_fields(self):
        fields = super().get_fields()
        return {("from" if name == "from_" else name): field for name, field in fields.items()}


def check_phone_message(data: dict) -> dict:
    """The rules an SMS or MMS must meet, for sends and inbound alike."""
    errors = {}
    if data["type"] == "sms" and data["attachments"]:
        errors["attachments"] = ["an SMS has no attachments; send it as type mms"]
    if data["type"] == "mms" and not data["attachments"]:
        errors["attachments"] = ["an MMS needs at least one attachment"]
    if data["type"] == "sms" and not data["body"].strip():
        errors["body"] = ["an SMS needs a body"]
    if data["from"] == data["to"]:
        errors["to"] = ["must differ from from"]
    if errors:
        raise serializers.ValidationError(errors)
    return data


def check_email_message(data: dict) -> dict:
    errors = {}
    if not data["body"].strip():
        errors["body"] = ["an email needs a body"]
    if data["from"] == data["to"]:
        errors["to"] = ["must differ from from"]
    if any(c in data.get("subject", "") for c in "\r\n"):
        errors["subject"] = ["must be one line"]
    if errors:
        raise serializers.ValidationError(errors)
    return data
