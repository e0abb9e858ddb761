"""Scheduled sends: `send_at` on every send endpoint stores the message `scheduled`; it
is not published before its time, released once when due (by beat's task, in chunks,
whatever runs at once or dies midway), and can be canceled before."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from conversations.services import account_create
from messaging import tasks
from messaging.models import Message, MessageEvent
from messaging.services import messages_dispatch, messages_release, outbox_relay, scheduling
from tests.factories import EMAIL, SMS, VOICE, MessageFactory

pytestmark = pytest.mark.django_db


def _at(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


def _schedule(api, payload=SMS, path="/api/messages/sms", **delta) -> dict:
    response = api.post(path, payload | {"send_at": _at(**delta)}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def _fall_due(*ids: int) -> None:
    """Move the messages' send_at into the past, as time passing would."""
    Message.objects.filter(pk__in=ids).update(send_at=timezone.now() - timedelta(seconds=1))


def _released_events(pk: int) -> list:
    return list(MessageEvent.objects.filter(message_id=pk, status="queued").values_list("detail", flat=True))


@pytest.mark.parametrize(
    ("path", "payload"),
    [("/api/messages/sms", SMS), ("/api/messages/email", EMAIL), ("/api/messages/voice", VOICE)],
)
def test_a_send_with_send_at_is_stored_scheduled(api, path, payload):
    send_at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0).astimezone(timezone.get_fixed_timezone(60))

    response = api.post(path, payload | {"send_at": send_at.isoformat()}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["send_at"] == send_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    message = Message.objects.get(pk=body["id"])
    assert (message.status, message.send_at, message.enqueued_at) == ("scheduled", send_at, None)
    assert list(message.events.values_list("kind", "status")) == [("status", "scheduled")]
    detail = api.get(f"/api/messages/{body['id']}").json()
    assert detail["send_at"] == body["send_at"] and detail["status"] == "scheduled"


def test_a_send_without_send_at_is_queued_with_a_null_send_at(api):
    body = api.post("/api/messages/sms", SMS | {"send_at": None}, format="json").json()

    assert (body["status"], body["send_at"]) == ("queued", None)


def test_a_scheduled_message_is_not_published_or_dispatched_before_its_time(api, published):
    body = _schedule(api, minutes=5)

    assert outbox_relay() == 0
    assert messages_release() == 0
    # A dispatch task naming it anyway (a stray, a replay) finds nothing to claim.
    outcomes = messages_dispatch(message_ids=[body["id"]], message_type="sms")
    assert body["id"] not in outcomes or outcomes[body["id"]] != "sent"
    message = Message.objects.get(pk=body["id"])
    assert (message.status, message.attempts, message.enqueued_at) == ("scheduled", 0, None)
    assert not message.delivery_attempts.exists()
    assert published == []


def test_a_due_message_is_released_once_then_published_by_the_relay(api, published):
    due, later = _schedule(api, minutes=5), _schedule(api, EMAIL, "/api/messages/email", days=2)
    _fall_due(due["id"])

    assert messages_release() == 1
    assert messages_release() == 0  # a second beat finds nothing

    message = Message.objects.get(pk=due["id"])
    assert (message.status, message.enqueued_at) == ("queued", None)
    assert _released_events(due["id"]) == [{"released": True}]
    assert Message.objects.get(pk=later["id"]).status == "scheduled"
    assert outbox_relay() == 1
    assert published == [(due["id"], "sms")]


def test_release_takes_the_earliest_due_first_in_chunks(db):
    now = timezone.now()
    messages = [
        MessageFactory(status="scheduled", send_at=now - timedelta(seconds=s), enqueued_at=None) for s in range(5)
    ]

    assert scheduling.messages_release_chunk(limit=2) == 2
    released = set(Message.objects.filter(status="queued").values_list("pk", flat=True))
    assert released == {messages[4].pk, messages[3].pk}  # the two that fell due first
    assert messages_release(chunk=2) == 3


def test_releases_running_at_once_release_each_message_once(transactional_db):
    past = timezone.now() - timedelta(seconds=1)
    MessageFactory.create_batch(300, status="scheduled", send_at=past, enqueued_at=None)
    start = threading.Barrier(4)
    counts = []

    def release() -> None:
        start.wait()
        try:
            counts.append(messages_release(chunk=7))
        finally:
            connection.close()

    threads = [threading.Thread(target=release) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 300
    assert Message.objects.filter(status="queued").count() == 300
    released = MessageEvent.objects.filter(status="queued").values_list("message_id", flat=True)
    assert len(released) == len(set(released)) == 300


def test_a_release_killed_between_chunks_loses_nothing_and_repeats_nothing(db, monkeypatch):
    past = timezone.now() - timedelta(seconds=1)
    ids = [m.pk for m in MessageFactory.create_batch(25, status="scheduled", send_at=past, enqueued_at=None)]
    chunk = scheduling.messages_release_chunk
    calls = []

    def dies_after_the_first_chunk(**kwargs):
        if calls:
            raise SystemExit("worker killed")
        calls.append(chunk(**kwargs))
        return calls[-1]

    monkeypatch.setattr(scheduling, "messages_release_chunk", dies_after_the_first_chunk)
    with pytest.raises(SystemExit):
        messages_release(chunk=10)
    assert Message.objects.filter(pk__in=ids, status="queued").count() == 10  # the first chunk committed
    assert Message.objects.filter(pk__in=ids, status="scheduled").count() == 15  # the rest wait

    monkeypatch.setattr(scheduling, "messages_release_chunk", chunk)
    assert tasks.messages_release() == 15  # the next beat
    assert Message.objects.filter(pk__in=ids, status="queued").count() == 25
    assert all(len(_released_events(pk)) == 1 for pk in ids)


def test_release_stops_at_its_budget_and_the_next_run_goes_on(db):
    past = timezone.now() - timedelta(seconds=1)
    MessageFactory.create_batch(6, status="scheduled", send_at=past, enqueued_at=None)

    assert messages_release(chunk=2, budget_seconds=0) == 2
    assert messages_release(chunk=2) == 4


def test_beat_releases_every_second_on_the_maintenance_queue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["messages-release"]

    assert entry["task"] == "messaging.tasks.messages_release"
    assert entry["schedule"] <= 1.0
    assert entry["options"]["queue"] == "maintenance"


def test_a_scheduled_message_is_released_within_seconds_of_its_time(api, settings, published):
    settings.MESSAGING_SCHEDULE_MIN_SECONDS = 1
    body = _schedule(api, seconds=2)
    send_at = datetime.fromisoformat(body["send_at"])
    released_at = None
    deadline = time.monotonic() + 10
    while released_at is None and time.monotonic() < deadline:  # beat's ticks, in this process
        if tasks.messages_release():
            released_at = timezone.now()
        else:
            time.sleep(settings.MESSAGING_SCHEDULE_RELEASE_INTERVAL_SECONDS)

    assert released_at is not None
    assert send_at <= released_at <= send_at + timedelta(seconds=3)


def test_cancel_before_release_cancels_and_a_repeat_answers_the_same(api, published):
    body = _schedule(api, hours=1)

    first = api.post(f"/api/messages/{body['id']}/cancel")
    again = api.post(f"/api/messages/{body['id']}/cancel")

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "canceled"
    assert again.json() == first.json()
    _fall_due(body["id"])
    assert messages_release() == 0 and outbox_relay() == 0
    message = Message.objects.get(pk=body["id"])
    assert message.status == "canceled"
    assert list(message.events.values_list("status", flat=True)) == ["scheduled", "canceled"]
    assert published == []


def test_cancel_after_release_is_a_409_and_changes_nothing(api):
    body = _schedule(api, hours=1)
    _fall_due(body["id"])
    messages_release()

    response = api.post(f"/api/messages/{body['id']}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_scheduled"
    assert "queued" in response.json()["error"]["message"]
    assert Message.objects.get(pk=body["id"]).status == "queued"


def test_cancel_of_a_message_never_scheduled_is_a_409(api):
    body = api.post("/api/messages/sms", SMS, format="json").json()

    assert api.post(f"/api/messages/{body['id']}/cancel").status_code == 409


def test_another_accounts_message_cannot_be_canceled(api):
    other = MessageFactory(
        conversation__account=account_create(name="other"),
        status="scheduled",
        send_at=timezone.now() + timedelta(hours=1),
    )

    response = api.post(f"/api/messages/{other.pk}/cancel")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Message.objects.get(pk=other.pk).status == "scheduled"


@pytest.mark.parametrize(
    ("send_at", "says"),
    [
        (lambda: _at(minutes=-5), "is in the past"),
        (lambda: _at(seconds=20), "is less than 1 minute ahead"),
        (lambda: _at(days=35, minutes=1), "is more than 35 days ahead"),
        (lambda: (timezone.now() + timedelta(hours=1)).replace(tzinfo=None).isoformat(), "needs a UTC offset"),
        (lambda: "tomorrow at noon", "ISO-8601"),
        (lambda: "2030-13-01T10:00:00Z", "ISO-8601"),
        (lambda: 1767225600, "ISO-8601"),
        (lambda: "", "ISO-8601"),
    ],
)
def test_a_send_at_outside_the_window_or_malformed_is_a_400_that_says_why(api, send_at, says):
    response = api.post("/api/messages/sms", SMS | {"send_at": send_at()}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert says in error["fields"]["send_at"][0]
    if "ahead" in says or "past" in says:
        assert "allowed: from 1 minute to 35 days ahead" in error["fields"]["send_at"][0]
    assert not Message.objects.exists()


def test_the_window_follows_the_settings(api, settings):
    settings.MESSAGING_SCHEDULE_MIN_SECONDS = 3600
    settings.MESSAGING_SCHEDULE_MAX_DAYS = 2

    early = api.post("/api/messages/sms", SMS | {"send_at": _at(minutes=30)}, format="json")
    late = api.post("/api/messages/sms", SMS | {"send_at": _at(days=3)}, format="json")

    assert "is less than 1 hour ahead" in early.json()["error"]["fields"]["send_at"][0]
    assert "is more than 2 days ahead" in late.json()["error"]["fields"]["send_at"][0]
    assert _schedule(api, days=1)["status"] == "scheduled"


def test_a_batch_item_with_send_at_is_scheduled(api):
    items = [SMS | {"send_at": _at(hours=1)}, SMS | {"to": "+18045550000"}, SMS | {"send_at": _at(days=99)}]

    response = api.post("/api/messages/batch", {"messages": items}, format="json")

    assert response.status_code == 202
    first, second, third = response.json()["results"]
    assert (first["status"], second["status"]) == ("scheduled", "queued")
    assert "is more than 35 days ahead" in third["error"]["fields"]["send_at"][0]
    message = Message.objects.get(pk=first["id"])
    assert message.send_at is not None
    assert list(message.events.values_list("status", flat=True)) == ["scheduled"]


def test_the_conversation_lists_scheduled_messages_and_filters_by_status(api):
    scheduled = _schedule(api, hours=1)
    queued = api.post("/api/messages/sms", SMS, format="json").json()
    path = f"/api/conversations/{scheduled['conversation_id']}/messages"

    everything = api.get(path).json()["results"]
    only_scheduled = api.get(path, {"status": "scheduled"}).json()["results"]
    none_canceled = api.get(path, {"status": "canceled"})
    unknown = api.get(path, {"status": "later"})

    assert [(m["id"], m["status"]) for m in everything] == [(scheduled["id"], "scheduled"), (queued["id"], "queued")]
    assert only_scheduled[0]["send_at"] == scheduled["send_at"] and len(only_scheduled) == 1
    assert none_canceled.status_code == 200 and none_canceled.json()["results"] == []
    assert unknown.status_code == 400 and "status" in unknown.json()["error"]["fields"]


def test_the_schema_documents_send_at_and_cancel(client):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]

    for request in ("SmsSendRequest", "EmailSendRequest", "VoiceSendRequest", "BatchItemRequest"):
        assert components[request]["properties"]["send_at"]["format"] == "date-time"
    assert components["Message"]["properties"]["send_at"]["nullable"] is True
    assert {"scheduled", "canceled"} <= set(components["StatusEnum"]["enum"])
    cancel = schema["paths"]["/api/messages/{message_id}/cancel"]["post"]
    assert {"200", "404", "409"} <= set(cancel["responses"])


def test_admin_filters_scheduled_and_cancels_them(admin_client):
    scheduled = MessageFactory(status="scheduled", send_at=timezone.now() + timedelta(hours=1))
    queued = MessageFactory()

    listing = admin_client.get("/admin/messaging/message/", {"status__exact": "scheduled"})
    response = admin_client.post(
        "/admin/messaging/message/", {"action": "cancel_scheduled", "_selected_action": [scheduled.pk, queued.pk]}
    )

    assert listing.status_code == 200
    assert [m.pk for m in listing.context["cl"].result_list] == [scheduled.pk]
    assert "?status__exact=canceled" in listing.content.decode()
    assert response.status_code == 302
    assert Message.objects.get(pk=scheduled.pk).status == "canceled"
    assert Message.objects.get(pk=queued.pk).status == "queued"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL): checks its query plan")
def test_the_due_query_reads_the_scheduled_index_with_100000_scheduled(db):
    template = MessageFactory(status="sent")
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        # 100,000 scheduled over the next days beside 100,000 finished ones.
        columns = [f.column for f in Message._meta.concrete_fields if f.column not in ("id", "status", "send_at")]
        copied = ", ".join(columns)
        cursor.execute(
            f"INSERT INTO {table} ({copied}, status, send_at) "  # noqa: S608 (our table's and columns' names)
            f"SELECT {copied}, CASE WHEN n %% 2 = 0 THEN 'scheduled' ELSE 'delivered' END, "
            f"CASE WHEN n %% 2 = 0 THEN now() + n * interval '1 second' END "
            f"FROM {table}, generate_series(1, 200000) AS n WHERE id = %s",
            [template.pk],
        )
        # No ANALYZE: its row counts outlive the test's rollback and would change later
        # tests' plans; the planner estimates from the table's real size meanwhile.
        cursor.execute(
            scheduling._statement("postgresql").replace("WITH due AS", "EXPLAIN WITH due AS"),
            {"scheduled": "scheduled", "queued": "queued", "kind": "status", "limit": 1000, "now": timezone.now()},
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "message_scheduled_due" in plan, plan
    assert "Seq Scan" not in plan, plan


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_release_process_killed_midway_loses_nothing_and_repeats_nothing(transactional_db, settings):
    past = timezone.now() - timedelta(seconds=1)
    ids = [m.pk for m in MessageFactory.create_batch(400, status="scheduled", send_at=past, enqueued_at=None)]
    # A release in its own process, a chunk at a time with a pause between: killed
    # outright (SIGKILL, as a machine dies) once it has released some, not all.
    code = (
        "import time, django; django.setup()\n"
        "from messaging.services.scheduling import messages_release_chunk\n"
        "while messages_release_chunk(limit=50):\n"
        "    time.sleep(0.3)\n"
    )
    env = os.environ | {"DATABASE_URL": _database_url(), "VAR_DIR": str(settings.VAR_DIR), "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env)
    try:
        deadline = time.monotonic() + 30
        while not Message.objects.filter(pk__in=ids, status="queued").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    released = Message.objects.filter(pk__in=ids, status="queued").count()
    assert 0 < released < 400 and released % 50 == 0  # whole chunks only
    assert MessageEvent.objects.filter(message_id__in=ids, status="queued").count() == released

    assert messages_release() == 400 - released  # the next beat takes the rest
    assert Message.objects.filter(pk__in=ids, status="queued").count() == 400
    assert all(len(_released_events(pk)) == 1 for pk in ids)
