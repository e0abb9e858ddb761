"""Fast fixtures for `make bench`, run in the benchmark's environment.

    python bench/seed.py history --account bench --sender +12025550123 --prefix +1312555 \
        --conversations 10000 --per-conversation 100 --ids-out var/bench/ids.txt
    python bench/seed.py queued --account bench --sender +12025550123 --count 3000
    python bench/seed.py scheduled --account bench --sender +12025550123 --count 100000 \
        --send-at 2026-12-07T15:00:00+00:00

`history` stores finished conversations (alternating delivered outbound and received
inbound messages, one event each) with COPY; `queued` stores outbound messages waiting
for a worker, unpublished, for the worker's outbox relay to publish (as after a broker outage);
`scheduled` stores outbound messages all scheduled for one time, for beat's release.

Rows are built from the models' own fields and defaults, so a new column with a default
needs no change here.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, models  # noqa: E402
from django.db.models import NOT_PROVIDED  # noqa: E402

from conversations.models import Account, Conversation  # noqa: E402
from messaging.models import Message, MessageEvent  # noqa: E402

NOW = datetime.now(UTC)


class Table:
    """COPY rows into a model's table: every concrete column, defaults prepared once."""

    def __init__(self, model: type[models.Model], *, with_ids: bool = True):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
        self.columns = [f.column for f in self.fields]
        self.defaults = {f.attname: self._default(f) for f in self.fields}

    def _default(self, field: models.Field):
        if field.primary_key or field.is_relation:
            return None  # rows always give these
        if field.default is not NOT_PROVIDED:
            value = field.get_default()
        elif field.null:
            value = None
        elif isinstance(field, models.CharField | models.TextField):
            value = ""
        elif isinstance(field, models.DateTimeField):
            value = NOW
        elif isinstance(field, models.BooleanField):
            value = False
        elif isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
            value = 0
        elif isinstance(field, models.JSONField):
            value = {}
        else:
            raise SystemExit(f"seed: no default for {self.model.__name__}.{field.name}; add one here")
        return field.get_db_prep_save(value, connection)

    def prepared(self, **values) -> list:
        row = []
        for field in self.fields:
            if field.attname in values:
                value = values[field.attname]
                if isinstance(field, models.JSONField):
                    value = field.get_db_prep_save(value, connection)
                row.append(value)
            else:
                row.append(self.defaults[field.attname])
        return row

    def copy(self, rows) -> int:
        count = 0
        with connection.cursor() as cursor:
            raw = cursor.cursor
            columns = ", ".join(f'"{c}"' for c in self.columns)
            with raw.copy(f'COPY "{self.model._meta.db_table}" ({columns}) FROM STDIN') as copy:
                for values in rows:
                    copy.write_row(self.prepared(**values))
                    count += 1
        return count


