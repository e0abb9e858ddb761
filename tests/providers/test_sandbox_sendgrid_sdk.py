"""The sandbox's SendGrid face, fed the bodies the official `sendgrid` SDK builds
(`Mail(...).get()` is exactly what `SendGridAPIClient.send` posts)."""

from datetime import UTC, datetime

import pytest
import responses
from django.conf import settings
from django.test import Client as DjangoClient
from sendgrid.helpers.mail import Bcc, Cc, CustomArg, Mail, Personalization, To

from providers.base import OutboundMessage
from providers.registry import provider_get
from providers.sandbox.models import SandboxMessage
from tests.sandbox_harness import forward

SEND = "/sandbox/sendgrid/v3/mail/send"


def _post(client, body: dict):
    return client.post(
        SEND, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {settings.SENDGRID_API_KEY}"
    )


def _stored() -> list[tuple[str, str, str]]:
    return list(SandboxMessage.objects.order_by("id").values_list("to_address", "reference", "subject"))


def test_every_recipient_of_every_personalization_is_kept(client, db):
    mail = Mail(
        from_email="team@usehatchapp.com",
        to_emails=[To("ann@example.com"), To("bob@example.com")],
        subject="Hello",
        plain_text_content="hi",
        is_multiple=True,
    )
    extra = Personalization()
    extra.add_to(To("cat@example.com"))
    extra.add_cc(Cc("dan@example.com"))
    extra.add_bcc(Bcc("eve@example.com"))
    mail.add_personalization(extra)

    response = _post(client, mail.get())

    assert response.status_code == 202
    assert sorted(to for to, _, _ in _stored()) == [
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
        "dan@example.com",
        "eve@example.com",
    ]
    sids = SandboxMessage.objects.values_list("sid", flat=True)
    assert {sid.split(".")[0] for sid in sids} == {response["X-Message-Id"]}


def test_mail_level_custom_args_apply_unless_a_personalization_overrides_them(client, db):
    mail = Mail(from_email="team@usehatchapp.com", to_emails="ann@example.com", subject="s", plain_text_content="x")
    mail.custom_arg = CustomArg("message_id", "42")
    own = Personalization()
    own.add_to(To("bob@example.com"))
    own.add_custom_arg(CustomArg("message_id", "43"))
    mail.add_personalization(own)

    assert _post(client, mail.get()).status_code == 202
    assert sorted((to, ref) for to, ref, _ in _stored()) == [("ann@example.com", "42"), ("bob@example.com", "43")]


def test_a_template_send_needs_no_content_or_subject(client, db):
    mail = Mail(from_email="team@usehatchapp.com", to_emails="ann@example.com")
    mail.template_id = "d-0123456789abcdef0123456789abcdef"
    mail.dynamic_template_data = {"first_name": "Ann"}

    response = _post(client, mail.get())

    assert response.status_code == 202, response.content
    assert _stored() == [("ann@example.com", "", "")]


def test_a_personalization_subject_stands_in_for_the_mails(client, db):
    body = {
        "personalizations": [{"to": [{"email": "ann@example.com"}], "subject": "Just for Ann"}],
        "from": {"email": "team@usehatchapp.com"},
        "content": [{"type": "text/plain", "value": "x"}],
    }

    assert _post(client, body).status_code == 202
    assert _stored() == [("ann@example.com", "", "Just for Ann")]


def test_every_error_is_reported_at_once_with_its_field(client, db):
    body = {
        "personalizations": [{"to": [{"email": "ann@example.com"}]}, {"to": [{"email": "not-an-address"}]}],
        "from": {"email": "team@usehatchapp.com"},
        "content": [{"type": "text/plain", "value": ""}],
    }

    response = _post(client, body)

    assert response.status_code == 400
    fields = [error["field"] for error in response.json()["errors"]]
    assert fields == ["personalizations.1.to.0.email", "subject", "content.0.value"]
    assert SandboxMessage.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"from": {"email": "a@b.co"}, "subject": "s", "content": [{"type": "text/plain", "value": "x"}]},
            "personalizations",
        ),
        (
            {
                "personalizations": [{"to": []}],
                "from": {"email": "a@b.co"},
                "subject": "s",
                "content": [{"type": "text/plain", "value": "x"}],
            },
            "personalizations.0.to",
        ),
        (
            {
                "personalizations": [{"to": [{"email": "a@b.co"}]}],
                "subject": "s",
                "content": [{"type": "text/plain", "value": "x"}],
            },
            "from",
        ),
        ({"personalizations": [{"to": [{"email": "a@b.co"}]}], "from": {"email": "a@b.co"}, "subject": "s"}, "content"),
        (
            {
                "personalizations": [{"to": [{"email": "a@b.co"}]}],
                "from": {"email": "a@b.co"},
                "subject": "s",
                "content": [{"type": "text/plain", "value": "x"}],
                "custom_args": ["x"],
            },
            "custom_args",
        ),
    ],
)
def test_what_sendgrid_requires_is_required(client, db, body, field):
    response = _post(client, body)

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]


def test_a_body_that_is_not_an_object_is_a_400(client, db):
    for raw in ("[]", "not json", '"text"'):
        response = client.post(
            SEND, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {settings.SENDGRID_API_KEY}"
        )
        assert response.status_code == 400, raw
        assert response.json()["errors"][0]["message"]


def test_a_rejected_recipient_refuses_the_whole_send_and_names_it(client, db):
    mail = Mail(
        from_email="team@usehatchapp.com",
        to_emails=[To("ann@example.com"), To("permanent@fail.test")],
        subject="s",
        plain_text_content="x",
    )

    response = _post(client, mail.get())

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "personalizations.0.to.1.email"
    assert SandboxMessage.objects.count() == 0


def test_the_adapter_finds_each_recipients_message_through_the_activity_api(client, db):
    mail = Mail(from_email="team@usehatchapp.com", to_emails="ann@example.com", subject="s", plain_text_content="x")
    mail.custom_arg = CustomArg("message_id", "77")
    message_id = _post(client, mail.get())["X-Message-Id"]
    provider = provider_get("sendgrid")
    web = DjangoClient()

    with responses.RequestsMock() as mock:
        mock.add_callback(
            "GET",
            f"{provider.options['base_url']}/v3/messages",
            callback=lambda request: forward(web, request, "/sandbox/sendgrid/v3/messages"),
        )
        found = provider.lookup(
            OutboundMessage(
                reference="77",
                type="email",
                from_address="team@usehatchapp.com",
                to_address="ann@example.com",
                body="x",
            ),
            since=datetime(2026, 1, 1, tzinfo=UTC),
        )

    assert found == [message_id]
