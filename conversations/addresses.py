"""Address normalisation: the one place that decides when two spellings are one address.

Phone numbers become E.164 (`+12016661234`); email addresses are lower-cased whole. A
conversation is keyed by the sorted pair of normalised addresses, so A->B and B->A, and
SMS and MMS between the same numbers, land in one thread.
"""

from enum import StrEnum

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

_email_validator = EmailValidator()


class AddressKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


def normalize_phone(value: str) -> str:
    """E.164 for a number written in international form (leading `+`), or ValidationError."""
    value = value.strip()
    if not value.startswith("+"):
        raise ValidationError("must be an E.164 phone number starting with + and a country code")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """A lower-cased email address, or ValidationError."""
    value = value.strip().lower()
    _email_validator(value)
    return value


def address_kind(normalized: str) -> AddressKind:
    return AddressKind.PHONE if normalized.startswith("+") else AddressKind.EMAIL


def participant_pair(a: str, b: str) -> tuple[str, str]:
    """The conversation key: the two normalised addresses in a fixed order."""
    return (a, b) if a <= b else (b, a)


def email_domain(normalized_email: str) -> str:
    return "@" + normalized_email.rpartition("@")[2]