def reserve_ids(model: type[models.Model], count: int) -> int:
    """The first of `count` consecutive ids taken from the table's sequence."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
            [table, table, count],
        )
        last = cursor.fetchone()[0]
    return last - count + 1


def history(*, account: Account, sender: str, prefix: str, conversations: int, per_conversation: int) -> list[int]:
    started = time.monotonic()
    first_conversation = reserve_ids(Conversation, conversations)
    first_message = reserve_ids(Message, conversations * per_conversation)
    span = timedelta(days=30)
    step = span / max(conversations * per_conversation, 1)
    contacts = [f"{prefix}{n:04d}" for n in range(conversations)]

    def conversation_rows():
        for n, contact in enumerate(contacts):
            a, b = sorted([sender, contact])
            yield {
                "id": first_conversation + n,
                "account_id": account.pk,
                "channel": Conversation.Channel.PHONE,
                "participant_a": a,
                "participant_b": b,
                "message_count": per_conversation,
                "last_message_at": NOW - timedelta(minutes=n),
                "last_message_preview": "Thanks, see you then",
                "last_message_direction": Message.Direction.INBOUND,
                "last_message_type": Message.Type.SMS,
                "created_at": NOW - span,
            }

    def message_rows():
        for k in range(per_conversation):
            for n, contact in enumerate(contacts):
                message_id = first_message + k * conversations + n
                at = NOW - span + step * (message_id - first_message)
                outbound = k % 2 == 0
                yield {
                    "id": message_id,
                    "account_id": account.pk,
                    "conversation_id": first_conversation + n,
                    "direction": Message.Direction.OUTBOUND if outbound else Message.Direction.INBOUND,
                    "type": Message.Type.SMS,
                    "from_address": sender if outbound else contact,
                    "to_address": contact if outbound else sender,
                    "body": f"Message {k} of a stored conversation, long enough to look like a real text.",
                    "attachments": [],
                    "timestamp": at,
                    "status": Message.Status.DELIVERED if outbound else Message.Status.RECEIVED,
                    "provider": "twilio" if outbound else "messaging_provider",
                    "provider_message_id": f"SMseed{message_id:026d}" if outbound else f"seed-{message_id}",
                    "attempts": 1 if outbound else 0,
                    "created_at": at,
                    "updated_at": at,
                    "sent_at": at if outbound else None,
                    "delivered_at": at if outbound else None,
                }

    def event_rows():
        for k in range(per_conversation):
            outbound = k % 2 == 0
            status = Message.Status.DELIVERED if outbound else Message.Status.RECEIVED
            for n in range(conversations):
                message_id = first_message + k * conversations + n
                at = NOW - span + step * (message_id - first_message)
                yield {"message_id": message_id, "kind": MessageEvent.Kind.STATUS, "status": status, "created_at": at}

    Table(Conversation).copy(conversation_rows())
    count = Table(Message).copy(message_rows())
    Table(MessageEvent, with_ids=False).copy(event_rows())
    with connection.cursor() as cursor:
        for model in (Conversation, Message, MessageEvent):
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')
    print(
        f"seed: {conversations} conversations, {count} messages in {time.monotonic() - started:.1f}s", file=sys.stderr
    )
    return list(range(first_conversation, first_conversation + conversations))


def queued(
    *, account: Account, sender: str, count: int, recipients: int, send_at: datetime | None = None
) -> tuple[int, int]:
    """`count` outbound messages waiting for a worker, in conversations with the pool of
    benchmark recipients, not yet published: a worker's outbox relay publishes them
    (or, with `send_at`, `scheduled` for that time: beat's release queues them).
    Returns the first and last id."""
    contact = f"+1201666{0:04d}"
    a, b = sorted([sender, contact])
    conversation, _ = Conversation.objects.get_or_create(
        account=account,
        participant_a=a,
        participant_b=b,
        defaults={"channel": Conversation.Channel.PHONE, "created_at": NOW},
    )
    first = reserve_ids(Message, count)
    now = datetime.now(UTC)

    def rows():
        for n in range(count):
            yield {
                "id": first + n,
                "account_id": account.pk,
                "conversation_id": conversation.pk,
                "direction": Message.Direction.OUTBOUND,
                "type": Message.Type.SMS,
                "from_address": sender,
                "to_address": f"+1201666{n % recipients:04d}",
                "body": f"Queued benchmark message {n}",
                "attachments": [],
                "status": Message.Status.SCHEDULED if send_at else Message.Status.QUEUED,
                "send_at": send_at,
                "next_attempt_at": send_at or now,
                "enqueued_at": None,
                "created_at": now,
                "updated_at": now,
            }

    Table(Message).copy(rows())
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Message._meta.db_table}"')
    print(f"seed: {count} {'scheduled' if send_at else 'queued'} messages", file=sys.stderr)
    return first, first + count - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("history", "queued", "scheduled"):
        command = sub.add_parser(name)
        command.add_argument("--account", required=True)
        command.add_argument("--sender", required=True)
    history_parser = sub.choices["history"]
    history_parser.add_argument("--prefix", required=True, help="contacts are <prefix>0000, <prefix>0001, ...")
    history_parser.add_argument("--conversations", type=int, required=True)
    history_parser.add_argument("--per-conversation", type=int, required=True)
    history_parser.add_argument("--ids-out", required=True, help="file to write the conversation ids to")
    queued_parser = sub.choices["queued"]
    queued_parser.add_argument("--count", type=int, required=True)
    queued_parser.add_argument("--recipients", type=int, default=10000)
    scheduled_parser = sub.choices["scheduled"]
    scheduled_parser.add_argument("--count", type=int, required=True)
    scheduled_parser.add_argument("--recipients", type=int, default=10000)
    scheduled_parser.add_argument("--send-at", type=datetime.fromisoformat, required=True)
    args = parser.parse_args()

    account = Account.objects.get(name=args.account)
    if args.command == "history":
        ids = history(
            account=account,
            sender=args.sender,
            prefix=args.prefix,
            conversations=args.conversations,
            per_conversation=args.per_conversation,
        )
        Path(args.ids_out).write_text("".join(f"{i}\n" for i in ids))
    else:
        send_at = args.send_at if args.command == "scheduled" else None
        first, last = queued(
            account=account, sender=args.sender, count=args.count, recipients=args.recipients, send_at=send_at
        )
        print(f"{first} {last}")


if __name__ == "__main__":
    main()
