"""Threading: each message counted in the conversation of its two addresses (found or
created in one race-safe statement), and a new conversation linked to the contact behind
its other address."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction

from config.db import server_bound_cursor
from conversations.addresses import AddressKind, address_kind, participant_pair
from conversations.models import Contact, ContactAddress, Conversation


@dataclass(frozen=True)
class ThreadedMessage:
    """What a conversation needs to know about a message joining it."""

    account_id: int
    from_address: str
    to_address: str
    contact_address: str
    direction: str
    type: str
    preview: str
    at: datetime


# Count the message in its conversation. The UPDATE finds an existing thread in one
# statement; only a first message runs the INSERT (so ids come without sequence gaps),
# and its ON CONFLICT settles the race of two first messages: one conversation.
# (On PostgreSQL, messaging stores a message with the same logic in one statement:
# messaging/services/storing.py.)
_BUMP_SQL = """
UPDATE conversations_conversation SET
    message_count = message_count + 1,
    last_message_at = %s,
    last_message_preview = %s,
    last_message_direction = %s,
    last_message_type = %s
WHERE account_id = %s AND participant_a = %s AND participant_b = %s
RETURNING id, message_count
"""
_CREATE_SQL = """
INSERT INTO conversations_conversation
    (account_id, channel, participant_a, participant_b, message_count, last_message_at,
     last_message_preview, last_message_direction, last_message_type, created_at)
VALUES (%s, %s, %s, %s, 1, %s, %s, %s, %s, %s)
ON CONFLICT (account_id, participant_a, participant_b) DO UPDATE SET
    message_count = conversations_conversation.message_count + 1,
    last_message_at = excluded.last_message_at,
    last_message_preview = excluded.last_message_preview,
    last_message_direction = excluded.last_message_direction,
    last_message_type = excluded.last_message_type
RETURNING id, message_count
"""


def conversation_add_message(*, message: ThreadedMessage) -> int:
    """The id of the conversation `message` belongs to, creating it if needed and
    counting the message in it. Call inside the transaction that stores the message."""
    a, b = participant_pair(message.from_address, message.to_address)
    kind = address_kind(a)
    channel = Conversation.Channel.PHONE if kind is AddressKind.PHONE else Conversation.Channel.EMAIL
    last = [message.at, message.preview[:160], message.direction, message.type]
    with connection.cursor() as cursor:
        cursor.execute(_BUMP_SQL, [*last, message.account_id, a, b])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_CREATE_SQL, [message.account_id, channel, a, b, *last, message.at])
            row = cursor.fetchone()
    conversation_id, message_count = row
    if message_count == 1:
        conversation_link_contact(
            conversation_id=conversation_id, account_id=message.account_id, address=message.contact_address
        )
    return conversation_id


def conversation_link_contact(
    *, conversation_id: int, account_id: int, address: str, discard_contact_id: int | None = None
) -> None:
    """Point a new conversation at the contact behind its other address (made if there
    is none, marked automatic: services/contacts.py lets a contact made by hand take its
    address). `discard_contact_id`: a contact made for that address by a writer that lost
    the race to link it; it is deleted."""
    with transaction.atomic():
        contact_id = _address_contact(account_id=account_id, address=address)
        if contact_id is None:
            contact = Contact.objects.create(account_id=account_id, automatic=True)
            try:
                with transaction.atomic():
                    ContactAddress.objects.create(account_id=account_id, contact=contact, address=address)
                contact_id = contact.pk
            except IntegrityError:  # another transaction linked this address first
                contact.delete()
                contact_id = _address_contact(account_id=account_id, address=address)
        Conversation.objects.filter(pk=conversation_id).update(contact_id=contact_id)
        if discard_contact_id is not None and discard_contact_id != contact_id:
            Contact.objects.filter(pk=discard_contact_id, account_id=account_id).delete()


def _address_contact(*, account_id: int, address: str) -> int | None:
    # Locked as messaging/services/storing.py's statement reads it FOR SHARE: a contact
    # taking, merging or deleting the address changes this row first.
    return (
        ContactAddress.objects.select_for_update(no_key=True)
        .filter(account_id=account_id, address=address)
        .values_list("contact_id", flat=True)
        .first()
    )


# The same for many conversations at once (a batch send): one upsert. Conflicting rows
# take a sequence value they do not use; batches accept that gap. On PostgreSQL the rows
# travel as one array per column, bound on the server: a statement of fixed text, where
# a multi-row VALUES list of a thousand rows spent its time in the client splitting and
# quoting ten thousand placeholders.
_UPSERT_SET = """
ON CONFLICT (account_id, participant_a, participant_b) DO UPDATE SET
    message_count = conversations_conversation.message_count + excluded.message_count,
    last_message_at = excluded.last_message_at,
    last_message_preview = excluded.last_message_preview,
    last_message_direction = excluded.last_message_direction,
    last_message_type = excluded.last_message_type
