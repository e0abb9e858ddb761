from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webhooks.deliveries import deliveries_replay_failed
from webhooks.models import WebhookEndpoint


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"not an ISO-8601 time: {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = (
        "Post again every event delivery that failed at or after --since (to one endpoint, or to all), "
        "with a fresh retry schedule and the same webhook-id."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_when, required=True, help="failed at or after this ISO-8601 time")
        parser.add_argument("--endpoint", type=int, help="only deliveries to this endpoint id")
        parser.add_argument("--dry-run", action="store_true", help="count what would be replayed, change nothing")

    def handle(self, *args, since, endpoint, dry_run, **options):
        target = None
        if endpoint is not None:
            target = WebhookEndpoint.objects.filter(pk=endpoint).first()
            if target is None:
                raise CommandError(f"no webhook endpoint {endpoint}")
        count = deliveries_replay_failed(since=since, endpoint=target, dry_run=dry_run)
        verb = "would replay" if dry_run else "replayed"
        self.stdout.write(self.style.SUCCESS(f"{verb} {count} failed deliveries"))
