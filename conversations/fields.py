"""Serializer fields for strings and addresses, shared by the APIs of every app: an
address is normalised here exactly as threading keys it (conversations/addresses.py)."""

import functools

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.addresses import normalize_email, normalize_phone


class StringField(serializers.CharField):
    """A JSON string and nothing else. DRF's CharField turns a number into its text, so
    `"body": 12345` would be stored as "12345": a client bug we should report, not hide."""

    default_error_messages = {"invalid": "Must be a string, not {kind}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", kind=json_kind(data))
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false and nothing else: DRF's BooleanField also takes "yes", "0" or 1."""

    default_error_messages = {"invalid": "Must be true or false, not {kind}."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", kind=json_kind(data))
        return data


def json_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {list: "an array", dict: "an object", str: "a string"}.get(type(value), type(value).__name__)


class _AddressField(StringField):
    normalize = staticmethod(normalize_phone)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return self.normalize(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


@extend_schema_field({"type": "string", "example": "+12016661234", "description": "E.164 phone number"})
class PhoneField(_AddressField):
    normalize = staticmethod(normalize_phone)


@extend_schema_field(OpenApiTypes.EMAIL)
class EmailAddressField(_AddressField):
    normalize = staticmethod(normalize_email)


@functools.cache
def _validator(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """What `serializer_class(data=data)` validates to, or its ValidationError, from one
    instance per class: a new serializer deep-copies all its fields, a tenth of a send's
    CPU. Validation keeps no state on the instance, so one serves every request."""
    return _validator(serializer_class).run_validation(data)
