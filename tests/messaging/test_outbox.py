"""The outbox relay: what a send stores is published by the relay, in dispatch
batches, once; a broker that refuses loses nothing; the sweep republishes a published
message only when its task is really gone."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conversations.selectors import account_development
from messaging.models import Message
from messaging.services import NewMessage, message_send, messages_sweep, outbox_relay, outbox_run
from tests.factories import MessageFactory


@pytest.fixture
def published(monkeypatch):
    """(task, ids, channel, queue) of every task the relay publishes."""
    tasks = []
    monkeypatch.setattr(
        "messaging.services.outbox.celery_app.send_task",
        lambda name, args, queue: tasks.append((name, list(args[0]), args[1], queue)),
    )
    return tasks


def _send(i: int = 0, kind: str = "sms") -> int:
    to = f"c{i}@example.com" if kind == "email" else f"+1804555{i:04d}"
    sender = "noreply@example.com" if kind == "email" else "+12016661234"
    new = NewMessage(type=kind, from_address=sender, to_address=to, body=f"m{i}")
    return message_send(account=account_development(), new=new).pk


def test_the_relay_publishes_due_messages_in_batches_per_channel_once(db, published, settings):
    settings.MESSAGING_DISPATCH_BATCH_SIZE = 3
    sms = [_send(i) for i in range(7)]
    email = _send(99, "email")
    later = MessageFactory(enqueued_at=None, next_attempt_at=timezone.now() + timedelta(hours=1))

    assert outbox_relay() == 8

    assert sorted((ids, channel, queue) for _, ids, channel, queue in published) == [
        (sms[:3], "sms", "sms"),
        (sms[3:6], "sms", "sms"),
        (sms[6:], "sms", "sms"),
        ([email], "email", "email"),
    ]
    assert {name for name, *_ in published} == {"messaging.tasks.messages_dispatch"}
    assert not Message.objects.filter(pk__in=[*sms, email], enqueued_at__isnull=True).exists()
    assert outbox_relay() == 0  # published once
    assert later.pk not in {pk for _, ids, *_ in published for pk in ids}  # not due yet


def test_a_broker_that_refuses_loses_nothing(db, monkeypatch):
    ids = [_send(i) for i in range(3)]

    def refuse(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("messaging.services.outbox.celery_app.send_task", refuse)
    assert outbox_relay() == 0
    assert Message.objects.filter(pk__in=ids, status="queued", enqueued_at__isnull=True).count() == 3

    sent = []
    monkeypatch.setattr(
        "messaging.services.outbox.celery_app.send_task", lambda name, args, queue: sent.extend(args[0])
    )
    assert outbox_relay() == 3 and sorted(sent) == ids


def test_the_relay_loop_wakes_as_soon_as_a_send_commits(transactional_db, published, settings):
    # On PostgreSQL a NOTIFY wakes it: a poll this slow would miss the deadline below.
    settings.MESSAGING_RELAY_POLL_SECONDS = 10 if connection.vendor == "postgresql" else 0.1
    settings.MESSAGING_RELAY_LINGER_SECONDS = 0
    stop = threading.Event()
    relay = threading.Thread(target=outbox_run, kwargs={"stop": stop})
    relay.start()
    try:
        time.sleep(0.5)  # the relay is waiting
        started = time.monotonic()
        message_id = _send()
        while not published and time.monotonic() - started < 3:
            time.sleep(0.005)
        waited = time.monotonic() - started
    finally:
        stop.set()
        relay.join(5)

    assert [ids for _, ids, *_ in published] == [[message_id]]
    assert waited < 1.0, f"published {waited:.3f} s after the commit"
    assert not relay.is_alive()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL) for concurrent relays")
def test_relays_running_side_by_side_publish_each_message_once(transactional_db, published, settings):
    settings.MESSAGING_DISPATCH_BATCH_SIZE = 10
    ids = [_send(i) for i in range(200)]

    def relay():
        while outbox_relay(limit=15):
            pass
        connection.close()

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    relayed = [pk for _, batch, *_ in published for pk in batch]
    assert sorted(relayed) == ids  # every one, none twice


def test_the_sweep_leaves_published_messages_alone_while_their_queue_holds_tasks(db, empty_queues, settings):
    """With the real broker: a backlog waiting in the queue is not republished (that
    would only grow it); once the queue is empty, what is still queued lost its task."""
    settings.MESSAGING_DISPATCH_BATCH_SIZE = 2
    ids = [_send(i) for i in range(4)]
    assert outbox_relay() == 4  # two tasks now wait in the sms queue
    long_ago = timezone.now() - timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS + 5)
    Message.objects.filter(pk__in=ids).update(enqueued_at=long_ago)

    assert messages_sweep().requeued == 0
    assert Message.objects.filter(pk__in=ids, enqueued_at=long_ago).count() == 4

    from tests.conftest import purge_queues

    purge_queues()  # the broker lost them
    assert messages_sweep().requeued == 4
    assert not Message.objects.filter(pk__in=ids, enqueued_at=long_ago).exists()  # published again
