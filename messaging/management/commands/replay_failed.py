from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from messaging.models import FailureReason, Message
from messaging.services import message_replay


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"not an ISO-8601 time: {value!r}")
    return parsed


class Command(BaseCommand):
    help = "Re-queue dead letters (failed messages) with a fresh attempt budget; their history stays."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", help="a message id; repeat for several")
        parser.add_argument("--channel", choices=[t.value for t in Message.Type], help="sms, mms, email or voice")
        parser.add_argument("--reason", choices=[r.value for r in FailureReason], help="permanent or exhausted")
        parser.add_argument("--error", help="only messages whose last error contains this text")
        parser.add_argument("--since", type=_when, help="failed at or after this ISO-8601 time")
        parser.add_argument("--until", type=_when, help="failed before this ISO-8601 time")
        parser.add_argument("--limit", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true", help="list what would be replayed, change nothing")

    def handle(self, *args, ids, channel, reason, error, since, until, limit, dry_run, **options):
        failed = Message.objects.filter(status=Message.Status.FAILED).order_by("failed_at", "id")
        if ids:
            failed = failed.filter(pk__in=ids)
        if channel:
            failed = failed.filter(type=channel)
        if reason:
            failed = failed.filter(failure_reason=reason)
        if error:
            failed = failed.filter(last_error__icontains=error)
        if since:
            failed = failed.filter(failed_at__gte=since)
        if until:
            failed = failed.filter(failed_at__lt=until)

        replayed = 0
        for message in failed[:limit]:
            reason = f"{message.failure_reason}: {message.last_error[:80]}"
            line = f"{message.pk} {message.type} to {message.to_address} ({reason})"
            if dry_run:
                self.stdout.write(f"would replay {line}")
            elif message_replay(message=message, actor="replay_failed"):
                replayed += 1
                self.stdout.write(f"replayed {line}")
        verb = "would replay" if dry_run else "replayed"
        count = failed[:limit].count() if dry_run else replayed
        self.stdout.write(self.style.SUCCESS(f"{verb} {count} message(s)"))
