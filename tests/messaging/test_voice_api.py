"""POST /api/messages/voice: a message of type voice, accepted like any send (202,
idempotency, rate limits, sender ownership), refused field by field when it is wrong."""

import pytest
from django.conf import settings

from conversations.models import Account, Conversation
from conversations.services import api_key_create, optout_add, sender_add
from messaging.models import Message, MessageEvent
from tests.factories import SMS, VOICE, VOICE_DROP, AccountFactory

pytestmark = pytest.mark.django_db

PATH = "/api/messages/voice"


def _post(api, body, **extra):
    return api.post(PATH, body, format="json", **extra)


def test_a_call_is_queued_as_a_voice_message_of_the_phone_conversation(api):
    sms = api.post("/api/messages/sms", SMS, format="json").json()

    response = _post(api, VOICE | {"voice": "Polly.Joanna", "language": "en-US"})

    assert response.status_code == 202
    body = response.json()
    assert (body["type"], body["status"], body["body"], body["attachments"]) == ("voice", "queued", VOICE["say"], [])
    assert body["conversation_id"] == sms["conversation_id"]
    assert body["call"] == {
        "mode": "call",
        "voice": "Polly.Joanna",
        "language": "en-US",
        "human": "",
        "human_say": "",
        "duration": None,
        "answered_by": "",
        "recording_stored": False,
    }
    message = Message.objects.get(pk=body["id"])
    assert (message.status, message.enqueued_at, message.call["mode"]) == ("queued", None, "call")
    assert list(message.events.values_list("kind", "status")) == [(MessageEvent.Kind.STATUS, "queued")]
    conversation = Conversation.objects.get()
    assert (conversation.message_count, conversation.last_message_type) == (2, "voice")


def test_a_voicemail_drop_keeps_its_behaviour_for_a_person(api):
    response = _post(api, VOICE_DROP | {"human": "message", "human_say": "Call us back."})

    assert response.status_code == 202
    call = response.json()["call"]
    assert (call["mode"], call["human"], call["human_say"]) == ("voicemail_drop", "message", "Call us back.")


def test_a_drop_plays_the_same_to_a_person_unless_told_otherwise(api):
    assert _post(api, VOICE_DROP).json()["call"]["human"] == "same"


def test_play_is_the_voice_messages_attachment(api):
    body = {k: v for k, v in VOICE.items() if k != "say"} | {"play": "https://cdn.example.com/hello.mp3"}

    response = _post(api, body)

    assert response.status_code == 202
    assert (response.json()["body"], response.json()["attachments"]) == ("", ["https://cdn.example.com/hello.mp3"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"say": None}, "say"),
        ({"play": "https://cdn.example.com/a.mp3"}, "say"),
        ({"say": ""}, "say"),
        ({"say": "x" * 4097}, "say"),
        ({"say": 42}, "say"),
        ({"say": None, "play": "javascript:alert(1)"}, "play"),
        ({"say": None, "play": "https://cdn.example.com/a.mp3", "voice": "alice"}, "voice"),
        ({"voice": "alice<x>"}, "voice"),
        ({"language": "english please"}, "language"),
        ({"mode": "fax"}, "mode"),
        ({"human": "hangup"}, "human"),
        ({"mode": "voicemail_drop", "human": "shout"}, "human"),
        ({"mode": "voicemail_drop", "human": "message"}, "human_say"),
        ({"mode": "voicemail_drop", "human_say": "Hi"}, "human_say"),
        ({"to": "+12016661234"}, "to"),
        ({"to": "not a number"}, "to"),
        ({"from": None}, "from"),
    ],
)
def test_a_wrong_call_is_a_400_naming_the_field(api, changes, field):
    body = {k: v for k, v in (VOICE | changes).items() if v is not None}

    response = _post(api, body)

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_calling_from_a_number_the_account_does_not_own_is_a_403(api):
    _, key = api_key_create(account=AccountFactory())

    response = _post(api, VOICE, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 403
    assert response.json()["error"]["fields"] == {"from": ["not owned by this account"]}


def test_an_account_calls_from_its_own_number(api):
    account = AccountFactory()
    sender_add(account=account, address=VOICE["from"])
    _, key = api_key_create(account=account)

    response = _post(api, VOICE, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 202
    assert Message.objects.get().account_id == account.pk


def test_the_same_idempotency_key_places_one_call(api):
    first = _post(api, VOICE, HTTP_IDEMPOTENCY_KEY="call-1")
    again = _post(api, VOICE, HTTP_IDEMPOTENCY_KEY="call-1")
    other = _post(api, VOICE | {"say": "Something else"}, HTTP_IDEMPOTENCY_KEY="call-1")

    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 422)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1


def test_calls_count_against_the_rate_limit(api, settings):
    settings.RATE_LIMITS = {"api": (2, 60), "webhooks": (5, 60)}

    answers = [_post(api, VOICE).status_code for _ in range(3)]

    assert answers == [202, 202, 429]
    assert Message.objects.count() == 2


def test_the_schema_documents_the_voice_endpoint_and_the_call_resource(api):
    schema = api.get("/api/schema", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/messages/voice"]["post"]
    assert set(operation["responses"]) >= {"202", "400", "403", "429"}
    request = schema["components"]["schemas"]["VoiceSendRequest"]
    assert set(request["properties"]) >= {"from", "to", "mode", "say", "play", "voice", "language", "human"}
    assert "voice" in schema["components"]["schemas"]["MessageTypeEnum"]["enum"]
    call = schema["components"]["schemas"]["Call"]
    assert set(call["properties"]) == {
        "mode",
        "voice",
        "language",
        "human",
        "human_say",
        "duration",
        "answered_by",
        "recording_stored",
    }
    assert "/api/webhooks/providers/{name}/voice" in schema["paths"]
    assert settings.PROVIDERS["twilio-voice"]["types"] == ["voice"]


def test_a_number_that_opted_out_of_the_sender_is_not_called(api):
    account = Account.objects.get(is_development=True)
    optout_add(account=account, sender=VOICE["from"], address=VOICE["to"], source="api")

    response = _post(api, VOICE)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "recipient_opted_out"
    assert not Message.objects.exists()
