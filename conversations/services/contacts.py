"""Contacts across channels: who is behind the addresses an account talks to.

A conversation belongs to the contact that holds its other address. Threading links each
new conversation to that contact, making an `automatic` one when no contact holds the
address yet. Here, by hand (API or admin):

- giving a contact an address takes that address's conversations, whenever they began;
  an address held by an automatic contact is taken from it (the automatic contact goes
  once it has no address left), one held by any other contact is refused;
- removing an address unlinks its conversations (threading links the next new one);
- merging moves the other contact's addresses and conversations, then deletes it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from conversations.addresses import AddressKind, address_kind
from conversations.models import Account, Contact, ContactAddress, Conversation, Sender


class ContactError(Exception):
    """A change to contacts that the account's current state refuses."""


@dataclass(frozen=True)
class Holder:
    address: str
    contact_id: int


class AddressTaken(ContactError):
    """Addresses held by other contacts of the account (merge them instead)."""

    def __init__(self, holders: list[Holder]):
        super().__init__(", ".join(f"{h.address} (contact {h.contact_id})" for h in holders))
        self.holders = holders


class AddressIsSender(ContactError):
    """Addresses the account sends from: its own, not a contact's."""

    def __init__(self, addresses: list[str]):
        super().__init__(", ".join(addresses))
        self.addresses = addresses


class ContactGone(ContactError):
    """The contact was deleted while the change was being made."""


class ContactMergeRefused(ContactError):
    """A contact merged into itself, or across accounts."""


def contact_create(*, account: Account, name: str = "", addresses: Iterable[str] = ()) -> Contact:
    """A contact with `addresses` (normalised), which takes their conversations."""

    def write() -> Contact:
        contact = Contact.objects.create(account=account, name=name)
        _addresses_assign(contact, set(addresses))
        return contact

    return _twice(write)


def contact_update(
    *,
    contact: Contact,
    name: str | None = None,
    phone_numbers: Iterable[str] | None = None,
    email_addresses: Iterable[str] | None = None,
) -> Contact:
    """Change what is given: the name, or the whole list of phone numbers or of email
    addresses (normalised). Addresses added take their conversations; addresses dropped
    leave theirs without a contact. The contact is no longer automatic."""

    def write() -> Contact:
        locked = Contact.objects.select_for_update().filter(pk=contact.pk).first()
        if locked is None:
            raise ContactGone(contact.pk)
        current = set(locked.addresses.values_list("address", flat=True))
        kept_kinds = {AddressKind.PHONE} if phone_numbers is None else set()
        kept_kinds |= {AddressKind.EMAIL} if email_addresses is None else set()
        wanted = {a for a in current if address_kind(a) in kept_kinds}
        wanted |= set(phone_numbers or ()) | set(email_addresses or ())
        _addresses_assign(locked, wanted, current=current)
        locked.automatic = False
        if name is not None:
            locked.name = name
        locked.save(update_fields=["name", "automatic"])
        return locked

    return _twice(write)


def _twice(write):
    """`write` in a transaction, and once more if it lost a race with threading (which
    gave one of its addresses an automatic contact meanwhile): the second pass finds that
    contact and takes the address from it."""
    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        with transaction.atomic():
            return write()


def contact_delete(*, contact: Contact) -> None:
    """Delete the contact and its addresses; its conversations and messages stay, with no
    contact until threading links a new conversation of those addresses."""
    with transaction.atomic():
        # Addresses first: that waits for a conversation being linked through one of them
        # (messaging/services/storing.py, threads.py), which the next statement then sees
        # and unlinks.
        ContactAddress.objects.filter(contact_id=contact.pk).delete()
        Conversation.objects.filter(contact_id=contact.pk).update(contact=None)
        Contact.objects.filter(pk=contact.pk).delete()


def contact_merge(*, contact: Contact, other: Contact) -> Contact:
    """Move `other`'s addresses and conversations to `contact` and delete `other`.
    `contact` keeps its name, or takes `other`'s when it has none."""
    if other.pk == contact.pk:
        raise ContactMergeRefused("a contact cannot be merged into itself")
    if other.account_id != contact.account_id:
        raise ContactMergeRefused("contacts of different accounts cannot be merged")
    with transaction.atomic():
        # Both rows locked, in id order, so two opposite merges wait instead of deadlocking.
        locked = {
            c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=[contact.pk, other.pk]).order_by("pk")
        }
        if contact.pk not in locked:
            raise ContactGone(contact.pk)
        if other.pk not in locked:
            raise ContactMergeRefused("no such contact")
        kept, gone = locked[contact.pk], locked[other.pk]
        ContactAddress.objects.filter(contact=gone).update(contact=kept)
        Conversation.objects.filter(contact=gone).update(contact=kept)
        kept.name = kept.name or gone.name
        kept.automatic = False
        kept.save(update_fields=["name", "automatic"])
        gone.delete()
    return kept


def _addresses_assign(contact: Contact, wanted: set[str], *, current: set[str] = frozenset()) -> None:
    """Make `wanted` the contact's addresses, moving conversations with them."""
    added, removed = wanted - current, current - wanted
    senders = sorted(
        Sender.objects.filter(account_id=contact.account_id, address__in=added).values_list("address", flat=True)
    )
    if senders:
        raise AddressIsSender(senders)
    holders = list(
        ContactAddress.objects.select_for_update()
        .filter(account_id=contact.account_id, address__in=added)
        .select_related("contact")
        .order_by("address")
    )
    taken = [Holder(h.address, h.contact_id) for h in holders if not h.contact.automatic]
    if taken:
        raise AddressTaken(taken)

    if removed:
        ContactAddress.objects.filter(contact=contact, address__in=removed).delete()
        _conversations_with(contact.account_id, removed).filter(contact=contact).update(contact=None)
    if holders:
        ContactAddress.objects.filter(pk__in=[h.pk for h in holders]).update(contact=contact)
    claimed = {h.address for h in holders}
    ContactAddress.objects.bulk_create(
        [ContactAddress(account_id=contact.account_id, contact=contact, address=a) for a in sorted(added - claimed)]
    )
    if added:
        _conversations_with(contact.account_id, added).update(contact=contact)
    emptied = {h.contact_id for h in holders}
    if emptied:
        Contact.objects.filter(pk__in=emptied, automatic=True, addresses__isnull=True).delete()


def _conversations_with(account_id: int, addresses: set[str]):
    return Conversation.objects.filter(account_id=account_id).filter(
        Q(participant_a__in=addresses) | Q(participant_b__in=addresses)
    )
