"""Storing one message in its conversation: the write that every send and every inbound
webhook makes, so it is made in as few round trips as the database allows.

On PostgreSQL it is one prepared statement: count the message in its conversation (or
make the conversation and, for a new one, find or make the contact behind its other
address), insert the message and its first status event, and wake the outbox relays.
A send's time was mostly round trips (docs/performance.md); this is one, where the
portable path takes six to nine. The statement writes conversations' tables, so by the
house rule it lives here, in the higher app, with their names from the models' `_meta`;
conversations' own `conversation_add_message` is the same logic for other databases
(SQLite), and the suite runs on both.
"""

from functools import cache
from operator import itemgetter

import orjson
from django.db import IntegrityError, connection, models, transaction

from config.db import server_bound_cursor
from conversations.addresses import AddressKind, address_kind, participant_pair
from conversations.models import Contact, ContactAddress, Conversation, OptOut, Suppression
from conversations.selectors import optouts_among, suppressed_among
from conversations.services import ThreadedMessage, conversation_add_message, conversation_link_contact
from messaging.models import FailureReason, Message, MessageEvent
from messaging.services.events import event_new, message_event_wanted, messages_events_record
from messaging.services.outbox import NOTIFY_CHANNEL, outbox_notify


def message_store(*, message: Message, contact_address: str, notify: bool, check_consent: bool = False) -> bool:
    """Insert the unsaved `message` with its first status event, counted in its
    conversation (made if new, with its contact), atomically, with its consumer event
    when the account listens to it; `notify` wakes the outbox relays when it commits.
    Sets `message.pk` and `conversation_id`.

    False, with nothing written, for an inbound message (one with a provider id) that is
    already stored, and, with `check_consent`, for an outbound one its recipient may not
    get: a number opted out of its sender, an email address the account suppressed.
    Two inbound copies racing each other can also end in IntegrityError for the second;
    the caller treats both alike.
    """
    if message_event_wanted(account_id=message.account_id, status=message.status):
        # Its consumer event (message.queued, .received, .scheduled) commits with it.
        with transaction.atomic():
            stored = _store(message, contact_address, notify, check_consent)
            if stored:
                messages_events_record(messages=[message])
        return stored
    return _store(message, contact_address, notify, check_consent)


def _store(message: Message, contact_address: str, notify: bool, check_consent: bool) -> bool:
    if connection.vendor == "postgresql":
        return _store_in_one_statement(message, contact_address, notify, check_consent)
    return _store_portable(message, contact_address, notify, check_consent)


def _threaded(message: Message, contact_address: str) -> ThreadedMessage:
    return ThreadedMessage(
        account_id=message.account_id,
        from_address=message.from_address,
        to_address=message.to_address,
        contact_address=contact_address,
        direction=message.direction,
        type=message.type,
        preview=message.body,
        at=message.created_at,
    )


def _store_portable(message: Message, contact_address: str, notify: bool, check_consent: bool) -> bool:
    with transaction.atomic():
        if check_consent and message_consent_refusal(message) is not None:
            return False
        message.conversation_id = conversation_add_message(message=_threaded(message, contact_address))
        message.save(force_insert=True)
        event_new(message.pk, MessageEvent.Kind.STATUS, message.status, at=message.created_at).save(force_insert=True)
        if notify:
            outbox_notify()
    return True


