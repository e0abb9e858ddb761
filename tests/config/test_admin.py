from datetime import timedelta

import pytest
from django.contrib.admin import site
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Contact, Conversation
from messaging.models import DeliveryAttempt, Message, MessageEvent
from tests.factories import AccountFactory, ConversationFactory, MessageFactory


def attempt(message: Message, **fields) -> DeliveryAttempt:
    values = {"provider": "twilio", "outcome": "success", "latency_ms": 80, "created_at": timezone.now()} | fields
    return DeliveryAttempt.objects.create(message=message, **values)


def conversation_with_contact() -> Conversation:
    account = AccountFactory()
    return ConversationFactory(account=account, contact=Contact.objects.create(account=account, name="Ann"))


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


def test_conversation_list_queries_do_not_grow_with_rows(staff):
    MessageFactory()

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert staff.get("/admin/conversations/conversation/").status_code == 200
        return len(queries)

    before = count()
    for _ in range(15):
        MessageFactory(conversation=conversation_with_contact())
    assert count() == before


def test_delivery_attempt_list_queries_do_not_grow_with_rows(staff):
    attempt(MessageFactory())

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert staff.get("/admin/messaging/deliveryattempt/").status_code == 200
        return len(queries)

    before = count()
    for _ in range(15):
        attempt(MessageFactory())
    assert count() == before


def test_html_email_bodies_are_shown_as_escaped_text(staff):
    conversation = ConversationFactory(channel="email", a="ann@example.com", b="bob@example.com")
    message = MessageFactory(
        conversation=conversation, type="email", body='<script>alert("x")</script><b>Hi</b>', subject="<i>Re</i>"
    )

    for path in [
        f"/admin/conversations/conversation/{conversation.pk}/change/",
        f"/admin/messaging/message/{message.pk}/change/",
    ]:
        page = staff.get(path).content
        assert b'<script>alert("x")</script>' not in page, path
        assert b"<b>Hi</b>" not in page, path
        assert b"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;Hi&lt;/b&gt;" in page, path


def test_only_http_attachments_become_links(staff):
    message = MessageFactory(
        type="mms", attachments=["https://cdn.example.com/cat.jpg", "javascript:alert(1)"], body="look"
    )

    for path in [
        f"/admin/conversations/conversation/{message.conversation_id}/change/",
        f"/admin/messaging/message/{message.pk}/change/",
    ]:
        page = staff.get(path).content
        assert b'href="https://cdn.example.com/cat.jpg"' in page, path
        assert b'href="javascript:' not in page, path
        assert b"javascript:alert(1)" in page, path


def test_conversation_thread_shows_direction_channel_status_and_links_to_messages(staff):
    conversation = ConversationFactory()
    inbound = MessageFactory(conversation=conversation, direction="inbound", status="received", body="question")
    outbound = MessageFactory(conversation=conversation, type="mms", status="failed", body="answer")

    page = staff.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()

    first, second = page.index(f'id="message-{inbound.pk}"'), page.index(f'id="message-{outbound.pk}"')
    assert first < second
    assert "inbound" in page[first:second] and "received" in page[first:second]
    assert "outbound" in page[second:] and "MMS" in page[second:] and "failed" in page[second:]
    assert f'href="/admin/messaging/message/{outbound.pk}/change/"' in page


def test_conversation_link_lists_only_its_messages(staff):
    mine = MessageFactory(provider_message_id="SMmine")
    MessageFactory(provider_message_id="SMtheirs")

    page = staff.get(f"/admin/messaging/message/?conversation__id__exact={mine.conversation_id}").content

    assert b"SMmine" in page and b"SMtheirs" not in page


def test_message_found_by_number(staff):
    wanted = MessageFactory(provider_message_id="SMwanted")
    MessageFactory(provider_message_id="SMunwanted")

    by_hash = staff.get("/admin/messaging/message/", {"q": f"#{wanted.pk}"}).content
    by_digits = staff.get("/admin/messaging/message/", {"q": str(wanted.pk)}).content
    not_a_number = staff.get("/admin/messaging/message/", {"q": "#nope"})

    assert b"SMwanted" in by_hash and b"SMunwanted" not in by_hash
    assert b"SMwanted" in by_digits
    assert not_a_number.status_code == 200 and b"SMwanted" not in not_a_number.content


def test_messages_found_by_a_phone_number_however_it_is_written(staff):
    conversation = ConversationFactory(a="+12015550123", b="+18045550100")
    MessageFactory(conversation=conversation, provider_message_id="SMbyphone")
    MessageFactory(provider_message_id="SMelsewhere")

    for query in ["+1 (201) 555-0123", "12015550123", "+12015550123"]:
        page = staff.get("/admin/messaging/message/", {"q": query}).content
        assert b"SMbyphone" in page and b"SMelsewhere" not in page, query
    threads = staff.get("/admin/conversations/conversation/", {"q": "+1 201 555 0123"}).content
    assert f"/admin/conversations/conversation/{conversation.pk}/change/".encode() in threads


