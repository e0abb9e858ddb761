from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from conversations.addresses import normalize_email, normalize_phone
from conversations.models import SenderKind
from conversations.services import account_create


def sender_address(value: str) -> str:
    """A sender as stored: E.164, a lower-cased email, or a lower-cased @domain."""
    value = value.strip()
    if value.startswith("@") and "." in value and " " not in value:
        return value.lower()
    return normalize_phone(value) if value.startswith("+") else normalize_email(value)


class Command(BaseCommand):
    help = "Create an account (or add senders to it): the numbers, addresses and @domains it sends from."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--sender",
            action="append",
            default=[],
            metavar="ADDRESS",
            help="+E164 number, email address or @domain; repeat for several",
        )
        parser.add_argument(
            "--kind",
            choices=SenderKind.values,
            default="",
            help="what these senders are to the carriers (default: inferred from each address)",
        )
        parser.add_argument(
            "--throughput",
            type=float,
            default=None,
            metavar="PER_SECOND",
            help="messages (or segments, PACING_UNIT) a second for these senders (default: their kind's)",
        )

    def handle(self, *args, name: str, sender: list[str], kind: str, throughput: float | None, **options):
        if throughput is not None and throughput < 0.01:
            raise CommandError("--throughput must be at least 0.01 a second")
        try:
            senders = [sender_address(s) for s in sender]
        except ValidationError as exc:
            raise CommandError(f"bad sender: {exc.messages[0]}") from None
        try:
            account = account_create(name=name, senders=senders, kind=kind, throughput=throughput)
        except IntegrityError as exc:
            raise CommandError(str(exc)) from None
        owned = ", ".join(account.senders.values_list("address", flat=True)) or "none"
        self.stdout.write(f"account {account.pk} {account.name}: senders {owned}")
