import signal
import threading

from django.core.management.base import BaseCommand

from messaging.services import outbox_relay, outbox_run


class Command(BaseCommand):
    help = (
        "Run the outbox relay in the foreground: publish queued messages to the broker in dispatch batches as "
        "they are stored (every worker already runs one unless MESSAGING_RELAY=false). With --once, publish "
        "what is due now and exit."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="publish what is due now, then exit")

    def handle(self, *args, once: bool, **options):
        if once:
            self.stdout.write(self.style.SUCCESS(f"published {outbox_relay()} message(s)"))
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("relaying; Ctrl-C stops")
        outbox_run(stop=stop)