# The statement, in order: `bumped` counts the message in an existing conversation.
# Only when there is none does the rest make one: `found` is the contact that already
# has the other address, `made`/`linked` a new (automatic) contact for it, and `created`
# inserts the conversation pointing at that contact (its ON CONFLICT settles two first
# messages racing: one conversation, counted twice). `found` reads the address's row FOR
# SHARE, and only for a new conversation (a reply locks nothing): a contact taking,
# merging or deleting that address (conversations/services/contacts.py) changes the row
# first, so either it waits for this conversation and then moves it, or this waits and
# reads the row's new contact; read unlocked, the conversation could point at a contact
# deleted meanwhile, and the send would fail on the foreign key. Ids come from the sequence only for rows
# really inserted, so the first conversations are 1, 2, ... as the assignment expects.
# `fresh` is the guard: an inbound message whose provider id is already stored, or an
# outbound one to a number opted out of its sender (or a suppressed email address),
# makes every part a no-op, and the statement returns no row. Each check is one probe
# of a unique index, so consent costs a send no round trip of its own.
_STATEMENT = """
WITH fresh AS (
    SELECT NOT EXISTS (
        SELECT 1 FROM {message} WHERE %(provider_id)s::text IS NOT NULL
        AND provider_message_id = %(provider_id)s AND provider = %(provider)s
    ) AND NOT EXISTS (
        SELECT 1 FROM {optout} WHERE %(check_optout)s
        AND account_id = %(account)s AND sender = %(m_from_address)s AND address = %(m_to_address)s
    ) AND NOT EXISTS (
        SELECT 1 FROM {suppression} WHERE %(check_suppression)s
        AND account_id = %(account)s AND address = %(m_to_address)s
    ) AS ok
), bumped AS (
    UPDATE {conversation} SET
        message_count = message_count + 1, last_message_at = %(at)s, last_message_preview = %(preview)s,
        last_message_direction = %(direction)s, last_message_type = %(type)s
    WHERE account_id = %(account)s AND participant_a = %(a)s AND participant_b = %(b)s AND (SELECT ok FROM fresh)
    RETURNING id
), found AS (
    SELECT contact_id FROM {address}
    WHERE account_id = %(account)s AND address = %(contact)s AND NOT EXISTS (SELECT 1 FROM bumped)
    FOR SHARE
), made AS (
    INSERT INTO {contact} (account_id, name, automatic, created_at)
    SELECT %(account)s, '', true, %(at)s
    WHERE (SELECT ok FROM fresh) AND NOT EXISTS (SELECT 1 FROM bumped) AND NOT EXISTS (SELECT 1 FROM found)
    RETURNING id
), linked AS (
    INSERT INTO {address} (account_id, contact_id, address) SELECT %(account)s, id, %(contact)s FROM made
    ON CONFLICT (account_id, address) DO NOTHING
    RETURNING contact_id
), created AS (
    INSERT INTO {conversation} (
        account_id, channel, participant_a, participant_b, message_count, last_message_at,
        last_message_preview, last_message_direction, last_message_type, created_at, contact_id
    )
    SELECT %(account)s, %(channel)s, %(a)s, %(b)s, 1, %(at)s, %(preview)s, %(direction)s, %(type)s, %(at)s,
        COALESCE((SELECT contact_id FROM found), (SELECT contact_id FROM linked))
    WHERE (SELECT ok FROM fresh) AND NOT EXISTS (SELECT 1 FROM bumped)
    ON CONFLICT (account_id, participant_a, participant_b) DO UPDATE SET
        message_count = {conversation}.message_count + 1,
        last_message_at = excluded.last_message_at,
        last_message_preview = excluded.last_message_preview,
        last_message_direction = excluded.last_message_direction,
        last_message_type = excluded.last_message_type
    RETURNING id
), thread AS (
    SELECT id FROM bumped UNION ALL SELECT id FROM created
), inserted AS (
    INSERT INTO {message} ({columns}) SELECT {values} FROM thread RETURNING id, conversation_id
), event AS (
    INSERT INTO {event} (message_id, kind, status, detail, created_at)
    SELECT id, %(event_kind)s, %(event_status)s, %(event_detail)s, %(at)s FROM inserted
)
SELECT inserted.id, inserted.conversation_id, (SELECT id FROM made), (SELECT contact_id FROM linked), {notify}
FROM inserted
"""


