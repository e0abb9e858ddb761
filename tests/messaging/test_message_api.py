from tests.factories import SMS, AccountFactory, MessageFactory


def test_message_detail_has_events_and_attempts(api, sandbox):
    message_id = api.post("/api/messages/sms", SMS | {"to": "+15005550003"}, format="json").json()["id"]
    sandbox.drain(message_id)

    body = api.get(f"/api/messages/{message_id}").json()

    assert body["status"] == "delivered"
    assert [a["outcome"] for a in body["delivery_attempts"]] == ["transient", "transient", "success"]
    assert body["delivery_attempts"][0]["http_status"] == 429
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.count("retry") == 2 and kinds[0] == "status"


def test_failed_message_shows_its_error(api, sandbox):
    message_id = api.post("/api/messages/sms", SMS | {"to": "+15005550001"}, format="json").json()["id"]
    sandbox.drain(message_id)

    body = api.get(f"/api/messages/{message_id}").json()

    assert body["status"] == "failed"
    assert body["error"]["code"] == "21211" and body["error"]["reason"] == "permanent"


def test_unknown_message_is_a_404(api):
    assert api.get("/api/messages/123456").status_code == 404


def test_another_accounts_message_is_a_404(api):
    other = MessageFactory(conversation__account=AccountFactory())

    response = api.get(f"/api/messages/{other.pk}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such message."}}


def test_the_written_out_representation_is_what_drf_would_give(api, sandbox):
    from rest_framework import serializers as drf

    from messaging.models import Message
    from messaging.serializers import MessageDetailSerializer, MessageSerializer

    ids = [
        api.post("/api/messages/sms", SMS | {"to": to}, format="json").json()["id"]
        for to in ("+15005550001", "+15005550003")
    ]
    ids.append(
        api.post(
            "/api/messages/sms", SMS | {"type": "mms", "attachments": ["https://e.com/a.png"]}, format="json"
        ).json()["id"]
    )
    for message_id in ids:
        sandbox.drain(message_id)

    for message in Message.objects.filter(pk__in=ids):
        for serializer in (MessageSerializer(message), MessageDetailSerializer(message)):
            generic = drf.ModelSerializer.to_representation(serializer, message)
            assert serializer.data == generic
            assert list(serializer.data) == list(generic)
