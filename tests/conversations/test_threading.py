import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from hypothesis import given
from hypothesis import strategies as st

from conversations.addresses import normalize_email, normalize_phone, participant_pair
from conversations.models import Contact, Conversation
from conversations.selectors import account_development
from messaging.models import Message
from messaging.services import NewMessage, message_send
from tests.factories import SMS


def test_reply_lands_in_the_same_conversation(api):
    out = api.post("/api/messages/sms", SMS, format="json").json()
    reply = api.post(
        "/api/webhooks/sms",
        {"from": SMS["to"], "to": SMS["from"], "type": "sms", "messaging_provider_id": "r1", "body": "hi back"},
        format="json",
    ).json()

    assert reply["conversation_id"] == out["conversation_id"]


def test_different_spellings_of_one_number_share_a_thread(api):
    a = api.post("/api/messages/sms", SMS | {"to": "+1 804 555 1234"}, format="json").json()
    b = api.post("/api/messages/sms", SMS | {"to": "+1-804-555-1234"}, format="json").json()

    assert a["conversation_id"] == b["conversation_id"]


def test_email_case_does_not_split_a_thread(api):
    email = {"from": "User@UseHatchApp.com", "to": "contact@gmail.com", "body": "hi"}
    a = api.post("/api/messages/email", email, format="json").json()
    b = api.post(
        "/api/messages/email", email | {"from": "user@usehatchapp.com", "to": "CONTACT@gmail.com"}, format="json"
    ).json()

    assert a["conversation_id"] == b["conversation_id"]


def test_a_third_party_gets_its_own_thread(api):
    a = api.post("/api/messages/sms", SMS, format="json").json()
    b = api.post("/api/messages/sms", SMS | {"to": "+18045559999"}, format="json").json()

    assert a["conversation_id"] != b["conversation_id"]


addresses = st.one_of(st.emails(), st.from_regex(r"\+1[2-9]\d{2}[2-9]\d{6}", fullmatch=True))


@given(addresses, addresses)
def test_participant_pair_is_symmetric(a, b):
    assert participant_pair(a, b) == participant_pair(b, a)
    assert sorted(participant_pair(a, b)) == list(participant_pair(a, b))


us_numbers = st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True).filter(
    lambda n: n[1:3] != "11" and n[4:6] != "11"  # N11 codes are services, not numbers
)


@given(us_numbers, st.sampled_from(["+1{a}{b}{c}", "+1 ({a}) {b}-{c}", " +1-{a}-{b}-{c} ", "+1.{a}.{b}.{c}"]))
def test_any_spelling_of_a_number_normalises_to_one_e164_form(digits, spelling):
    written = spelling.format(a=digits[:3], b=digits[3:6], c=digits[6:])
    try:
        once = normalize_phone(written)
    except ValidationError:
        return  # not an assigned range: refusing it is right, and checked elsewhere
    assert once == f"+1{digits}"
    assert normalize_phone(once) == once


@given(st.emails())
def test_email_normalisation_is_idempotent_and_case_blind(email):
    once = normalize_email(email)

    assert normalize_email(once) == once
    assert normalize_email(email.upper()) == once


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL) for real concurrency")
def test_simultaneous_first_messages_make_one_conversation():
    account = account_development()
    barrier = threading.Barrier(8)
    errors = []

    def send(i):
        try:
            barrier.wait()
            message_send(
                account=account,
                new=NewMessage(type="sms", from_address="+12016661234", to_address="+18045551234", body=f"race {i}"),
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().message_count == 8
    assert Message.objects.count() == 8
    # Each racer may make a contact for the new address; one wins, the rest are dropped.
    assert Contact.objects.count() == 1
    assert Conversation.objects.get().contact_id == Contact.objects.get().pk


def test_two_threads_with_one_contact_address_share_the_contact(api):
    first = api.post("/api/messages/sms", SMS, format="json").json()
    second = api.post("/api/messages/sms", SMS | {"from": "+12016669999"}, format="json").json()

    conversations = Conversation.objects.in_bulk([first["conversation_id"], second["conversation_id"]])
    assert len(conversations) == 2
    assert len({c.contact_id for c in conversations.values()}) == 1
    assert None not in {c.contact_id for c in conversations.values()}


def test_a_number_normalised_again_answers_the_same_and_a_wrong_one_stays_refused():
    # Normalisations are kept per process (conversations/addresses.py); refusals are not.
    assert normalize_phone(" +1 (804) 555-1234") == normalize_phone("+18045551234") == "+18045551234"
    for _ in range(2):
        with pytest.raises(ValidationError, match="not a valid phone number"):
            normalize_phone("+1555")
