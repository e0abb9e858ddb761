"""Every SMS/MMS resource says its encoding and segments, stored when the message was
accepted or received; email has neither; smart_encoding changes what is stored and sent."""

import pytest

from conversations.selectors import account_development
from messaging.models import Message
from providers.sandbox.models import SandboxMessage
from tests.factories import EMAIL, INBOUND_EMAIL, INBOUND_SMS, MMS, SMS
from tests.metrics_helpers import value

CURLY = "\u201cYour table\u2019s ready\u201d \u2014 see you soon\u2026"


def _send(api, payload, path="/api/messages/sms"):
    response = api.post(path, payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def test_the_send_answer_and_the_stored_message_carry_encoding_and_segments(api):
    body = _send(api, SMS | {"body": "x" * 161})

    assert (body["encoding"], body["segments"]) == ("GSM-7", 2)
    stored = Message.objects.get(pk=body["id"])
    assert (stored.encoding, stored.segments) == ("GSM-7", 2)


def test_one_emoji_makes_the_message_ucs2(api):
    body = _send(api, SMS | {"body": "x" * 150 + "🙂"})

    assert (body["encoding"], body["segments"]) == ("UCS-2", 3)


def test_detail_list_and_timeline_show_the_same_figures(api):
    sent = _send(api, SMS | {"body": "[promo] 10€ off " * 12})

    detail = api.get(f"/api/messages/{sent['id']}").json()
    listed = api.get(f"/api/conversations/{sent['conversation_id']}/messages").json()["results"]

    assert (detail["encoding"], detail["segments"]) == ("GSM-7", 2)  # 204 septets: € [ ] count two
    assert [(m["encoding"], m["segments"]) for m in listed] == [("GSM-7", 2)]


def test_an_mms_counts_its_text(api):
    body = _send(api, MMS | {"body": "ж" * 71})

    assert (body["encoding"], body["segments"]) == ("UCS-2", 2)


def test_email_has_neither(api):
    body = _send(api, EMAIL, path="/api/messages/email")

    assert body["encoding"] is None and body["segments"] is None
    assert Message.objects.get(pk=body["id"]).segments is None


def test_inbound_sms_is_counted_when_received_and_inbound_email_is_not(api):
    sms = api.post("/api/webhooks/sms", INBOUND_SMS | {"body": "é" * 161}, format="json")
    email = api.post("/api/webhooks/email", INBOUND_EMAIL, format="json")

    assert (sms.json()["encoding"], sms.json()["segments"]) == ("GSM-7", 2)
    assert (email.json()["encoding"], email.json()["segments"]) == (None, None)
    assert Message.objects.get(pk=sms.json()["id"]).segments == 2


def test_the_batch_answer_has_the_figures_per_item(api):
    response = api.post(
        "/api/messages/batch",
        {"messages": [SMS | {"body": "ok"}, SMS | {"body": "ж" * 80}, EMAIL | {"type": "email"}]},
        format="json",
    )

    assert response.status_code == 202, response.content
    results = response.json()["results"]
    assert [(r["encoding"], r["segments"]) for r in results] == [("GSM-7", 1), ("UCS-2", 2), (None, None)]
    stored = Message.objects.in_bulk([r["id"] for r in results])
    assert [(stored[r["id"]].encoding, stored[r["id"]].segments) for r in results] == [
        ("GSM-7", 1),
        ("UCS-2", 2),
        ("", None),
    ]


def test_what_was_stored_is_what_is_shown(api):
    sent = _send(api, SMS)
    Message.objects.filter(pk=sent["id"]).update(segments=5)  # as billed under other rules

    assert api.get(f"/api/messages/{sent['id']}").json()["segments"] == 5


def test_a_message_stored_before_the_count_existed_is_counted_when_read(api):
    sent = _send(api, SMS | {"body": "x" * 200})
    Message.objects.filter(pk=sent["id"]).update(encoding="", segments=None)

    detail = api.get(f"/api/messages/{sent['id']}").json()

    assert (detail["encoding"], detail["segments"]) == ("GSM-7", 2)


# --- smart_encoding ------------------------------------------------------------------


def test_smart_encoding_stores_and_sends_the_gsm7_body(api, sandbox):
    sent = _send(api, SMS | {"body": CURLY, "smart_encoding": True})
    sandbox.drain(sent["id"])

    assert sent["body"] == '"Your table\'s ready" - see you soon...'
    assert sent["encoding"] == "GSM-7"
    assert Message.objects.get(pk=sent["id"]).body == sent["body"]
    assert list(SandboxMessage.objects.values_list("body", flat=True)) == [sent["body"]]


def test_without_smart_encoding_the_body_is_kept_as_written(api):
    sent = _send(api, SMS | {"body": CURLY})

    assert (sent["body"], sent["encoding"]) == (CURLY, "UCS-2")


def test_smart_encoding_in_a_batch_item(api):
    response = api.post(
        "/api/messages/batch",
        {"messages": [SMS | {"body": CURLY, "smart_encoding": True}, SMS | {"body": CURLY}]},
        format="json",
    )

    results = response.json()["results"]
    assert [r["encoding"] for r in results] == ["GSM-7", "UCS-2"]
    assert Message.objects.get(pk=results[0]["id"]).body.startswith('"Your table')


@pytest.mark.parametrize("flag", ["true", 1, "yes", None])
def test_smart_encoding_must_be_a_json_boolean(api, flag):
    response = api.post("/api/messages/sms", SMS | {"smart_encoding": flag}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["smart_encoding"]


def test_a_body_that_smart_encoding_makes_too_long_is_refused(api, settings):
    response = api.post("/api/messages/sms", SMS | {"body": "\u2026" * 600, "smart_encoding": True}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"body": ["longer than 1600 characters after smart encoding"]}
    assert not Message.objects.exists()


# --- metrics -------------------------------------------------------------------------


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_segments_are_counted_per_account(api, client):
    account = str(account_development().pk)
    before = _scrape(client)

    _send(api, SMS | {"body": "x" * 161})
    api.post("/api/webhooks/sms", INBOUND_SMS | {"body": "ж" * 71}, format="json")
    _send(api, EMAIL, path="/api/messages/email")
    after = _scrape(client)

    def moved(**labels):
        return value(after, "message_segments_total", account=account, **labels) - value(
            before, "message_segments_total", account=account, **labels
        )

    assert moved(direction="outbound", channel="sms") == 2
    assert moved(direction="inbound", channel="sms") == 2
    assert moved(channel="email") == 0
