from django.core.management.base import BaseCommand, CommandError

from conversations.models import Account
from conversations.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an account and print it once, as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="the account's name")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, account: str, name: str, **options):
        found = Account.objects.filter(name=account).first()
        if found is None:
            raise CommandError(f"no account named {account!r} (create it with create_account)")
        key, raw_key = api_key_create(account=found, name=name)
        self.stderr.write(f"key {key.prefix}… for {found.name}; it is not shown again. Use it as:")
        self.stdout.write(f"Authorization: Bearer {raw_key}")
