import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import Conversation
from conversations.services import account_create, api_key_create
from messaging.models import Message, MessageEvent
from tests.factories import EMAIL, MMS, SMS


def test_sms_send_answers_202_with_the_queued_message(api):
    response = api.post("/api/messages/sms", SMS, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["type"] == "sms"
    assert body["from"] == "+12016661234" and body["to"] == "+18045551234"
    assert body["attachments"] == []
    assert body["timestamp"] == "2024-11-01T14:00:00Z"
    message = Message.objects.get(pk=body["id"])
    assert message.conversation_id == body["conversation_id"]
    assert message.direction == Message.Direction.OUTBOUND


def test_send_writes_the_queued_event_in_the_same_transaction(api):
    body = api.post("/api/messages/sms", SMS, format="json").json()

    events = list(MessageEvent.objects.filter(message_id=body["id"]).values_list("kind", "status"))
    assert events == [("status", "queued")]


def test_mms_send_keeps_its_attachments(api):
    body = api.post("/api/messages/sms", MMS, format="json").json()

    assert body["type"] == "mms"
    assert body["attachments"] == ["https://example.com/image.jpg"]


def test_email_send_lowercases_addresses_and_keeps_html(api):
    response = api.post("/api/messages/email", EMAIL | {"to": "Contact@Gmail.COM"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["to"] == "contact@gmail.com"
    assert body["type"] == "email"
    assert "<b>HTML</b>" in body["body"]


def test_send_normalises_formatted_phone_numbers(api):
    body = api.post("/api/messages/sms", SMS | {"to": "+1 (804) 555-1234"}, format="json").json()

    assert body["to"] == "+18045551234"


def test_send_publishes_nothing_on_the_request_path(api, monkeypatch):
    published = []
    monkeypatch.setattr("messaging.services.outbox.celery_app.send_task", lambda *a, **kw: published.append(a))

    response = api.post("/api/messages/sms", MMS, format="json")

    assert response.status_code == 202 and published == []
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.status, message.enqueued_at) == ("queued", None)  # the relay's to publish


def test_send_issues_a_bounded_number_of_queries(api):
    api.post("/api/messages/sms", SMS, format="json")  # the conversation exists from here on
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/messages/sms", SMS, format="json")

    assert response.status_code == 202
    # account, sender ownership, conversation bump, message, event, the relay's NOTIFY
    # (+ transaction control)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) <= 7, statements


@pytest.mark.parametrize("path", ["/api/messages/sms", "/api/messages/email"])
def test_send_endpoints_refuse_get(api, path):
    response = api.get(path)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_first_message_creates_the_conversation_and_its_contact(api):
    body = api.post("/api/messages/sms", SMS, format="json").json()

    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.message_count == 1
    assert conversation.contact is not None
    assert list(conversation.contact.addresses.values_list("address", flat=True)) == ["+18045551234"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement store is PostgreSQL's")
def test_a_send_is_one_statement_for_a_new_conversation_and_for_a_reply(api):
    account = account_create(name="acme", senders=[SMS["from"]])
    _, raw_key = api_key_create(account=account)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    api.post("/api/messages/sms", SMS | {"to": "+18045550000"}, format="json")  # key and sender remembered

    statements = []
    for _ in range(2):  # the first message of a conversation (with its contact), then a reply
        with CaptureQueriesContext(connection) as queries:
            response = api.post("/api/messages/sms", SMS, format="json")
        assert response.status_code == 202
        statements.append([q["sql"].split()[0] for q in queries.captured_queries])

    assert statements == [["WITH"], ["WITH"]]
    conversation = Conversation.objects.get(pk=response.json()["conversation_id"])
    assert conversation.message_count == 2
    assert list(conversation.contact.addresses.values_list("address", flat=True)) == [SMS["to"]]


@pytest.mark.parametrize("payload", [MMS, EMAIL], ids=["mms", "email"])
def test_a_reply_is_stored_exactly_as_a_first_message(api, payload):
    path = "/api/messages/email" if payload is EMAIL else "/api/messages/sms"
    first = api.post(path, payload, format="json").json()
    reply = api.post(path, payload, format="json").json()

    assert reply["conversation_id"] == first["conversation_id"]
    skip = {"id", "created_at", "updated_at", "next_attempt_at", "enqueued_at"}
    stored = [{k: v for k, v in row.items() if k not in skip} for row in Message.objects.order_by("id").values()]
    assert stored[0] == stored[1]
    events = api.get(f"/api/messages/{reply['id']}").json()["events"]
    assert [(e["kind"], e["status"], e["detail"]) for e in events] == [("status", "queued", {})]
    assert Conversation.objects.get().message_count == 2