def test_messages_found_by_an_email_address_in_any_case(staff):
    conversation = ConversationFactory(a="ann@example.com", b="team@acme.example")
    MessageFactory(conversation=conversation, type="email", provider_message_id="SGbyemail")
    MessageFactory(provider_message_id="SMelsewhere")

    page = staff.get("/admin/messaging/message/", {"q": "Ann@Example.com"}).content

    assert b"SGbyemail" in page and b"SMelsewhere" not in page


def test_message_search_matches_whole_values_only(staff):
    MessageFactory(provider_message_id="SMfindme", body="findme in the body")

    partial = staff.get("/admin/messaging/message/", {"q": "findme"}).content
    whole = staff.get("/admin/messaging/message/", {"q": "SMfindme"}).content

    assert b"SMfindme" not in partial and b"SMfindme" in whole


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL): checks its query plans")
@pytest.mark.parametrize("term", ["SM0123456789abcdef", "+1 (201) 555-0123", "ann@example.com", "42", "#42"])
def test_message_search_reads_indexes_not_the_table(term, rf, admin_user):
    request = rf.get("/admin/messaging/message/", {"q": term})
    request.user = admin_user
    model_admin = site._registry[Message]
    found, _ = model_admin.get_search_results(request, model_admin.get_queryset(request), term)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table scan is then chosen only when no index serves

        plan = found.order_by("-id")[:100].explain()  # the changelist's first page

    # Every row read is found through an index condition, none by filtering a whole scan.
    assert "Seq Scan" not in plan and "Filter:" not in plan, plan


def test_messages_filtered_by_date(staff):
    MessageFactory(provider_message_id="SMtoday")
    MessageFactory(provider_message_id="SMlastyear", created_at=timezone.now() - timedelta(days=400))

    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    page = staff.get("/admin/messaging/message/", {"created_at__gte": str(midnight)}).content

    assert b"SMtoday" in page and b"SMlastyear" not in page


def test_conversation_found_by_number(staff):
    wanted = ConversationFactory()
    other = ConversationFactory()

    page = staff.get("/admin/conversations/conversation/", {"q": f"#{wanted.pk}"}).content

    assert f"/{wanted.pk}/change/".encode() in page and f"/{other.pk}/change/".encode() not in page


def test_dead_letter_filter_lists_only_failed_messages(staff):
    MessageFactory(status="failed", failure_reason="exhausted", provider_message_id="SMexhausted")
    MessageFactory(status="failed", failure_reason="permanent", provider_message_id="SMrefused")
    MessageFactory(status="undelivered", provider_message_id="SMundelivered")

    every = staff.get("/admin/messaging/message/?dead_letter=all").content
    exhausted = staff.get("/admin/messaging/message/?dead_letter=exhausted").content

    assert b"SMexhausted" in every and b"SMrefused" in every and b"SMundelivered" not in every
    assert b"SMexhausted" in exhausted and b"SMrefused" not in exhausted


def test_message_page_shows_timeline_and_delivery_attempts(staff):
    message = MessageFactory(status="failed", failure_reason="exhausted", last_error="HTTP 500")
    MessageEvent.objects.create(message=message, kind="retry", status="queued", created_at=timezone.now())
    attempt(message, outcome="ambiguous", http_status=500, latency_ms=1234, error="provider said 500")

    page = staff.get(f"/admin/messaging/message/{message.pk}/change/").content

    assert b"1234 ms" in page and b"provider said 500" in page and b"ambiguous" in page.lower()
    assert b"Retry" in page or b"retry" in page
    assert b"Replay this dead letter" in page
    assert b'name="_save"' not in page


def test_messages_cannot_be_edited_through_the_admin(staff):
    message = MessageFactory(status="sent", body="original")

    response = staff.post(f"/admin/messaging/message/{message.pk}/change/", {"status": "queued", "body": "edited"})

    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).body == "original"


def test_replay_button_requeues_a_dead_letter(staff):
    dead = MessageFactory(status="failed", failure_reason="exhausted")
    fine = MessageFactory(status="delivered")

    replayed = staff.post(f"/admin/messaging/message/{dead.pk}/replay/")
    ignored = staff.post(f"/admin/messaging/message/{fine.pk}/replay/")

    assert replayed.status_code == 302 and ignored.status_code == 302
    assert Message.objects.get(pk=dead.pk).status == "queued"
    assert Message.objects.get(pk=fine.pk).status == "delivered"
    assert staff.get(f"/admin/messaging/message/{dead.pk}/replay/").status_code == 405


def test_replay_needs_the_change_permission(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(viewer)
    dead = MessageFactory(status="failed", failure_reason="exhausted")

    page = client.get(f"/admin/messaging/message/{dead.pk}/change/")
    button = client.post(f"/admin/messaging/message/{dead.pk}/replay/")
    action = client.post("/admin/messaging/message/", {"action": "replay", "_selected_action": [dead.pk]})

    assert page.status_code == 200 and b"Replay this dead letter" not in page.content
    assert button.status_code == 403
    assert action.status_code == 200
    assert Message.objects.get(pk=dead.pk).status == "failed"
