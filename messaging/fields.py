"""Serializer fields and checks shared by the send API and the inbound webhooks."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.fields import (
    EmailAddressField,
    PhoneField,
    StrictBooleanField,
    StringField,
    fast_validator,
    validated,
)

__all__ = [  # the address and string fields are conversations', re-exported for the send API
    "AttachmentsField",
    "EmailAddressField",
    "FromFieldMixin",
    "PhoneField",
    "SendAtField",
    "StrictBooleanField",
    "StringField",
    "check_email_message",
    "check_phone_message",
    "fast_validator",
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


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@extend_schema_field(
    {
        "type": "string",
        "format": "date-time",
        "nullable": True,
        "example": "2026-12-24T09:00:00+01:00",
        "description": "Send later: an ISO-8601 time with its UTC offset (`Z` or `+hh:mm`), from "
        "MESSAGING_SCHEDULE_MIN_SECONDS (1 minute) to MESSAGING_SCHEDULE_MAX_DAYS (35 days) ahead. The message "
        "is stored `scheduled` and released within a few seconds after this time; "
        "POST /api/messages/{id}/cancel cancels it before.",
    }
)
class SendAtField(serializers.Field):
    """A scheduled send's time: an ISO-8601 string with a UTC offset (a time without one
    is ambiguous, so it is refused), inside the allowed window; returned in UTC."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> datetime:
        example = "e.g. 2026-12-24T09:00:00+01:00"
        try:
            value = parse_datetime(data) if isinstance(data, str) else None
        except ValueError:  # well formed, out of range: month 13, hour 25
            value = None
        if value is None:
            raise serializers.ValidationError(f"must be an ISO-8601 date and time with a UTC offset, {example}")
        if value.tzinfo is None:
            raise serializers.ValidationError(f"needs a UTC offset (Z or +hh:mm), {example}")
        now = timezone.now()
        low, high = settings.MESSAGING_SCHEDULE_MIN_SECONDS, settings.MESSAGING_SCHEDULE_MAX_DAYS * 86400
        earliest, latest = now + timedelta(seconds=low), now + timedelta(seconds=high)
        allowed = f"allowed: from {_span(low)} to {_span(high)} ahead, {_iso(earliest)} to {_iso(latest)}"
        if value <= now:
            raise serializers.ValidationError(f"is in the past ({allowed})")
        if value < earliest:
            raise serializers.ValidationError(f"is less than {_span(low)} ahead ({allowed})")
        if value > latest:
            raise serializers.ValidationError(f"is more than {_span(high)} ahead ({allowed})")
        return value.astimezone(UTC)

    def to_representation(self, value: datetime) -> str:
        return _iso(value)


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