@cache
def _message_fields() -> list:
    return [f for f in Message._meta.concrete_fields if not f.primary_key and f.attname != "conversation_id"]


@cache
def _statement() -> str:
    quote = connection.ops.quote_name
    fields = _message_fields()
    return _STATEMENT.format(
        message=quote(Message._meta.db_table),
        event=quote(MessageEvent._meta.db_table),
        conversation=quote(Conversation._meta.db_table),
        contact=quote(Contact._meta.db_table),
        address=quote(ContactAddress._meta.db_table),
        optout=quote(OptOut._meta.db_table),
        suppression=quote(Suppression._meta.db_table),
        columns=", ".join(quote(f.column) for f in [Message._meta.get_field("conversation"), *fields]),
        # Typed, so that a NULL or a string parameter is taken as its column's type.
        values=", ".join(["thread.id", *(f"%(m_{f.attname})s::{f.db_type(connection)}" for f in fields)]),
        # Delivered when the transaction commits; the cast keeps the row's shape fixed.
        notify=f"CASE WHEN %(notify)s THEN pg_notify('{NOTIFY_CHANNEL}', '') IS NULL END",
    )


_DETAIL = MessageEvent._meta.get_field("detail")


def _params(message: Message, contact_address: str, notify: bool, check_consent: bool) -> dict:
    a, b = participant_pair(message.from_address, message.to_address)
    email = message.type == Message.Type.EMAIL
    channel = Conversation.Channel.PHONE if address_kind(a) is AddressKind.PHONE else Conversation.Channel.EMAIL
    params = {
        "provider_id": message.provider_message_id,
        "provider": message.provider,
        "at": message.created_at,
        "preview": message.body[:160],
        "direction": message.direction,
        "type": message.type,
        "account": message.account_id,
        "a": a,
        "b": b,
        "channel": channel,
        "contact": contact_address,
        "event_kind": MessageEvent.Kind.STATUS,
        "event_status": message.status,
        "event_detail": _DETAIL.get_db_prep_save({}, connection),
        "notify": notify,
        "check_optout": check_consent and not email,
        "check_suppression": check_consent and email,
    }
    for f in _message_fields():
        params[f"m_{f.attname}"] = f.get_db_prep_save(f.pre_save(message, True), connection)
    return params


def _store_in_one_statement(message: Message, contact_address: str, notify: bool, check_consent: bool) -> bool:
    params = _params(message, contact_address, notify, check_consent)
    # Bound on the server, so psycopg prepares the statement after a few uses on each
    # connection: PostgreSQL then plans it once instead of at every send.
    with server_bound_cursor() as cursor:
        cursor.execute(_statement(), params)
        row = cursor.fetchone()
    if row is None:
        return False
    message.pk, message.conversation_id, made, linked, _ = row
    message._state.adding = False
    if made is not None and linked is None:
        # Another transaction linked the address first (not visible to this statement):
        # point the new conversation at its contact, and drop the one made here.
        conversation_link_contact(
            conversation_id=message.conversation_id,
            account_id=message.account_id,
            address=contact_address,
            discard_contact_id=made,
        )
    return True


