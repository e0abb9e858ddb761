from django.conf import settings

from tests.factories import SANDBOX_TWILIO_AUTH, SANDBOX_TWILIO_CREATE

AUTH, CREATE = SANDBOX_TWILIO_AUTH, SANDBOX_TWILIO_CREATE


def test_twilio_create_needs_basic_auth(client, db):
    response = client.post(CREATE, {"To": "+18045551234", "From": "+12016661234", "Body": "hi"})

    assert response.status_code == 401
    assert response.json()["code"] == 20003


def test_twilio_create_validates_like_twilio(client, db):
    response = client.post(CREATE, {"From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH)

    assert response.status_code == 400 and response.json()["code"] == 21604


def test_accepted_messages_can_be_counted(client, db):
    client.post(CREATE, {"To": "+18045551234", "From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH)
    client.post(CREATE, {"To": "+18045550000", "From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH)

    body = client.get("/sandbox/messages?to=%2B18045551234").json()

    assert body["count"] == 1
    assert body["messages"][0]["sid"].startswith("SM")


def test_a_provider_instance_can_be_taken_down_and_back_up(client, db):
    client.post("/sandbox/control", {"label": "twilio", "down": True}, content_type="application/json")
    down = client.post(CREATE, {"To": "+18045551234", "From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH)
    client.post("/sandbox/control", {"label": "twilio", "down": False}, content_type="application/json")
    up = client.post(CREATE, {"To": "+18045551234", "From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH)

    assert (down.status_code, up.status_code) == (503, 201)


def test_control_refuses_nonsense(client, db):
    response = client.post("/sandbox/control", "{}", content_type="application/json")

    assert response.status_code == 400


def test_sendgrid_send_answers_202_with_a_message_id(client, db):
    payload = {
        "personalizations": [{"to": [{"email": "contact@gmail.com"}], "custom_args": {"message_id": "7"}}],
        "from": {"email": "user@usehatchapp.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
    }

    response = client.post(
        "/sandbox/sendgrid/v3/mail/send",
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {settings.SENDGRID_API_KEY}",
    )

    assert response.status_code == 202 and response["X-Message-Id"]
    assert client.get("/sandbox/messages?reference=7").json()["count"] == 1
