"""Per-sender pacing with real processes: two workers (each with its pool and its relay)
share one long code's schedule, so its messages reach the provider at the configured
rate, while another sender's messages are not held back behind them."""

import time

import pytest
from django.db import connection

from conversations.selectors import account_development
from conversations.services import sender_add
from messaging.models import Message
from messaging.services import NewMessage, message_send
from providers.sandbox.models import SandboxMessage
from tests.e2e.conftest import Worker

pytestmark = pytest.mark.e2e

LONG_CODE, OTHER = "+12016661234", "+12025550000"
RATE, COUNT = 20.0, 300


def _send(sender: str, count: int, tag: str) -> list[int]:
    account = account_development()
    return [
        message_send(
            account=account,
            new=NewMessage(type="sms", from_address=sender, to_address=f"+1804555{n:04d}", body=f"{tag} {n}"),
        ).pk
        for n in range(count)
    ]


def _arrivals(sender: str) -> list[float]:
    """When each of the sender's messages reached the provider (the sandbox), in order."""
    times = SandboxMessage.objects.filter(from_address=sender).order_by("created_at").values_list("created_at")
    return [at.timestamp() for (at,) in times]


def test_one_long_code_leaves_at_its_rate_across_two_workers_and_others_are_not_held(e2e, settings):
    account = account_development()
    sender_add(account=account, address=LONG_CODE, throughput=RATE)
    sender_add(account=account, address=OTHER, throughput=1000)
    # Dispatch only: the sandbox's delivery receipts (its own queue) would take the
    # workers' time from what is measured here, the provider calls.
    workers = [Worker(e2e.url, queues="sms,maintenance", PACING_ENABLED="true").start() for _ in range(2)]
    try:
        paced = _send(LONG_CODE, COUNT, "paced")
        others_sent = time.time()
        others = _send(OTHER, 20, "other")
        deadline = time.monotonic() + COUNT / RATE * 2 + 30
        while len(_arrivals(LONG_CODE)) < COUNT and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()

    long_code, other = _arrivals(LONG_CODE), _arrivals(OTHER)
    assert len(long_code) == COUNT and len(other) == 20
    measured = (COUNT - 1) / (long_code[-1] - long_code[0])
    assert measured == pytest.approx(RATE, rel=0.10), f"{measured:.2f}/s against {RATE}/s"
    # The other sender's messages, sent behind the burst, went out at once, while the
    # long code's were still leaving.
    assert other[-1] - others_sent < 3
    assert long_code[-1] - other[-1] > 5
    # Waiting spent no try: each paced message was sent with its first.
    assert set(Message.objects.filter(pk__in=paced).values_list("attempts", flat=True)) == {1}
    assert Message.objects.filter(pk__in=[*paced, *others], status__in=["queued", "sending"]).count() == 0
    if connection.vendor != "postgresql":
        # SQLite has one writer at a time: this test's own sends hold the workers' claims
        # and returns back by seconds, so arrival order there says nothing of pacing's.
        return
    # Oldest first: each message reached the provider in its turn, give or take the
    # batches two workers claimed side by side (and calls 50 ms apart crossing on the way).
    arrived = SandboxMessage.objects.filter(from_address=LONG_CODE).order_by("created_at")
    order = [int(reference) for reference in arrived.values_list("reference", flat=True)]
    displacement = max(abs(position - sorted(order).index(pk)) for position, pk in enumerate(order))
    assert displacement <= settings.MESSAGING_DISPATCH_BATCH_SIZE
