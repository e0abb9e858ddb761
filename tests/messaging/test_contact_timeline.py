"""GET /api/contacts/{id}/messages: one timeline across SMS, MMS and email, in time order,
cursor-paginated like the other lists."""

from datetime import timedelta

from django.utils import timezone

from conversations.models import Conversation
from messaging.models import Message
from tests.factories import EMAIL, INBOUND_EMAIL, INBOUND_MMS, INBOUND_SMS, MMS, SMS


def _post(api, path, payload) -> dict:
    response = api.post(path, payload, format="json")
    assert response.status_code in (201, 202), response.content
    return response.json()


def _contact(api) -> int:
    response = api.post(
        "/api/contacts",
        {"name": "Ada", "phone_numbers": [SMS["to"]], "email_addresses": [EMAIL["to"]]},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_one_timeline_across_sms_mms_and_email_in_time_order(api):
    sent = [
        _post(api, "/api/messages/sms", SMS),
        _post(api, "/api/messages/email", EMAIL),
        _post(api, "/api/webhooks/sms", INBOUND_SMS),
        _post(api, "/api/messages/sms", MMS),
        _post(api, "/api/webhooks/email", INBOUND_EMAIL),
        _post(api, "/api/webhooks/sms", INBOUND_MMS),
    ]
    _post(api, "/api/messages/sms", SMS | {"to": "+18045559999"})  # someone else
    contact = _contact(api)

    timeline = api.get(f"/api/contacts/{contact}/messages").json()

    assert [m["id"] for m in timeline["results"]] == [m["id"] for m in sent]
    assert [(m["type"], m["direction"]) for m in timeline["results"]] == [
        ("sms", "outbound"),
        ("email", "outbound"),
        ("sms", "inbound"),
        ("mms", "outbound"),
        ("email", "inbound"),
        ("mms", "inbound"),
    ]
    assert len({m["conversation_id"] for m in timeline["results"]}) == 2
    assert [(m["encoding"], m["segments"]) for m in timeline["results"]][:2] == [("GSM-7", 1), (None, None)]


def test_the_timeline_follows_the_time_messages_were_stored_not_the_thread(api):
    email = _post(api, "/api/messages/email", EMAIL)
    sms = _post(api, "/api/messages/sms", SMS)
    earlier = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk=sms["id"]).update(created_at=earlier)

    timeline = api.get(f"/api/contacts/{_contact(api)}/messages").json()["results"]

    assert [m["id"] for m in timeline] == [sms["id"], email["id"]]


def test_the_timeline_pages_with_a_cursor(api):
    ids = [_post(api, "/api/messages/sms", SMS | {"body": f"n{i}"})["id"] for i in range(3)]
    ids += [_post(api, "/api/messages/email", EMAIL | {"body": f"e{i}"})["id"] for i in range(2)]
    contact = _contact(api)

    page = api.get(f"/api/contacts/{contact}/messages?page_size=2").json()
    seen = [m["id"] for m in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        assert len(page["results"]) <= 2
        seen += [m["id"] for m in page["results"]]

    assert seen == ids


def test_a_contact_with_no_conversation_has_an_empty_timeline(api):
    response = api.post("/api/contacts", {"name": "new"}, format="json")

    timeline = api.get(f"/api/contacts/{response.json()['id']}/messages")

    assert timeline.status_code == 200
    assert timeline.json()["results"] == []


def test_merged_contacts_share_one_timeline(api):
    sms = _post(api, "/api/messages/sms", SMS)
    email = _post(api, "/api/messages/email", EMAIL)
    by_phone, by_email = (Conversation.objects.get(pk=m["conversation_id"]).contact_id for m in (sms, email))

    assert [m["id"] for m in api.get(f"/api/contacts/{by_phone}/messages").json()["results"]] == [sms["id"]]
    api.post(f"/api/contacts/{by_phone}/merge", {"contact_id": by_email}, format="json")

    assert [m["id"] for m in api.get(f"/api/contacts/{by_phone}/messages").json()["results"]] == [
        sms["id"],
        email["id"],
    ]


def test_an_unknown_contacts_timeline_is_a_404(api):
    response = api.get("/api/contacts/424242/messages")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such contact."}}
