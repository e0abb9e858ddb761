import time
from urllib.parse import urlencode

import pytest

from conversations.models import Conversation
from messaging.models import Message
from tests.factories import INBOUND_EMAIL, INBOUND_MMS, INBOUND_SMS
from tests.providers.helpers import twilio_form, twilio_signed_headers
from webhooks.models import WebhookEvent
from webhooks.signatures import sign


def test_new_inbound_sms_is_201_with_the_stored_message(api):
    response = api.post("/api/webhooks/sms", INBOUND_SMS, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["direction"] == "inbound" and body["status"] == "received"
    assert body["provider"] == "messaging_provider" and body["provider_message_id"] == "message-1"
    assert WebhookEvent.objects.get().outcome == "processed"


def test_duplicate_inbound_is_200_with_the_same_message_and_counts_once(api):
    first = api.post("/api/webhooks/sms", INBOUND_SMS, format="json")
    second = api.post("/api/webhooks/sms", INBOUND_SMS, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Message.objects.count() == 1
    assert Conversation.objects.get().message_count == 1
    assert list(WebhookEvent.objects.order_by("id").values_list("outcome", flat=True)) == ["processed", "duplicate"]


def test_same_provider_id_from_different_providers_are_different_messages(api):
    api.post("/api/webhooks/sms", INBOUND_MMS, format="json")  # messaging_provider_id "message-2"
    response = api.post("/api/webhooks/email", INBOUND_EMAIL | {"xillio_id": "message-2"}, format="json")

    assert response.status_code == 201
    assert Message.objects.count() == 2


def test_inbound_email_is_stored_with_its_html(api):
    body = api.post("/api/webhooks/email", INBOUND_EMAIL, format="json").json()

    assert body["type"] == "email" and "<b>HTML</b>" in body["body"]
    assert body["attachments"] == ["https://example.com/received-document.pdf"]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/webhooks/sms", INBOUND_SMS | {"messaging_provider_id": ""}, "messaging_provider_id"),
        (
            "/api/webhooks/sms",
            {k: v for k, v in INBOUND_SMS.items() if k != "messaging_provider_id"},
            "messaging_provider_id",
        ),
        ("/api/webhooks/sms", INBOUND_SMS | {"from": "nope"}, "from"),
        ("/api/webhooks/sms", INBOUND_MMS | {"attachments": []}, "attachments"),
        ("/api/webhooks/email", INBOUND_EMAIL | {"to": "not-an-email"}, "to"),
        ("/api/webhooks/email", {k: v for k, v in INBOUND_EMAIL.items() if k != "xillio_id"}, "xillio_id"),
        # Strings only: a number is a client's bug to report, not text to store.
        ("/api/webhooks/sms", INBOUND_SMS | {"body": 12345}, "body"),
        ("/api/webhooks/sms", INBOUND_SMS | {"messaging_provider_id": 42}, "messaging_provider_id"),
        ("/api/webhooks/email", INBOUND_EMAIL | {"subject": ["a"]}, "subject"),
    ],
)
def test_bad_inbound_payload_is_a_400_and_stores_nothing(api, path, payload, field):
    response = api.post(path, payload, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Message.objects.exists() and not WebhookEvent.objects.exists()


def test_signed_webhook_is_accepted_and_marked_signed(api, settings):
    settings.WEBHOOK_SECRETS = ["current-secret"]
    body = b'{"from": "+18045551234", "to": "+12016661234", "messaging_provider_id": "s1", "body": "hi"}'
    timestamp = str(int(time.time()))

    response = api.post(
        "/api/webhooks/sms",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign("current-secret", timestamp, body),
        HTTP_X_SIGNATURE_TIMESTAMP=timestamp,
    )

    assert response.status_code == 201
    assert WebhookEvent.objects.get().signed


@pytest.mark.parametrize(
    ("secret", "age", "reason"),
    [("wrong-secret", 0, "does not match"), ("current-secret", 600, "outside the allowed window")],
)
def test_badly_signed_webhook_is_a_401(api, settings, secret, age, reason):
    settings.WEBHOOK_SECRETS = ["current-secret"]
    body = b'{"from": "+18045551234", "to": "+12016661234", "messaging_provider_id": "s1", "body": "hi"}'
    timestamp = str(int(time.time()) - age)

    response = api.post(
        "/api/webhooks/sms",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(secret, timestamp, body),
        HTTP_X_SIGNATURE_TIMESTAMP=timestamp,
    )

    assert response.status_code == 401
    assert reason in response.json()["error"]["message"]
    assert not Message.objects.exists()


def test_twilio_format_inbound_is_verified_and_stored(api, settings):
    form = twilio_form("twilio/inbound_mms.form")
    url = f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/twilio/inbound"

    response = api.post(
        "/api/webhooks/providers/twilio/inbound",
        urlencode(form, doseq=True),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=twilio_signed_headers(url, form, settings.TWILIO_AUTH_TOKEN)["x-twilio-signature"],
    )

    assert response.status_code == 201
    message = Message.objects.get()
    assert (message.type, message.provider, message.direction) == ("mms", "twilio", "inbound")