def message_store_once(*, message: Message, contact_address: str) -> bool:
    """`message_store` for an inbound message, with the race of two copies settled too:
    False when a copy is already stored (the caller looks it up). A savepoint only when
    the caller holds a transaction: alone, the statement is its own transaction."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return message_store(message=message, contact_address=contact_address, notify=False)
        return message_store(message=message, contact_address=contact_address, notify=False)
    except IntegrityError:
        if Message.objects.filter(provider=message.provider, provider_message_id=message.provider_message_id).exists():
            return False
        raise


def message_consent_refusal(message: Message) -> str | None:
    """Why the outbound `message`'s recipient may not get it now (a FailureReason:
    opted_out, suppressed), or None."""
    return messages_consent_refusals([message]).get(message.pk or 0)


def messages_consent_refusals(messages: list[Message]) -> dict[int, str]:
    """For outbound messages, {id: why its recipient may not get it} (ids of unsaved
    messages count as 0), in at most two queries. Keyword replies are exempt."""
    messages = [m for m in messages if not m.keyword_reply]
    phones = {(m.account_id, m.from_address, m.to_address) for m in messages if m.type != Message.Type.EMAIL}
    emails = {(m.account_id, m.to_address) for m in messages if m.type == Message.Type.EMAIL}
    opted_out, suppressed = optouts_among(triples=phones), suppressed_among(pairs=emails)
    refusals = {}
    for m in messages:
        if m.type == Message.Type.EMAIL and (m.account_id, m.to_address) in suppressed:
            refusals[m.pk or 0] = FailureReason.SUPPRESSED
        elif m.type != Message.Type.EMAIL and (m.account_id, m.from_address, m.to_address) in opted_out:
            refusals[m.pk or 0] = FailureReason.OPTED_OUT
    return refusals


def messages_store_many(*, rows: list[dict]) -> list[int]:
    """Insert outbound messages, each a dict of Message fields by attname (with its
    `conversation_id`; the others take the model's defaults), with the first status event
    of each; their ids, in order. Call inside the transaction that counts them in their
    conversations (conversations_add_messages) and wakes the relays.

    On PostgreSQL the rows are streamed with COPY under ids taken from the sequence first:
    a batch's insert was mostly Python quoting every value of a multi-row INSERT; COPY
    sends them as they are, in one round trip per table."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        return _copy_many(rows)
    messages = Message.objects.bulk_create([Message(**row) for row in rows])
    MessageEvent.objects.bulk_create(
        [event_new(m.pk, MessageEvent.Kind.STATUS, m.status, at=m.created_at) for m in messages]
    )
    return [m.pk for m in messages]


@cache
def _copy_layout(given: frozenset[str]) -> tuple[itemgetter, tuple, tuple[int, ...], str]:
    """How rows that give the Message fields `given` are copied: what reads those from a
    row, the others' defaults in their database form, where the JSON ones sit among the
    given, and the COPY statement (the id, the given fields, the defaulted ones)."""
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    if unknown := given - {f.attname for f in fields}:
        raise TypeError(f"not fields of a message: {', '.join(sorted(unknown))}")
    named = [f for f in fields if f.attname in given]
    defaulted = [f for f in fields if f.attname not in given]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in [Message._meta.pk, *named, *defaulted])
    return (
        itemgetter(*(f.attname for f in named)),
        tuple(f.get_db_prep_save(f.get_default(), connection) for f in defaulted),
        tuple(i for i, f in enumerate(named) if isinstance(f, models.JSONField)),
        f"COPY {quote(Message._meta.db_table)} ({columns}) FROM STDIN",
    )


@cache
def _copy_events() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("message_id", "kind", "status", "detail", "created_at"))
    return f"COPY {quote(MessageEvent._meta.db_table)} ({columns}) FROM STDIN"


def _copy_many(rows: list[dict]) -> list[int]:
    given = rows[0].keys()
    read, defaults, json, copy_messages = _copy_layout(frozenset(given))
    detail = orjson.dumps({}).decode()
    with connection.cursor() as cursor:
        # Ascending as the sequence hands them out, so ids follow the batch's order.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s) ORDER BY 1",
            [Message._meta.db_table, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        raw = cursor.cursor
        with raw.copy(copy_messages) as copy:
            for pk, row in zip(ids, rows, strict=True):
                if row.keys() != given:
                    raise TypeError("every row of a batch gives the same fields")
                values = list(read(row))
                for position in json:
                    values[position] = orjson.dumps(values[position]).decode()
                copy.write_row((pk, *values, *defaults))
        with raw.copy(_copy_events()) as copy:
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row((pk, MessageEvent.Kind.STATUS.value, row["status"], detail, row["created_at"]))
    return ids
