import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Message
from tests.factories import ConversationFactory, MessageFactory


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_admin_lists_render(staff):
    message = MessageFactory(status="failed", failure_reason="permanent", last_error="bad number")
    for path in [
        "/admin/",
        "/admin/messaging/message/",
        "/admin/conversations/conversation/",
        "/admin/messaging/messageevent/",
        "/admin/webhooks/webhookevent/",
        "/admin/conversations/account/",
        "/admin/conversations/apikey/",
        f"/admin/messaging/message/{message.pk}/change/",
        f"/admin/conversations/conversation/{message.conversation_id}/change/",
    ]:
        assert staff.get(path).status_code == 200, path


def test_messages_can_be_found_by_provider_id_and_filtered(staff):
    MessageFactory(provider_message_id="SMfindme")
    MessageFactory(provider_message_id="SMother", status="delivered")

    found = staff.get("/admin/messaging/message/?q=SMfindme")
    failed = staff.get("/admin/messaging/message/?status__exact=delivered")

    assert b"SMfindme" in found.content and b"SMother" not in found.content
    assert b"SMother" in failed.content and b"SMfindme" not in failed.content


def test_conversation_page_shows_its_thread(staff):
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, body="first words")
    MessageFactory(conversation=conversation, body="second words")

    page = staff.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content

    assert page.index(b"first words") < page.index(b"second words")


def test_replay_action_requeues_dead_letters(staff):
    dead = MessageFactory(status="failed", failure_reason="exhausted")
    fine = MessageFactory(status="delivered")

    response = staff.post("/admin/messaging/message/", {"action": "replay", "_selected_action": [dead.pk, fine.pk]})

    assert response.status_code == 302
    assert Message.objects.get(pk=dead.pk).status == "queued"
    assert Message.objects.get(pk=fine.pk).status == "delivered"


def test_message_list_queries_do_not_grow_with_rows(staff):
    MessageFactory()

    def count():
        with CaptureQueriesContext(connection) as queries:
            staff.get("/admin/messaging/message/")
        return len(queries)

    before = count()
    for _ in range(15):
        MessageFactory()
    assert count() == before
