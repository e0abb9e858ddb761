"""Who said STOP is respected: keywords opt numbers out and back in and are answered, a
send to an opted-out number or a suppressed address is refused with nothing stored, and
a message queued before the STOP fails instead of going out."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import Conversation, OptOut, Suppression
from conversations.services import account_create, api_key_create, optout_add, suppression_add
from messaging.models import Message
from tests.factories import EMAIL, INBOUND_SMS, SMS

US, THEM = SMS["from"], SMS["to"]  # the account's number, the recipient's


def _as_account(api, *senders: str):
    """The API as an account of its own that owns `senders` (and so their inbound)."""
    account = account_create(name="acme", senders=list(senders))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(account=account)[1]}")
    return account


def _inbound(api, body: str, provider_id: str, **change):
    response = api.post(
        "/api/webhooks/sms", INBOUND_SMS | {"body": body, "messaging_provider_id": provider_id} | change, format="json"
    )
    assert response.status_code in (200, 201), response.content
    return response


def _replies(to: str = THEM) -> list[str]:
    return list(
        Message.objects.filter(direction="outbound", to_address=to).order_by("id").values_list("body", flat=True)
    )


def test_stop_refuses_the_next_send_and_start_accepts_it_again(api):
    _inbound(api, "STOP", "in-1")

    refused = api.post("/api/messages/sms", SMS, format="json")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "recipient_opted_out" and "to" in error["fields"]
    assert "START" in error["message"]

    _inbound(api, " start ", "in-2")
    assert api.post("/api/messages/sms", SMS, format="json").status_code == 202


def test_each_keyword_is_answered_once_from_the_number_it_was_sent_to(api, settings):
    _inbound(api, "stop", "in-1")
    _inbound(api, "stop", "in-1")  # the provider delivered it twice
    _inbound(api, "Help", "in-2")
    _inbound(api, "UNSTOP", "in-3")

    replies = Message.objects.filter(direction="outbound", to_address=THEM).order_by("id")
    assert [m.body for m in replies] == [
        settings.CONSENT_REPLIES["opt_out"],
        settings.CONSENT_REPLIES["help"],
        settings.CONSENT_REPLIES["opt_in"],
    ]
    assert {(m.from_address, m.status) for m in replies} == {(US, "queued")}


def test_an_account_answers_keywords_in_its_own_words(api):
    account = _as_account(api, US)
    account.help_reply = "Acme alerts: help at acme.example. Reply STOP to stop."
    account.save()

    _inbound(api, "INFO", "in-1")

    assert _replies() == ["Acme alerts: help at acme.example. Reply STOP to stop."]


def test_a_keyword_inside_a_sentence_is_just_a_message(api):
    _inbound(api, "please stop sending me these", "in-1")

    assert not OptOut.objects.exists() and _replies() == []
    assert api.post("/api/messages/sms", SMS, format="json").status_code == 202


def test_an_opt_out_is_per_sender(api):
    _as_account(api, US, "+12016669999")
    _inbound(api, "STOP", "in-1")

    assert api.post("/api/messages/sms", SMS, format="json").status_code == 403
    assert api.post("/api/messages/sms", SMS | {"from": "+12016669999"}, format="json").status_code == 202


def test_a_refused_send_stores_nothing_not_even_a_conversation(api):
    account = _as_account(api, US)
    optout_add(account=account, sender=US, address=THEM, source="api")

    assert api.post("/api/messages/sms", SMS, format="json").status_code == 403
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_a_message_queued_before_the_stop_fails_instead_of_going_out(api, sandbox):
    queued = api.post("/api/messages/sms", SMS, format="json").json()["id"]
    _inbound(api, "STOP", "in-1")

    message = sandbox.drain(queued)

    assert (message.status, message.failure_reason) == ("failed", "opted_out")
    assert sandbox.sent_to(THEM) == 0 and not message.delivery_attempts.exists()
    # ...while the confirmation of the STOP, queued after it, does go out.
    reply = Message.objects.get(direction="outbound", to_address=THEM, body__startswith="You have successfully")
    assert sandbox.drain(reply.pk).status == "delivered"


def test_a_suppressed_email_address_is_refused(api):
    account = _as_account(api, EMAIL["from"])
    suppression_add(account=account, address=EMAIL["to"], reason=Suppression.Reason.BOUNCE)

    response = api.post("/api/messages/email", EMAIL | {"to": EMAIL["to"].upper()}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "recipient_suppressed"
    assert not Message.objects.exists()


def test_an_email_suppressed_after_it_was_queued_fails(api, sandbox):
    queued = api.post("/api/messages/email", EMAIL, format="json").json()["id"]
    account = Message.objects.get(pk=queued).account
    suppression_add(account=account, address=EMAIL["to"], reason=Suppression.Reason.SPAM_REPORT)

    message = sandbox.drain(queued)

    assert (message.status, message.failure_reason) == ("failed", "suppressed")
    assert sandbox.sent_to(EMAIL["to"]) == 0


def test_consent_does_not_touch_inbound_messages(api):
    account = _as_account(api, US)
    optout_add(account=account, sender=US, address=THEM, source="api")

    response = _inbound(api, "Hello again", "in-1")

    assert response.status_code == 201  # someone who opted out may still write to us


def test_a_batch_refuses_opted_out_and_suppressed_recipients_per_item_and_sends_the_rest(api):
    account = _as_account(api, US, "+12016669999", EMAIL["from"])
    optout_add(account=account, sender=US, address=THEM, source="api")
    suppression_add(account=account, address=EMAIL["to"], reason=Suppression.Reason.BOUNCE)
    email = EMAIL | {"type": "email"}
    items = [
        SMS,  # opted out of US
        SMS | {"from": "+12016669999"},  # an opt-out is per sender: this one may write
        email | {"to": EMAIL["to"].upper()},  # suppressed, whatever its spelling
        SMS | {"to": "+18045550002"},
        email | {"to": "someone.else@example.com"},
        SMS | {"type": "mms", "attachments": ["https://example.com/a.png"]},  # an MMS too
    ]
    singles = [api.post("/api/messages/sms", SMS, format="json"), api.post("/api/messages/email", EMAIL, format="json")]

    response = api.post("/api/messages/batch", {"messages": items}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 3)
    results = body["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        "recipient_opted_out",
        None,
        "recipient_suppressed",
        None,
        None,
        "recipient_opted_out",
    ]
    # The same code, message and fields as the single send's 403.
    assert results[0]["error"] == singles[0].json()["error"]
    assert results[2]["error"] == singles[1].json()["error"]
    assert set(Message.objects.values_list("to_address", "from_address")) == {
        (THEM, "+12016669999"),
        ("+18045550002", US),
        ("someone.else@example.com", EMAIL["from"]),
    }
    assert not Conversation.objects.filter(participant_b__in=[EMAIL["to"]]).exists()


def test_a_batch_looks_up_consent_once_per_kind_not_per_item(api):
    account = _as_account(api, US, EMAIL["from"])
    optout_add(account=account, sender=US, address="+18045550007", source="api")
    items = [SMS | {"to": f"+1804555{i:04d}"} for i in range(100)]
    items += [EMAIL | {"type": "email", "to": f"r{i}@example.com"} for i in range(100)]

    with CaptureQueriesContext(connection) as queries:
        body = api.post("/api/messages/batch", {"messages": items}, format="json").json()

    assert (body["accepted"], body["rejected"]) == (199, 1)
    assert body["results"][7]["error"]["code"] == "recipient_opted_out"
    tables = ('FROM "conversations_optout"', 'FROM "conversations_suppression"')
    consent = [q["sql"] for q in queries if any(table in q["sql"] for table in tables)]
    assert len(consent) == 2, consent


def test_a_batch_whose_every_recipient_said_stop_is_a_400_naming_each(api):
    account = _as_account(api, US)
    optout_add(account=account, sender=US, address=THEM, source="api")

    response = api.post("/api/messages/batch", {"messages": [SMS, SMS]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "messages.0.to": ["opted out of messages from this sender"],
        "messages.1.to": ["opted out of messages from this sender"],
    }
    assert not Message.objects.exists() and not Conversation.objects.exists()
