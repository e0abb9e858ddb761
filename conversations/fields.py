"""Serializer fields for strings and addresses, shared by the APIs of every app: an
address is normalised here exactly as threading keys it (conversations/addresses.py)."""

import functools
import re
from collections.abc import Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, MinLengthValidator, ProhibitNullCharactersValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

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


class _Unsure(Exception):
    """The fast path cannot vouch for a value: the serializer itself decides."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _own_validators(field: serializers.Field) -> bool:
    """Whether the field's validators are only those its own limits made (checked by the
    fast path from those limits); any other, and the field validates for itself."""
    for validator in field.validators:
        if isinstance(validator, MaxLengthValidator):
            if validator.limit_value != field.max_length:
                return False
        elif isinstance(validator, MinLengthValidator):
            if validator.limit_value != field.min_length:
                return False
        elif not isinstance(validator, ProhibitNullCharactersValidator | ProhibitSurrogateCharactersValidator):
            return False
    return True


def _string_check(field: serializers.CharField):
    """A string field's own rules (trimmed, blank, length, NUL and surrogates), and an
    address field's normalisation, for a value that meets them."""
    own = (serializers.CharField, StringField, _AddressField)
    if type(field).to_internal_value not in [c.to_internal_value for c in own] or not _own_validators(field):
        return None
    trim, allow_blank = field.trim_whitespace, field.allow_blank
    longest, shortest = field.max_length, field.min_length
    normalize = field.normalize if isinstance(field, _AddressField) else None

    def check(value, memo: dict):
        if type(value) is not str:
            raise _Unsure
        text = value.strip() if trim else value
        if not text:
            if allow_blank:
                return ""
            raise _Unsure
        if (longest is not None and len(text) > longest) or (shortest is not None and len(text) < shortest):
            raise _Unsure
        if "\x00" in text or _SURROGATE.search(text):
            raise _Unsure
        if normalize is None:
            return text
        key = (normalize, text)
        if key not in memo:
            try:
                memo[key] = normalize(text)
            except DjangoValidationError:
                raise _Unsure from None
        return memo[key]

    return check


def _field_check(field: serializers.Field):
    """How one field validates a present, non-null value: its fast check where the field is
    of a kind known here, else the field's own run_validation."""
    if isinstance(field, serializers.CharField) and (check := _string_check(field)) is not None:
        return check
    if type(field).to_internal_value is StrictBooleanField.to_internal_value and not field.validators:

        def check(value, memo: dict):
            if value is True or value is False:
                return value
            raise _Unsure

        return check
    if type(field).to_internal_value is serializers.ChoiceField.to_internal_value and not field.validators:
        choices, allow_blank = field.choice_strings_to_values, field.allow_blank

        def check(value, memo: dict):
            if type(value) is str and (value in choices or (allow_blank and value == "")):
                return choices.get(value, "")
            raise _Unsure

        return check
    if (
        type(field).to_internal_value is serializers.ListField.to_internal_value
        and field.allow_empty
        and field.min_length is None
        and _own_validators(field)
    ):
        slow = field.run_validation

        def check(value, memo: dict):
            return [] if type(value) is list and not value else slow(value)

        return check
    return lambda value, memo: field.run_validation(value)


@functools.cache
def fast_validator(serializer_class: type[serializers.Serializer]) -> Callable[[dict, dict], dict]:
    """fast_validation of the one instance `validated` uses."""
    return fast_validation(_validator(serializer_class))


def fast_validation(serializer: serializers.Serializer) -> Callable[[dict, dict], dict]:
    """`serializer.run_validation` for a dict, compiled once from the serializer's own
    fields: what it returns for a valid payload, several times faster (a batch validates
    up to a thousand). The rules stay the serializer's: each field's limits are read from
    the field, the object-level checks are its `validate`, and any value the fast path is
    not sure of (every invalid one) sends the whole payload through `run_validation`, so
    errors are exactly the serializer's. `memo` (one dict per batch) keeps each address
    normalised once."""
    if serializer.validators or any(hasattr(serializer, f"validate_{name}") for name in serializer.fields):
        return lambda data, memo: serializer.run_validation(data)
    steps = []
    for name, field in serializer.fields.items():
        if field.read_only or field.source == "*" or len(field.source_attrs) != 1:
            return lambda data, memo: serializer.run_validation(data)
        # A missing field without a default is left out, as DRF does (without raising
        # its SkipField for each).
        omitted = field.default is empty
        steps.append((name, field.source_attrs[0], field.required, omitted, field, _field_check(field)))

    def run(data: dict, memo: dict) -> dict:
        try:
            value = {}
            for name, key, required, omitted, field, check in steps:
                raw = data.get(name, empty)
                if raw is empty:
                    if required:
                        raise _Unsure
                    if not omitted:
                        value[key] = field.get_default()
                elif raw is None:
                    value[key] = field.run_validation(raw)
                else:
                    value[key] = check(raw, memo)
            return serializer.validate(value)
        except (_Unsure, serializers.ValidationError, DjangoValidationError):
            return serializer.run_validation(data)

    return run
