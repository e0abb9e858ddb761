import json
import time
from datetime import UTC, datetime

import pytest
import responses

from providers.base import OutboundMessage, Outcome, PermanentError, Verdict, WebhookRequest
from providers.sendgrid import email_content
from tests.providers.helpers import EcKey, fixture, sendgrid, sendgrid_body

SEND_URL = "https://sendgrid.test/v3/mail/send"
OUT = OutboundMessage(
    reference="42",
    type="email",
    from_address="user@usehatchapp.com",
    to_address="contact@gmail.com",
    body="Hello <b>there</b>",
    attachments=["https://example.com/doc.pdf"],
    subject="Hi",
)


@responses.activate
def test_send_speaks_v3_mail_send_and_reads_x_message_id():
    responses.post(SEND_URL, status=202, headers={"X-Message-Id": "14c5d75ce93.dfd.64b469"})

    result = sendgrid().send(OUT)

    assert result.outcome is Outcome.SUCCESS and result.provider_message_id == "14c5d75ce93.dfd.64b469"
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer SG.test"
    payload = json.loads(request.body)
    assert payload["personalizations"] == [
        {"to": [{"email": "contact@gmail.com"}], "custom_args": {"message_id": "42"}}
    ]
    assert payload["from"] == {"email": "user@usehatchapp.com"} and payload["subject"] == "Hi"
    assert [c["type"] for c in payload["content"]] == ["text/plain", "text/html"]


def test_plain_text_body_has_no_html_part_and_links_attachments():
    content = email_content("Just text", ["https://example.com/a.pdf"])

    assert content == [{"type": "text/plain", "value": "Just text\n\nAttachments:\nhttps://example.com/a.pdf"}]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, Outcome.PERMANENT),
        (401, Outcome.PERMANENT),
        (413, Outcome.PERMANENT),
        (429, Outcome.TRANSIENT),
        (500, Outcome.AMBIGUOUS),
        (202, Outcome.AMBIGUOUS),
    ],  # 202 without X-Message-Id cannot be tracked
)
@responses.activate
def test_send_classifies_every_answer(status, outcome):
    responses.post(SEND_URL, status=status, body=fixture("sendgrid/error_400.json") if status != 202 else "")

    result = sendgrid().send(OUT)

    assert result.outcome is outcome
    if status == 400:
        assert result.error == "Does not contain a valid address."


@responses.activate
def test_lookup_queries_the_activity_api_by_our_custom_arg():
    responses.get("https://sendgrid.test/v3/messages", json={"messages": [{"msg_id": "abc.filterdrecv-1"}]})

    assert sendgrid().lookup(OUT, since=datetime(2026, 1, 1, tzinfo=UTC)) == ["abc"]
    assert "unique_args%5B%27message_id%27%5D%3D%2242%22" in responses.calls[0].request.url


def _events(body: bytes, headers: dict) -> WebhookRequest:
    return WebhookRequest(url="https://svc.test/api/webhooks/providers/sendgrid/status", headers=headers, body=body)


def test_verify_checks_the_ecdsa_signature_with_any_configured_key():
    current, previous, stranger = EcKey(), EcKey(), EcKey()
    provider = sendgrid(current, previous)
    body = sendgrid_body("sendgrid/events_delivered.json")

    assert provider.verify_webhook(_events(body, current.headers(body))) is Verdict.VALID
    assert provider.verify_webhook(_events(body, previous.headers(body))) is Verdict.VALID
    assert provider.verify_webhook(_events(body, stranger.headers(body))) is Verdict.INVALID
    assert provider.verify_webhook(_events(body, {})) is Verdict.MISSING
    assert provider.verify_webhook(_events(body + b" ", current.headers(body))) is Verdict.INVALID


def test_verify_rejects_garbage_signatures():
    key = EcKey()
    body = b"[]"
    headers = key.headers(body) | {"x-twilio-email-event-webhook-signature": "not base64!"}

    assert sendgrid(key).verify_webhook(_events(body, headers)) is not Verdict.VALID


