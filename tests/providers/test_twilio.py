from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
import requests
import responses

from providers.base import OutboundMessage, Outcome, TransientError, Verdict, WebhookRequest
from providers.twilio import twilio_signature
from tests.providers.helpers import TOKEN, fixture, twilio, twilio_form, twilio_signed_headers

MESSAGES_URL = "https://twilio.test/2010-04-01/Accounts/AC1/Messages.json"
OUT = OutboundMessage(
    reference="42",
    type="mms",
    from_address="+12016661234",
    to_address="+18045551234",
    body="Hello",
    attachments=["https://example.com/a.jpg", "https://example.com/b.jpg"],
)


def test_signature_matches_twilios_published_vector():
    params = {
        "CallSid": ["CA1234567890ABCDE"],
        "Caller": ["+14158675309"],
        "Digits": ["1234"],
        "From": ["+14158675309"],
        "To": ["+18005551212"],
    }

    assert (
        twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
        == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )


@responses.activate
def test_send_posts_twilios_form_with_basic_auth_and_our_reference():
    responses.post(MESSAGES_URL, body=fixture("twilio/message_created.json"), status=201)

    result = twilio().send(OUT)

    assert result.outcome is Outcome.SUCCESS
    assert result.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    sent = parse_qs(request.body)
    assert sent["To"] == ["+18045551234"] and sent["From"] == ["+12016661234"] and sent["Body"] == ["Hello"]
    assert sent["MediaUrl"] == ["https://example.com/a.jpg", "https://example.com/b.jpg"]
    assert sent["StatusCallback"] == ["https://svc.test/api/webhooks/providers/twilio/status?ref=42"]


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome", "retry_after"),
    [
        (400, fixture("twilio/error_21211.json"), {}, Outcome.PERMANENT, None),
        (401, '{"code": 20003, "message": "Authenticate"}', {}, Outcome.PERMANENT, None),
        (429, '{"code": 20429, "message": "Too Many Requests"}', {"Retry-After": "7"}, Outcome.TRANSIENT, 7.0),
        (500, '{"code": 20500, "message": "Internal Server Error"}', {}, Outcome.AMBIGUOUS, None),
        (503, "<html>busy</html>", {}, Outcome.AMBIGUOUS, None),
        (201, "{}", {}, Outcome.AMBIGUOUS, None),  # accepted, but no sid to know it by
    ],
)
@responses.activate
def test_send_classifies_every_answer(status, body, headers, outcome, retry_after):
    responses.post(MESSAGES_URL, body=body, status=status, headers=headers)

    result = twilio().send(OUT)

    assert result.outcome is outcome
    assert result.retry_after == retry_after
    assert result.http_status == status


@responses.activate
def test_send_reads_twilios_error_code_and_message():
    responses.post(MESSAGES_URL, body=fixture("twilio/error_21211.json"), status=400)

    result = twilio().send(OUT)

    assert result.error_code == "21211"
    assert "not a valid phone number" in result.error


@responses.activate
def test_read_timeout_is_ambiguous_and_refused_connection_is_transient():
    responses.post(MESSAGES_URL, body=requests.ReadTimeout("slow"))
    assert twilio().send(OUT).outcome is Outcome.AMBIGUOUS

    refused = twilio(base_url="http://127.0.0.1:1")  # nothing listens there
    with responses.RequestsMock() as mock:
        mock.add_passthru("http://127.0.0.1:1")
        assert refused.send(OUT).outcome is Outcome.TRANSIENT


@responses.activate
def test_lookup_matches_body_oldest_first():
    responses.get(
        MESSAGES_URL,
        json={
            "messages": [
                {"sid": "SM3", "body": "Hello", "date_created": "Thu, 24 Nov 2026 11:00:03 +0000"},
                {"sid": "SM2", "body": "Other", "date_created": "Thu, 24 Nov 2026 11:00:02 +0000"},
                {"sid": "SM1", "body": "Hello", "date_created": "Thu, 24 Nov 2026 11:00:01 +0000"},
            ]
        },
    )
    found = twilio().lookup(OUT, since=datetime(2026, 11, 24, tzinfo=UTC))

    assert found == ["SM1", "SM3"]
    assert "To=%2B18045551234" in responses.calls[0].request.url


