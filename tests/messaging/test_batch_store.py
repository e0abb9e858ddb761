"""The batch's write path: each item validated exactly as the single send validates it,
and stored as the single send stores it (COPY on PostgreSQL, bulk inserts elsewhere),
with its event, counted in its conversation, published by the relay and not the request."""

import pytest
from django.core.validators import MaxLengthValidator, MinLengthValidator
from django.db import connection
from rest_framework import serializers

from conversations.fields import fast_validation
from messaging.models import Message, MessageEvent
from messaging.serializers import EmailSendSerializer, SmsSendSerializer
from messaging.services import outbox_relay
from tests.factories import EMAIL, MMS, SMS

BATCH = "/api/messages/batch"

# Items each path must refuse alike: every field's kind of mistake, and the object rules.
BAD_SMS = [
    {},
    SMS | {"to": "not a number"},
    SMS | {"to": "18045551234"},
    SMS | {"to": "+1555"},
    SMS | {"to": 18045551234},
    SMS | {"to": ""},
    SMS | {"to": "   "},
    SMS | {"to": None},
    SMS | {"from": "+1" + "2" * 300},
    SMS | {"from": SMS["to"]},
    SMS | {"type": "fax"},
    SMS | {"type": ["sms"]},
    SMS | {"body": 12345},
    SMS | {"body": ""},
    SMS | {"body": "   "},
    SMS | {"body": "x" * 5000},
    SMS | {"attachments": ["https://example.com/a.png"]},
    SMS | {"attachments": "https://example.com/a.png"},
    SMS | {"attachments": ["ftp://example.com/a.png"]},
    MMS | {"attachments": []},
    MMS | {"attachments": None},
    SMS | {"timestamp": "yesterday"},
    SMS | {"timestamp": 7},
    SMS | {"smart_encoding": "yes"},
    SMS | {"smart_encoding": 1},
    SMS | {"smart_encoding": True, "body": "\u2026" * 1600},
    {"from": 1, "to": 2, "body": 3, "type": 4},
]
BAD_EMAIL = [
    {},
    EMAIL | {"to": "not an address"},
    EMAIL | {"to": EMAIL["from"].upper()},
    EMAIL | {"from": ""},
    EMAIL | {"body": ""},
    EMAIL | {"body": "  \n "},
    EMAIL | {"body": None},
    EMAIL | {"subject": "two\nlines"},
    EMAIL | {"subject": "x" * 999},
    EMAIL | {"subject": 5},
    EMAIL | {"attachments": ["not a url"]},
    EMAIL | {"timestamp": "2024-13-45"},
]
GOOD_SMS = [
    SMS,
    MMS,
    SMS | {"to": " +1 (804) 555-1234 ", "body": "  spaced  "},
    SMS | {"attachments": [], "timestamp": None},
    SMS | {"smart_encoding": True, "body": "\u201cquoted\u201d \u2014 done\u2026"},
    SMS | {"smart_encoding": False, "unknown": "ignored"},
    {"from": SMS["from"], "to": SMS["to"], "body": "type and attachments left out"},
]
# The API's parser refuses a NUL anywhere in a body (a 400 for the whole request), so only
# the serializers see this one.
BAD_SMS_OFF_THE_WIRE = [SMS | {"body": "nul\x00here"}, SMS | {"to": "+1804555\x001234"}]
GOOD_EMAIL = [EMAIL, EMAIL | {"to": " Contact@GMAIL.com ", "subject": "Hi", "attachments": None}]


def _outcome(run, payload):
    try:
        return "valid", run(payload)
    except serializers.ValidationError as exc:
        return "invalid", exc.detail


@pytest.mark.parametrize(
    ("serializer_class", "payload"),
    [(SmsSendSerializer, p) for p in BAD_SMS + BAD_SMS_OFF_THE_WIRE + GOOD_SMS]
    + [(EmailSendSerializer, p) for p in BAD_EMAIL + GOOD_EMAIL],
)
def test_the_compiled_validation_answers_as_the_serializer_does(serializer_class, payload):
    serializer = serializer_class()
    fast = fast_validation(serializer)

    assert _outcome(lambda p: fast(p, {}), payload) == _outcome(serializer.run_validation, payload)


class _Unusual(serializers.Serializer):
    """Fields the fast path does not check itself: their own validation must decide."""

    code = serializers.CharField(validators=[MaxLengthValidator(3)])
    tags = serializers.MultipleChoiceField(choices=["a", "b"], required=False)
    items = serializers.ListField(child=serializers.IntegerField(), validators=[MinLengthValidator(1)], default=list)
    flag = serializers.BooleanField(required=False)


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "abc"},
        {"code": "abcd"},
        {"code": "ab", "tags": ["a"]},
        {"code": "ab", "tags": "a"},
        {"code": "ab", "items": []},
        {"code": "ab", "items": ["1", 2]},
        {"code": "ab", "flag": "yes"},
        {"code": "ab", "flag": 0},
        {},
    ],
)
def test_fields_the_compiled_validation_does_not_know_validate_themselves(payload):
    serializer = _Unusual()

    assert _outcome(lambda p: fast_validation(serializer)(p, {}), payload) == _outcome(
        serializer.run_validation, payload
    )


