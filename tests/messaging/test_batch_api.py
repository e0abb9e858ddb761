"""POST /api/messages/batch: a result per item, bulk storage, threading, the fan-out to
the workers, idempotency, and the limits."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import Conversation
from conversations.services import api_key_create, sender_add
from messaging.models import Message, MessageEvent
from tests.factories import EMAIL, SMS, AccountFactory

BATCH = "/api/messages/batch"


def _sms(i: int, **fields) -> dict:
    return SMS | {"to": f"+1804555{i:04d}", "body": f"message {i}"} | fields


def test_every_valid_item_is_queued_and_answered_in_order(api):
    items = [_sms(1), EMAIL | {"type": "email"}, _sms(2, type="mms", attachments=["https://example.com/a.png"])]

    response = api.post(BATCH, {"messages": items}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 0)
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    stored = Message.objects.in_bulk([r["id"] for r in body["results"]])
    assert [stored[r["id"]].type for r in body["results"]] == ["sms", "email", "mms"]
    assert all(m.status == Message.Status.QUEUED for m in stored.values())
    assert MessageEvent.objects.filter(status="queued").count() == 3
    assert body["results"][1]["conversation_id"] == stored[body["results"][1]["id"]].conversation_id


def test_invalid_items_are_refused_one_by_one_and_the_rest_sent(api):
    sender_add(account=AccountFactory(), address="+12015559999")
    items = [
        _sms(1),
        _sms(2, to="not a number"),
        "not an object",
        _sms(3, type="fax"),
        _sms(4, **{"from": "+12015559999"}),
    ]

    body = api.post(BATCH, {"messages": items}, format="json").json()

    assert (body["accepted"], body["rejected"]) == (1, 4)
    results = body["results"]
    assert "id" in results[0]
    assert "to" in results[1]["error"]["fields"]
    assert results[2]["error"]["code"] == "invalid_request"
    assert "type" in results[3]["error"]["fields"]
    assert Message.objects.count() == 1


def test_a_sender_the_account_does_not_own_is_refused_per_item(api):
    account = AccountFactory()
    _, raw_key = api_key_create(account=account)

    response = api.post(BATCH, {"messages": [_sms(1)]}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"messages.0.from": ["not owned by this account"]}
    assert not Message.objects.exists()


def test_owned_and_unowned_senders_mixed_send_the_owned_and_name_the_others(api):
    account = AccountFactory()
    sender_add(account=account, address="+12016669999")
    _, raw_key = api_key_create(account=account)
    batch = [_sms(1), _sms(2) | {"from": "+12016669999"}, _sms(3, to="x"), _sms(4)]

    response = api.post(BATCH, {"messages": batch}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    assert response.status_code == 202
    results = response.json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        "sender_not_allowed",
        None,
        "invalid_request",
        "sender_not_allowed",
    ]
    assert list(Message.objects.values_list("from_address", flat=True)) == ["+12016669999"]
    assert results[1]["id"] == Message.objects.get().pk


def test_a_batch_with_no_valid_item_is_a_400_naming_each_items_fields(api):
    response = api.post(BATCH, {"messages": [_sms(1, to="x"), 7]}, format="json")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "messages.0.to" in fields and "messages.1.non_field_errors" in fields
    assert not Message.objects.exists() and not Conversation.objects.exists()


@pytest.mark.parametrize(
    "body", [{}, {"messages": []}, {"messages": "x"}, {"messages": [None]}, [], {"messages": [_sms(0)] * 1001}]
)
def test_a_malformed_or_oversized_batch_is_a_400(api, body):
    response = api.post(BATCH, body, format="json")

    assert response.status_code == 400
    assert not Message.objects.exists()


def test_messages_to_one_contact_share_one_conversation_counted_once_each(api):
    items = [_sms(1, body=f"n{i}") for i in range(5)] + [_sms(2)]

    api.post(BATCH, {"messages": items}, format="json")
    api.post(BATCH, {"messages": [_sms(1, body="later")]}, format="json")

    counts = dict(Conversation.objects.values_list("participant_b", "message_count"))
    assert counts == {"+18045550001": 6, "+18045550002": 1}
    thread = Conversation.objects.get(participant_b="+18045550001")
    assert thread.last_message_preview == "later" and thread.contact_id is not None


@pytest.mark.parametrize("recipients", [1, 1000])
def test_a_thousand_messages_take_a_bounded_number_of_queries(api, recipients):
    items = [_sms(i % recipients, body=f"n{i}") for i in range(1000)]

    with CaptureQueriesContext(connection) as queries:
        response = api.post(BATCH, {"messages": items}, format="json")

    assert response.json()["accepted"] == 1000
    # Not a statement per message nor per conversation: bulk inserts in chunks as large
    # as the database takes (PostgreSQL: one each; SQLite caps statement parameters).
    chunks = 1 if connection.vendor == "postgresql" else 1000 // (999 // 20) + 1
    # (+1: the process's first send for an account looks up which events its webhook
    # endpoints listen to; later sends find that in memory.)
    assert len(queries) <= 14 + 3 * chunks, [q["sql"][:60] for q in queries]
    assert Conversation.objects.count() == recipients
    assert Conversation.objects.filter(contact__isnull=True).count() == 0


def test_an_idempotent_batch_is_stored_once(api):
    items = {"messages": [_sms(1), _sms(2)]}

    first = api.post(BATCH, items, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    again = api.post(BATCH, items, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")

    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 2


def test_the_batch_body_cap_is_larger_than_a_single_sends(api, settings):
    settings.MAX_REQUEST_BYTES = 1000
    items = {"messages": [_sms(i, body="x" * 100) for i in range(20)]}

    assert api.post(BATCH, items, format="json").status_code == 202
    assert api.post("/api/messages/sms", _sms(1, body="x" * 1500), format="json").status_code == 413
    settings.MAX_BATCH_REQUEST_BYTES = 1000
    assert api.post(BATCH, items, format="json").status_code == 413
