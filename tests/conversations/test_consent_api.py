"""Opt-outs and suppressions as API resources: listed, added, removed, per account, and
every bad input a 4xx in the error envelope. Provider events suppress email addresses."""

import json
import secrets
import time

import pytest

from conversations.models import OptOut, Suppression
from conversations.services import account_create, api_key_create
from messaging.models import Message
from providers.sandbox.signing import sendgrid_sign
from providers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.factories import EMAIL, SMS, MessageFactory

US, THEM = SMS["from"], SMS["to"]


@pytest.fixture
def acme(api):
    account = account_create(name="acme", senders=[US, "@usehatchapp.com"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(account=account)[1]}")
    return account


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_an_opt_out_added_refuses_sends_until_it_is_deleted(api, acme):
    created = api.post("/api/opt-outs", {"sender": US, "address": "+1 (804) 555-1234"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["sender"], body["address"], body["source"]) == (US, THEM, "api")
    again = api.post("/api/opt-outs", {"sender": US, "address": THEM}, format="json")
    assert (again.status_code, again.json()["id"]) == (200, body["id"])

    assert api.post("/api/messages/sms", SMS, format="json").status_code == 403
    assert api.delete(f"/api/opt-outs/{body['id']}").status_code == 204
    assert api.post("/api/messages/sms", SMS, format="json").status_code == 202


def test_opt_outs_are_listed_newest_first_and_filtered(api, acme):
    for address in ("+18045550001", "+18045550002"):
        api.post("/api/opt-outs", {"sender": US, "address": address}, format="json")

    listed = api.get("/api/opt-outs").json()["results"]
    only = api.get("/api/opt-outs", {"address": "+18045550001"}).json()["results"]

    assert [o["address"] for o in listed] == ["+18045550002", "+18045550001"]
    assert [o["address"] for o in only] == ["+18045550001"]
    assert api.get(f"/api/opt-outs/{only[0]['id']}").json() == only[0]


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"sender": US, "address": "not a number"}, 400, "address"),
        ({"sender": US}, 400, "address"),
        ({"sender": US, "address": 18045551234}, 400, "address"),
        ({"sender": "+12025550000", "address": THEM}, 403, "sender"),  # not the account's number
    ],
)
def test_a_bad_opt_out_is_a_4xx_naming_the_field(api, acme, payload, status, field):
    assert field in _error(api.post("/api/opt-outs", payload, format="json"), status)["fields"]
    assert not OptOut.objects.exists()


def test_a_bad_filter_is_a_400(api, acme):
    assert "sender" in _error(api.get("/api/opt-outs", {"sender": "nope"}), 400)["fields"]
    assert "reason" in _error(api.get("/api/suppressions", {"reason": "nope"}), 400)["fields"]


def test_a_suppression_added_refuses_email_until_it_is_deleted(api, acme):
    created = api.post("/api/suppressions", {"address": "Contact@Gmail.com"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["address"], body["reason"]) == ("contact@gmail.com", "manual")

    assert _error(api.post("/api/messages/email", EMAIL, format="json"), 403)["code"] == "recipient_suppressed"
    assert api.get("/api/suppressions", {"reason": "manual"}).json()["results"][0]["id"] == body["id"]
    assert api.delete(f"/api/suppressions/{body['id']}").status_code == 204
    assert api.post("/api/messages/email", EMAIL, format="json").status_code == 202


def test_a_bad_suppression_is_a_400(api, acme):
    assert "address" in _error(api.post("/api/suppressions", {"address": "nope"}, format="json"), 400)["fields"]
    assert not Suppression.objects.exists()


def test_another_accounts_opt_outs_and_suppressions_are_404(api, acme):
    other = account_create(name="other", senders=["+12025559999"])
    optout = OptOut.objects.create(
        account=other, sender="+12025559999", address=THEM, source="api", created_at="2026-01-01T00:00Z"
    )
    suppression = Suppression.objects.create(
        account=other, address="x@example.com", reason="manual", created_at="2026-01-01T00:00Z"
    )

    assert api.get("/api/opt-outs").json()["results"] == []
    assert api.get(f"/api/opt-outs/{optout.pk}").status_code == 404
    assert api.delete(f"/api/opt-outs/{optout.pk}").status_code == 404
    assert api.get(f"/api/suppressions/{suppression.pk}").status_code == 404
    assert api.delete(f"/api/suppressions/{suppression.pk}").status_code == 404
    assert OptOut.objects.filter(pk=optout.pk).exists() and Suppression.objects.filter(pk=suppression.pk).exists()


def _sendgrid_event(api, message: Message, event: dict):
    body = json.dumps(
        [
            {
                "email": message.to_address,
                "timestamp": int(time.time()),
                "sg_event_id": secrets.token_hex(8),
                "sg_message_id": f"{message.provider_message_id}.filter1",
                "message_id": str(message.pk),
            }
            | event
        ]
    ).encode()
    timestamp = str(int(time.time()))
    response = api.post(
        "/api/webhooks/providers/sendgrid/status",
        body,
        content_type="application/json",
        **{
            "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): sendgrid_sign(timestamp, body),
            "HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_"): timestamp,
        },
    )
    assert response.status_code == 200, response.content
    return response


def _sent_email(account, to: str = "contact@gmail.com") -> Message:
    return MessageFactory(
        account=account,
        conversation__account=account,
        type="email",
        from_address="user@usehatchapp.com",
        to_address=to,
        status="sent",
        provider="sendgrid",
        provider_message_id=f"pm-{secrets.token_hex(4)}",
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"event": "bounce", "type": "bounce", "status": "5.1.1"}, "bounce"),
        ({"event": "spamreport"}, "spam_report"),
        ({"event": "unsubscribe"}, "unsubscribe"),
        ({"event": "dropped", "reason": "Invalid"}, "invalid"),
    ],
)
def test_a_hard_bounce_a_spam_report_or_an_unsubscribe_suppresses_the_address(api, acme, event, reason):
    message = _sent_email(acme)

    _sendgrid_event(api, message, event)

    suppression = Suppression.objects.get(account=acme, address=message.to_address)
    assert suppression.reason == reason and suppression.detail["provider"] == "sendgrid"
    assert _error(api.post("/api/messages/email", EMAIL, format="json"), 403)["code"] == "recipient_suppressed"


@pytest.mark.parametrize("event", [{"event": "bounce", "type": "blocked"}, {"event": "deferred"}])
def test_a_soft_bounce_does_not_suppress(api, acme, event):
    _sendgrid_event(api, _sent_email(acme), event)

    assert not Suppression.objects.exists()
    assert api.post("/api/messages/email", EMAIL, format="json").status_code == 202