@pytest.mark.parametrize(
    ("age", "verdict"),
    [(0, Verdict.VALID), (299, Verdict.VALID), (-299, Verdict.VALID), (301, Verdict.STALE), (-301, Verdict.STALE)],
)
def test_a_correctly_signed_batch_outside_five_minutes_is_stale(age, verdict):
    key, body, now = EcKey(), sendgrid_body("sendgrid/events_delivered.json"), 1_800_000_000

    signed = _events(body, key.headers(body, timestamp=str(now - age)))

    assert sendgrid(key).verify_webhook(signed, now=now) is verdict


def test_a_week_old_batch_is_stale_and_a_forged_one_invalid_whatever_its_age():
    key, body = EcKey(), sendgrid_body("sendgrid/events_delivered.json")
    week_ago = str(int(time.time()) - 7 * 24 * 3600)
    forged = key.headers(b"[]", timestamp=week_ago)

    assert sendgrid(key).verify_webhook(_events(body, key.headers(body, timestamp=week_ago))) is Verdict.STALE
    assert sendgrid(key).verify_webhook(_events(body, forged)) is Verdict.INVALID


def test_a_signed_timestamp_that_is_not_a_number_is_invalid():
    key, body = EcKey(), b"[]"

    assert sendgrid(key).verify_webhook(_events(body, key.headers(body, timestamp="yesterday"))) is Verdict.INVALID


def test_parse_status_maps_events():
    updates = sendgrid().parse_status(_events(sendgrid_body("sendgrid/events_delivered.json"), {}))

    assert [(u.status, u.provider_status) for u in updates] == [("sent", "processed"), ("delivered", "delivered")]
    assert {u.reference for u in updates} == {"42"}
    assert {u.provider_message_id for u in updates} == {"14c5d75ce93"}
    assert updates[0].event_id == "rbtnWrG1DVDGGGFHFyun0A"


def test_bounce_is_undelivered_and_unknown_events_are_unknown():
    (bounce,) = sendgrid().parse_status(_events(sendgrid_body("sendgrid/events_bounce.json"), {}))
    (odd,) = sendgrid().parse_status(_events(sendgrid_body("sendgrid/events_bounce.json", event="teleported"), {}))

    assert bounce.status == "undelivered" and bounce.error_code == "5.0.0"
    assert odd.status == "unknown"


@pytest.mark.parametrize("body", [b"not json", b'{"event": "delivered"}'])
def test_parse_status_refuses_bodies_that_are_not_an_event_array(body):
    with pytest.raises(PermanentError):
        sendgrid().parse_status(_events(body, {}))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"event": "bounce", "type": "bounce", "status": "5.1.1"}, "bounce"),
        ({"event": "bounce", "type": "blocked", "status": "4.7.1"}, ""),  # soft: refused for now
        ({"event": "deferred", "response": "try later"}, ""),
        ({"event": "dropped", "reason": "Bounced Address"}, "bounce"),
        ({"event": "dropped", "reason": "Invalid"}, "invalid"),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, "spam_report"),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, "unsubscribe"),
        ({"event": "dropped", "reason": "Spam Content (if spam checker app enabled)"}, ""),
        ({"event": "spamreport"}, "spam_report"),
        ({"event": "unsubscribe"}, "unsubscribe"),
        ({"event": "group_unsubscribe", "asm_group_id": 7}, "unsubscribe"),
        ({"event": "delivered"}, ""),
        ({"event": "open"}, ""),
    ],
)
def test_hard_bounces_spam_reports_and_unsubscribes_call_for_a_suppression(event, reason):
    body = json.dumps([event | {"sg_message_id": "abc.filter", "sg_event_id": "e1", "message_id": "7"}]).encode()

    (update,) = sendgrid().parse_status(WebhookRequest(url="https://x/", headers={}, body=body))

    assert update.suppress == reason