@responses.activate
def test_failed_lookup_raises_so_nothing_is_resent():
    responses.get(MESSAGES_URL, status=500)
    with pytest.raises(TransientError):
        twilio().lookup(OUT, since=datetime(2026, 11, 24, tzinfo=UTC))


def _webhook(form, url="https://svc.test/api/webhooks/providers/twilio/status?ref=42", token=TOKEN, headers=None):
    return WebhookRequest(
        url=url,
        headers=headers if headers is not None else twilio_signed_headers(url, form, token),
        body=b"",
        form=form,
    )


def test_verify_accepts_the_current_and_previous_tokens_only():
    form = twilio_form("twilio/status_delivered.form")
    provider = twilio(previous_auth_tokens=["old-token"])

    assert provider.verify_webhook(_webhook(form)) is Verdict.VALID
    assert provider.verify_webhook(_webhook(form, token="old-token")) is Verdict.VALID
    assert provider.verify_webhook(_webhook(form, token="someone-else")) is Verdict.INVALID
    assert provider.verify_webhook(_webhook(form, headers={})) is Verdict.MISSING


def _sdk_signed(url: str, form: dict[str, list[str]]) -> dict:
    """Signed by twilio's own RequestValidator, not by our code."""
    from django.http import QueryDict
    from twilio.request_validator import RequestValidator

    query = QueryDict(mutable=True)
    for name, values in form.items():
        query.setlist(name, values)
    return {"x-twilio-signature": RequestValidator(TOKEN).compute_signature(url, query)}


def test_a_repeated_field_signed_by_the_sdk_verifies_whatever_the_arrival_order():
    url = "https://svc.test/api/webhooks/providers/twilio/status?ref=42"
    form = twilio_form("twilio/status_delivered.form") | {"MediaUrl0": ["b", "a", "c"]}

    request = WebhookRequest(url=url, headers=_sdk_signed(url, form), body=b"", form=form)

    assert twilio().verify_webhook(request) is Verdict.VALID


def test_a_signature_over_the_url_with_its_default_port_verifies():
    form = twilio_form("twilio/status_delivered.form")
    signed_with_port = _sdk_signed("https://svc.test:443/api/webhooks/providers/twilio/status?ref=42", form)

    request = WebhookRequest(
        url="https://svc.test/api/webhooks/providers/twilio/status?ref=42",
        headers=signed_with_port,
        body=b"",
        form=form,
    )

    assert twilio().verify_webhook(request) is Verdict.VALID


def test_verify_rejects_a_tampered_status_or_url():
    form = twilio_form("twilio/status_delivered.form")
    request = _webhook(form)
    tampered = WebhookRequest(
        url=request.url, headers=request.headers, body=b"", form=form | {"MessageStatus": ["failed"]}
    )
    moved = WebhookRequest(url=request.url.replace("ref=42", "ref=43"), headers=request.headers, body=b"", form=form)

    assert twilio().verify_webhook(tampered) is not Verdict.VALID
    assert twilio().verify_webhook(moved) is not Verdict.VALID


@pytest.mark.parametrize(
    ("fixture_name", "status", "error_code"),
    [("twilio/status_delivered.form", "delivered", ""), ("twilio/status_undelivered.form", "undelivered", "30005")],
)
def test_parse_status_maps_twilio_statuses(fixture_name, status, error_code):
    (update,) = twilio().parse_status(_webhook(twilio_form(fixture_name)))

    assert update.status == status
    assert update.reference == "42"
    assert update.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert update.error_code == error_code
    assert update.event_id == f"SM1f0e8ae6ade43cb3c0ce4525424e404f:{status}"


def test_unknown_twilio_status_maps_to_unknown_and_is_not_raised():
    form = twilio_form("twilio/status_delivered.form") | {"MessageStatus": ["teleported"]}

    (update,) = twilio().parse_status(_webhook(form))

    assert update.status == "unknown" and update.provider_status == "teleported"


def test_parse_inbound_reads_media():
    (message,) = twilio().parse_inbound(_webhook(twilio_form("twilio/inbound_mms.form")))

    assert message.type == "mms"
    assert message.from_address == "+18045551234" and message.to_address == "+12016661234"
    assert message.attachments[0].endswith("/Media/ME1")
    assert message.provider_message_id == "MM09b4f3c7b1a8e2f5d6c9a0b1c2d3e4f5"
