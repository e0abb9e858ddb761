from django.core.management.base import BaseCommand
from django.db.models import Count, Min
from django.utils import timezone

from messaging.models import Message
from messaging.services import messages_sweep


class Command(BaseCommand):
    help = (
        "Run the sweep now, as beat does every few seconds: take back the messages whose worker's lease ran "
        "out, publish again those whose task the broker lost, and relay any that no relay published. With "
        "--status, only report what is waiting."
    )

    def add_arguments(self, parser):
        parser.add_argument("--status", action="store_true", help="report queued and sending messages; change nothing")

    def handle(self, *args, status: bool, **options):
        now = timezone.now()
        waiting = (
            Message.objects.filter(status__in=[Message.Status.QUEUED, Message.Status.SENDING])
            .values("type", "status")
            .annotate(count=Count("id"), oldest=Min("updated_at"))
            .order_by("type", "status")
        )
        for row in waiting:
            age = (now - row["oldest"]).total_seconds()
            self.stdout.write(f"{row['type']} {row['status']}: {row['count']} (oldest unchanged for {age:.0f} s)")
        expired = Message.objects.filter(status=Message.Status.SENDING, lease_expires_at__lt=now).count()
        self.stdout.write(f"sending with an expired lease: {expired}")
        if status:
            return
        result = messages_sweep()
        self.stdout.write(
            self.style.SUCCESS(
                f"requeued {result.requeued}, recovered {result.recovered} from expired leases, "
                f"published {result.published} unpublished"
            )
        )