RETURNING id, participant_a, participant_b, message_count
"""
_UPSERT_COLUMNS = """
INSERT INTO conversations_conversation
    (account_id, channel, participant_a, participant_b, message_count, last_message_at,
     last_message_preview, last_message_direction, last_message_type, created_at)
"""
_UPSERT_MANY_SQL = _UPSERT_COLUMNS + "VALUES {rows}" + _UPSERT_SET
_UPSERT_ARRAYS_SQL = (
    _UPSERT_COLUMNS
    + """SELECT %s, channel, a, b, n, at, preview, direction, type, at
FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::text[], %s::text[], %s::text[])
    WITH ORDINALITY AS row (channel, a, b, n, at, preview, direction, type, position)
ORDER BY position"""
    + _UPSERT_SET
)
_UPSERT_WIDTH = 10


def conversations_add_messages(*, account_id: int, groups: list[tuple[ThreadedMessage, int]]) -> dict:
    """For each (last message, count) of distinct conversations, what conversation_add_message
    does, in a constant number of statements: {(participant_a, participant_b): id}.
    Groups are taken in pair order, so concurrent batches lock rows in the same order."""
    rows = []
    for message, count in groups:
        a, b = participant_pair(message.from_address, message.to_address)
        channel = Conversation.Channel.PHONE if address_kind(a) is AddressKind.PHONE else Conversation.Channel.EMAIL
        preview = message.preview[:160]
        rows.append(
            (
                (a, b),
                [account_id, channel, a, b, count, message.at, preview, message.direction, message.type, message.at],
                message,
            )
        )
    rows.sort(key=lambda row: row[0])
    counts = {pair: values[4] for pair, values, _ in rows}
    contacts = {pair: message.contact_address for pair, _, message in rows}
    ids, new = {}, {}
    for conversation_id, a, b, message_count in _upsert(account_id, [values for _, values, _ in rows]):
        ids[(a, b)] = conversation_id
        if message_count == counts[(a, b)]:  # a new conversation
            new[conversation_id] = contacts[(a, b)]
    if new:
        _conversations_link_contacts(account_id=account_id, addresses=new)
    return ids


def _upsert(account_id: int, rows: list[list]) -> list[tuple]:
    if connection.vendor == "postgresql":
        columns = [[str(row[i]) for row in rows] for i in (1, 2, 3)]
        columns += [[row[i] for row in rows] for i in (4, 5)]
        columns += [[str(row[i]) for row in rows] for i in (6, 7, 8)]
        with server_bound_cursor() as cursor:
            cursor.execute(_UPSERT_ARRAYS_SQL, [account_id, *columns])
            return cursor.fetchall()
    chunk = max(1, (connection.features.max_query_params or 10_000) // _UPSERT_WIDTH)
    found = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * _UPSERT_WIDTH) + ")"] * len(part))
            cursor.execute(_UPSERT_MANY_SQL.format(rows=placeholders), [v for values in part for v in values])
            found += cursor.fetchall()
    return found


def _conversations_link_contacts(*, account_id: int, addresses: dict[int, str]) -> None:
    """New conversations point at the contacts behind their other addresses, in bulk."""
    wanted = set(addresses.values())
    known = dict(
        ContactAddress.objects.select_for_update(no_key=True)  # as in conversation_link_contact, in one order
        .filter(account_id=account_id, address__in=wanted)
        .order_by("address")
        .values_list("address", "contact_id")
    )
    missing = sorted(wanted - known.keys())
    if missing:
        contacts = Contact.objects.bulk_create([Contact(account_id=account_id, automatic=True) for _ in missing])
        ContactAddress.objects.bulk_create(
            [
                ContactAddress(account_id=account_id, contact=c, address=a)
                for c, a in zip(contacts, missing, strict=True)
            ],
            ignore_conflicts=True,  # another transaction linked the address first: use its contact
        )
        known |= dict(
            ContactAddress.objects.filter(account_id=account_id, address__in=missing).values_list(
                "address", "contact_id"
            )
        )
        orphans = [c.pk for c, a in zip(contacts, missing, strict=True) if known[a] != c.pk]
        if orphans:
            Contact.objects.filter(pk__in=orphans).delete()
    Conversation.objects.bulk_update(
        [Conversation(pk=pk, contact_id=known[address]) for pk, address in addresses.items()], ["contact_id"]
    )
