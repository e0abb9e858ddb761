"""Address normalisation: the one place that decides when two spellings are one address.

Phone numbers become E.164 (`+12016661234`); email addresses are lower-cased whole. A
conversation is keyed by the sorted pair of normalised addresses, so A->B and B->A, and
SMS and MMS between the same numbers, land in one thread.
"""

import functools
from enum import StrEnum

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from conversations.models import SenderKind

_email_validator = EmailValidator()


class AddressKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


def normalize_phone(value: str) -> str:
    """E.164 for a number written in international form (leading `+`), or ValidationError."""
    value = value.strip()
    if not value.startswith("+"):
        raise ValidationError("must be an E.164 phone number starting with + and a country code")
    return _e164(value)


# Parsing and validating a number against its region's metadata costs about 30 us, a third
# of a batch item's web CPU (docs/performance.md); an account writes to the same numbers
# again and again (its senders on every send, its contacts on every campaign), so the
# answers for the most recent numbers are kept, about 7 MB per process. Only valid
# numbers are kept: an exception is never cached, so a wrong number is refused afresh.
@functools.lru_cache(maxsize=32_768)
def _e164(value: str) -> str:
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


# North American toll-free area codes.
_TOLL_FREE = ("+1800", "+1833", "+1844", "+1855", "+1866", "+1877", "+1888")


def sender_kind_inferred(address: str) -> SenderKind:
    """A SenderKind for an address whose kind was not given: email for an address or
    @domain, short code for 5-6 digits, toll-free for a North American 8XX number, else
    a long code (the strictest: unsure, send slowly)."""
    if "@" in address:
        return SenderKind.EMAIL
    if address.isdigit() and 5 <= len(address) <= 6:
        return SenderKind.SHORT_CODE
    return SenderKind.TOLL_FREE if address.startswith(_TOLL_FREE) else SenderKind.LONG_CODE
