import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from conversations.selectors import account_development
from tests.factories import (
    EMAIL,
    INBOUND_EMAIL,
    INBOUND_MMS,
    INBOUND_SMS,
    MMS,
    SMS,
    ConversationFactory,
    MessageFactory,
)


def _assignment_script(api) -> tuple[int, int]:
    """What bin/test.sh sends, in its order; returns the phone and email thread ids."""
    ids = []
    for path, payload in [
        ("/api/messages/sms", SMS),
        ("/api/messages/sms", MMS),
        ("/api/messages/email", EMAIL),
        ("/api/webhooks/sms", INBOUND_SMS),
        ("/api/webhooks/sms", INBOUND_MMS),
        ("/api/webhooks/email", INBOUND_EMAIL),
    ]:
        response = api.post(path, payload, format="json")
        assert response.status_code in (201, 202)
        ids.append(response.json()["conversation_id"])
    return ids[0], ids[2]


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_the_assignment_script_leaves_two_conversations():
    api = APIClient()
    _assignment_script(api)

    results = api.get("/api/conversations").json()["results"]

    by_id = {c["id"]: c for c in results}
    assert set(by_id) == {1, 2}
    assert by_id[1]["channel"] == "phone" and by_id[1]["message_count"] == 4
    assert by_id[1]["participants"] == ["+12016661234", "+18045551234"]
    assert by_id[2]["channel"] == "email" and by_id[2]["message_count"] == 2
    assert by_id[2]["participants"] == ["contact@gmail.com", "user@usehatchapp.com"]


def test_phone_thread_lists_sms_and_mms_both_ways_in_order(api):
    phone, _ = _assignment_script(api)

    messages = api.get(f"/api/conversations/{phone}/messages").json()["results"]

    assert [(m["direction"], m["type"]) for m in messages] == [
        ("outbound", "sms"),
        ("outbound", "mms"),
        ("inbound", "sms"),
        ("inbound", "mms"),
    ]
    assert [m["id"] for m in messages] == sorted(m["id"] for m in messages)


def test_conversations_are_ordered_by_last_activity(api):
    phone, email = _assignment_script(api)
    api.post("/api/messages/sms", SMS, format="json")  # the phone thread is now the latest

    results = api.get("/api/conversations").json()["results"]

    assert [c["id"] for c in results] == [phone, email]
    assert results[0]["last_message"]["direction"] == "outbound"
    assert results[0]["last_message"]["preview"] == SMS["body"]


def test_conversation_detail(api):
    _, email = _assignment_script(api)

    body = api.get(f"/api/conversations/{email}").json()

    assert body["id"] == email and body["message_count"] == 2
    assert body["last_message"]["type"] == "email"


def test_unknown_conversation_is_a_json_404(api):
    for path in (
        "/api/conversations/999",
        "/api/conversations/999/messages",
        "/api/conversations/99999999999999999999",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_conversation_list_is_paginated_with_a_cursor(api):
    account = account_development()
    for _ in range(5):
        ConversationFactory(account=account)

    first = api.get("/api/conversations?page_size=2").json()
    second = api.get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 2
    assert not {c["id"] for c in first["results"]} & {c["id"] for c in second["results"]}


def test_message_page_follows_the_cursor_to_the_end(api):
    conversation = ConversationFactory(account=account_development())
    ids = [MessageFactory(conversation=conversation).pk for _ in range(7)]

    seen, url = [], f"/api/conversations/{conversation.pk}/messages?page_size=3"
    while url:
        page = api.get(url).json()
        seen += [m["id"] for m in page["results"]]
        url = page["next"]

    assert seen == ids


def test_list_queries_do_not_grow_with_rows(api):
    account = account_development()
    conversation = ConversationFactory(account=account)
    MessageFactory(conversation=conversation)

    def count(path):
        with CaptureQueriesContext(connection) as queries:
            assert api.get(path).status_code == 200
        return len(queries)

    small = (count("/api/conversations"), count(f"/api/conversations/{conversation.pk}/messages"))
    for _ in range(20):
        ConversationFactory(account=account)
        MessageFactory(conversation=conversation)
    large = (count("/api/conversations"), count(f"/api/conversations/{conversation.pk}/messages"))

    assert large == small
