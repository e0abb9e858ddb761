from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from messaging.models import Message
from messaging.services import RecordingNotCopied, voicemail_recording_copy
from providers.base import TransientError


class Command(BaseCommand):
    help = (
        "Copy voicemail recordings that are not in our storage yet from their provider (after turning "
        "VOICE_RECORDINGS_COPY on, or for copies a worker could not make)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", help="a message id; repeat for several")
        parser.add_argument("--days", type=int, default=30, help="voicemails received in the last DAYS days")
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, ids, days, limit, **options):
        voicemails = Message.objects.filter(
            type=Message.Type.VOICE,
            direction=Message.Direction.INBOUND,
            created_at__gte=timezone.now() - timedelta(days=days),
        ).order_by("id")
        if ids:
            voicemails = voicemails.filter(pk__in=ids)
        copied = failed = 0
        for message in voicemails[:limit]:
            if not message.attachments or (message.call or {}).get("recording_file"):
                continue
            try:
                name = voicemail_recording_copy(message_id=message.pk)
            except (RecordingNotCopied, TransientError) as exc:
                failed += 1
                self.stderr.write(f"{message.pk}: not copied: {exc}")
                continue
            copied += 1
            self.stdout.write(f"{message.pk}: {name}")
        style = self.style.SUCCESS if not failed else self.style.WARNING
        self.stdout.write(style(f"copied {copied} recording(s), {failed} not copied"))