@pytest.mark.parametrize(
    ("path", "payload"),
    # An item's type picks the serializer (the batch names its own error for a bad one).
    [("/api/messages/sms", p) for p in BAD_SMS if p.get("type", "sms") in ("sms", "mms")]
    + [("/api/messages/email", p) for p in BAD_EMAIL],
)
def test_a_bad_item_is_refused_with_the_single_sends_error(api, path, payload):
    single = api.post(path, payload, format="json")
    item = payload | {"type": payload.get("type", "sms") if path.endswith("sms") else "email"}
    batch = api.post(BATCH, {"messages": [SMS, item]}, format="json")

    assert single.status_code == 400
    assert batch.status_code == 202
    expected, refused = single.json()["error"], batch.json()["results"][1]["error"]
    assert refused["code"] == expected["code"] == "invalid_request"
    assert refused["fields"] == expected["fields"]
    assert Message.objects.count() == 1


def test_a_batch_item_is_stored_as_the_single_send_stores_it(api):
    items = [
        SMS,
        MMS | {"attachments": ["https://example.com/caf\u00e9.png?a=1&b=\\N"]},
        EMAIL | {"type": "email", "subject": 'Hi "you"', "body": "<p>tab\there</p>\r\nline\\N \\. end"},
        SMS | {"body": "\u00e9t\u00e9 \U0001f600" * 30},
        SMS | {"body": "\\N"},  # COPY's NULL marker, as text
    ]
    singles = [
        api.post("/api/messages/email" if item.get("type") == "email" else "/api/messages/sms", item, format="json")
        for item in items
    ]
    batch = api.post(BATCH, {"messages": items}, format="json").json()

    ignored = {"id", "conversation", "created_at", "updated_at", "next_attempt_at"}
    for single, result in zip(singles, batch["results"], strict=True):
        alone, batched = Message.objects.get(pk=single.json()["id"]), Message.objects.get(pk=result["id"])
        for field in Message._meta.concrete_fields:
            if field.name not in ignored:
                assert getattr(batched, field.attname) == getattr(alone, field.attname), field.name
        assert batched.conversation_id == alone.conversation_id == result["conversation_id"]
        assert (result["encoding"], result["segments"]) == (single.json()["encoding"], single.json()["segments"])
        assert batched.created_at == batched.updated_at == batched.next_attempt_at


def test_a_thousand_items_store_a_thousand_rows_and_events_in_order(api, published):
    items = [SMS | {"to": f"+1804555{i % 300:04d}", "body": f"n{i}"} for i in range(1000)]

    body = api.post(BATCH, {"messages": items}, format="json").json()

    assert body["accepted"] == 1000
    ids = [r["id"] for r in body["results"]]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    stored = dict(Message.objects.filter(pk__in=ids).values_list("id", "body"))
    assert [stored[pk] for pk in ids] == [f"n{i}" for i in range(1000)]
    assert Message.objects.count() == 1000
    events = MessageEvent.objects.filter(message_id__in=ids)
    assert events.count() == 1000 and set(events.values_list("kind", "status")) == {("status", "queued")}
    assert not Message.objects.exclude(status="queued", enqueued_at__isnull=True).exists()
    assert published == []  # the request publishes nothing: the relay does
    assert outbox_relay() == 1000
    assert sorted(pk for pk, _ in published) == ids


def test_an_idempotent_retry_of_a_large_batch_stores_nothing_more(api):
    items = {"messages": [SMS | {"to": f"+1804555{i:04d}"} for i in range(500)] + [SMS | {"to": "x"}]}

    first = api.post(BATCH, items, format="json", HTTP_IDEMPOTENCY_KEY="campaign-7")
    again = api.post(BATCH, items, format="json", HTTP_IDEMPOTENCY_KEY="campaign-7")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == MessageEvent.objects.count() == 500


def test_the_batch_stores_with_copy_on_postgresql(api):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's; this database stores with bulk inserts (the other tests here)")
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert api.post(BATCH, {"messages": [SMS, MMS]}, format="json").status_code == 202

    statements = " ".join(q["sql"] for q in queries)
    # COPY is not a query Django logs: the messages and events are not among the INSERTs.
    assert 'INSERT INTO "messaging_message"' not in statements
    assert "nextval" in statements
    assert Message.objects.count() == MessageEvent.objects.count() == 2
