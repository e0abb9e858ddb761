"""Contacts across channels: created, changed, merged and deleted through the API, taking
their conversations with their addresses, and refusing bad input with the error envelope."""

import threading

import pytest
from django.db import connection, connections

from conversations.models import Contact, ContactAddress, Conversation
from conversations.selectors import account_development
from conversations.services import (
    AddressTaken,
    ContactGone,
    account_create,
    api_key_create,
    contact_create,
    contact_merge,
    contact_update,
)
from messaging.services import NewMessage, message_send
from tests.factories import EMAIL, INBOUND_EMAIL, SMS

PHONE = SMS["to"]  # +18045551234, the contact's number in the assignment's payloads
EMAIL_ADDRESS = EMAIL["to"]  # contact@gmail.com


def _create(api, **body):
    response = api.post("/api/contacts", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _conversation(api, payload, path="/api/messages/sms") -> Conversation:
    response = api.post(path, payload, format="json")
    assert response.status_code in (201, 202), response.content
    return Conversation.objects.get(pk=response.json()["conversation_id"])


def _fields(response) -> dict:
    return response.json()["error"]["fields"]


# --- Create, read, list -----------------------------------------------------------------


def test_a_contact_is_created_with_normalised_addresses(api):
    body = _create(api, name="Ada Lovelace", phone_numbers=["+1 (804) 555-1234"], email_addresses=["Ada@Example.COM"])

    assert body["name"] == "Ada Lovelace"
    assert body["phone_numbers"] == ["+18045551234"]
    assert body["email_addresses"] == ["ada@example.com"]
    assert body["automatic"] is False
    assert set(ContactAddress.objects.filter(contact_id=body["id"]).values_list("address", flat=True)) == {
        "+18045551234",
        "ada@example.com",
    }
    assert api.get(f"/api/contacts/{body['id']}").json() == body


def test_contacts_are_listed_newest_first_and_found_by_address(api):
    first = _create(api, name="first", phone_numbers=["+18045550101"])
    second = _create(api, name="second", email_addresses=["b@example.com"])

    listed = api.get("/api/contacts").json()["results"]
    by_phone = api.get("/api/contacts?address=%2B1-804-555-0101").json()["results"]
    by_email = api.get("/api/contacts", {"address": "B@EXAMPLE.com"}).json()["results"]

    assert [c["id"] for c in listed] == [second["id"], first["id"]]
    assert [c["id"] for c in by_phone] == [first["id"]]
    assert [c["id"] for c in by_email] == [second["id"]]


def test_finding_by_a_malformed_address_is_a_400(api):
    response = api.get("/api/contacts", {"address": "not a number"})

    assert response.status_code == 400
    assert list(_fields(response)) == ["address"]


def test_contacts_list_pages_with_a_cursor(api):
    ids = [_create(api, name=f"c{i}")["id"] for i in range(5)]

    page = api.get("/api/contacts?page_size=2").json()
    seen = [c["id"] for c in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]

    assert seen == ids[::-1]


# --- Conversations follow addresses ------------------------------------------------------


def test_a_contact_created_after_messages_exist_takes_their_conversations(api):
    sms = _conversation(api, SMS)
    email = _conversation(api, EMAIL, path="/api/messages/email")
    automatic = sms.contact
    assert automatic.automatic and email.contact.automatic

    contact = _create(api, name="Ada", phone_numbers=[PHONE], email_addresses=[EMAIL_ADDRESS])

    sms.refresh_from_db()
    email.refresh_from_db()
    assert sms.contact_id == email.contact_id == contact["id"]
    assert not Contact.objects.filter(pk=automatic.pk).exists()  # it had nothing left
    shown = api.get(f"/api/conversations/{sms.pk}").json()
    assert shown["contact"] == {"id": contact["id"], "name": "Ada"}
    assert shown["contact_id"] == contact["id"]
    listed = api.get("/api/conversations").json()["results"]
    assert {c["contact"]["id"] for c in listed} == {contact["id"]}


def test_a_new_conversation_with_a_contacts_address_is_linked_to_it(api):
    contact = _create(api, name="Ada", phone_numbers=[PHONE])

    conversation = _conversation(api, SMS | {"from": "+12016669999"})

    assert conversation.contact_id == contact["id"]
    assert Contact.objects.count() == 1


def test_adding_an_address_takes_its_conversations_and_removing_one_unlinks_them(api):
    contact = _create(api, name="Ada", phone_numbers=[PHONE])
    phone_thread = _conversation(api, SMS)
    email_thread = _conversation(api, EMAIL, path="/api/messages/email")

    added = api.patch(f"/api/contacts/{contact['id']}", {"email_addresses": [EMAIL_ADDRESS]}, format="json")
    email_thread.refresh_from_db()
    assert added.status_code == 200
    assert added.json()["phone_numbers"] == [PHONE]  # not given: kept
    assert email_thread.contact_id == contact["id"]

    removed = api.patch(f"/api/contacts/{contact['id']}", {"phone_numbers": []}, format="json")
    phone_thread.refresh_from_db()
    email_thread.refresh_from_db()
    assert removed.status_code == 200
    assert removed.json()["phone_numbers"] == [] and removed.json()["email_addresses"] == [EMAIL_ADDRESS]
    assert phone_thread.contact_id is None
    assert email_thread.contact_id == contact["id"]
    assert api.get(f"/api/conversations/{phone_thread.pk}").json()["contact"] is None


def test_renaming_an_automatic_contact_makes_it_an_ordinary_one(api):
    automatic = _conversation(api, SMS).contact

    response = api.patch(f"/api/contacts/{automatic.pk}", {"name": "Ada"}, format="json")

    assert response.status_code == 200
    assert response.json() | {"created_at": None} == {
        "id": automatic.pk,
        "name": "Ada",
        "phone_numbers": [PHONE],
        "email_addresses": [],
        "automatic": False,
        "created_at": None,
    }
    # ...so another contact can no longer take its number.
    taken = api.post("/api/contacts", {"phone_numbers": [PHONE]}, format="json")
    assert taken.status_code == 409


def test_deleting_a_contact_keeps_its_conversations_and_messages(api):
    conversation = _conversation(api, SMS)
    contact = _create(api, name="Ada", phone_numbers=[PHONE])

    response = api.delete(f"/api/contacts/{contact['id']}")

    conversation.refresh_from_db()
    assert response.status_code == 204
    assert conversation.contact_id is None and conversation.message_count == 1
    assert not ContactAddress.objects.filter(address=PHONE).exists()
    assert api.get(f"/api/contacts/{contact['id']}").status_code == 404


# --- Merge ----------------------------------------------------------------------------------


def test_merging_moves_addresses_and_conversations_and_deletes_the_other(api):
    phone_thread = _conversation(api, SMS)
    email_thread = _conversation(api, INBOUND_EMAIL, path="/api/webhooks/email")
    by_phone, by_email = phone_thread.contact, email_thread.contact
    api.patch(f"/api/contacts/{by_email.pk}", {"name": "Ada (email)"}, format="json")

    response = api.post(f"/api/contacts/{by_phone.pk}/merge", {"contact_id": by_email.pk}, format="json")

    assert response.status_code == 200
    merged = response.json()
    assert merged["id"] == by_phone.pk
    assert merged["name"] == "Ada (email)"  # it had none: it takes the other's
    assert (merged["phone_numbers"], merged["email_addresses"]) == ([PHONE], [EMAIL_ADDRESS])
    assert merged["automatic"] is False
    assert set(Conversation.objects.values_list("contact_id", flat=True)) == {by_phone.pk}
    assert not Contact.objects.filter(pk=by_email.pk).exists()


def test_a_named_contact_keeps_its_name_when_another_is_merged_in(api):
    kept = _create(api, name="Ada", phone_numbers=["+18045550101"])
    other = _create(api, name="A. Lovelace", phone_numbers=["+18045550102"])

    merged = api.post(f"/api/contacts/{kept['id']}/merge", {"contact_id": other["id"]}, format="json").json()

    assert merged["name"] == "Ada"
    assert merged["phone_numbers"] == ["+18045550101", "+18045550102"]


def test_merging_a_contact_into_itself_is_a_400(api):
    contact = _create(api, name="Ada")

    response = api.post(f"/api/contacts/{contact['id']}/merge", {"contact_id": contact["id"]}, format="json")

    assert response.status_code == 400
    assert _fields(response) == {"contact_id": ["a contact cannot be merged into itself"]}
    assert Contact.objects.filter(pk=contact["id"]).exists()


@pytest.mark.parametrize("body", [{}, {"contact_id": "abc"}, {"contact_id": 0}, {"contact_id": 2**63}, [1]])
def test_a_malformed_merge_is_a_400(api, body):
    contact = _create(api, name="Ada")

    response = api.post(f"/api/contacts/{contact['id']}/merge", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_merging_an_unknown_contact_is_a_400_naming_the_field(api):
    contact = _create(api, name="Ada")

    response = api.post(f"/api/contacts/{contact['id']}/merge", {"contact_id": 999_999}, format="json")

    assert response.status_code == 400
    assert _fields(response) == {"contact_id": ["no such contact"]}


# --- Bad input --------------------------------------------------------------------------------


def test_an_address_of_another_contact_is_a_409_naming_it(api):
    holder = _create(api, name="Ada", phone_numbers=[PHONE], email_addresses=[EMAIL_ADDRESS])

    response = api.post(
        "/api/contacts", {"phone_numbers": ["+1 804 555 1234"], "email_addresses": [EMAIL_ADDRESS]}, format="json"
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "address_in_use"
    assert error["fields"] == {
        "phone_numbers": [f"{PHONE} belongs to contact {holder['id']}"],
        "email_addresses": [f"{EMAIL_ADDRESS} belongs to contact {holder['id']}"],
    }
    assert Contact.objects.count() == 1


def test_adding_another_contacts_address_is_a_409_and_changes_nothing(api):
    holder = _create(api, name="Ada", phone_numbers=[PHONE])
    other = _create(api, name="Bob", phone_numbers=["+18045550101"])

    response = api.patch(
        f"/api/contacts/{other['id']}", {"name": "Robert", "phone_numbers": ["+18045550101", PHONE]}, format="json"
    )

    assert response.status_code == 409
    assert api.get(f"/api/contacts/{other['id']}").json()["name"] == "Bob"
    assert ContactAddress.objects.get(address=PHONE).contact_id == holder["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone_numbers": ["+1 804 555 1234", "+18045551234"]}, "phone_numbers"),
        ({"email_addresses": ["a@example.com", "A@Example.com"]}, "email_addresses"),
    ],
)
def test_the_same_address_twice_is_a_400(api, body, field):
    response = api.post("/api/contacts", body, format="json")

    assert response.status_code == 400
    assert list(_fields(response)) == [field]
    assert "listed twice" in _fields(response)[field][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone_numbers": ["+1 555 0100"]}, "phone_numbers.0"),
        ({"phone_numbers": ["8045551234"]}, "phone_numbers.0"),
        ({"phone_numbers": [18045551234]}, "phone_numbers.0"),
        ({"phone_numbers": "+18045551234"}, "phone_numbers"),
        ({"email_addresses": ["not-an-email"]}, "email_addresses.0"),
        ({"email_addresses": [None]}, "email_addresses.0"),
        ({"name": 12}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"phone_numbers": [f"+1804555{i:04d}" for i in range(21)]}, "phone_numbers"),
    ],
)
def test_bad_contact_fields_are_a_400_naming_them(api, body, field):
    response = api.post("/api/contacts", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert list(_fields(response)) == [field]
    assert not Contact.objects.exists()


def test_the_accounts_own_address_is_not_a_contacts(api):
    account_create(name="acme", senders=["+12015550101"])
    key = api_key_create(account=account_create(name="acme"))[1]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    response = api.post("/api/contacts", {"phone_numbers": ["+12015550101"]}, format="json")

    assert response.status_code == 400
    assert _fields(response) == {"phone_numbers": ["+12015550101 is one of this account's sender addresses"]}


def test_a_patch_that_names_no_field_is_a_400(api):
    contact = _create(api, name="Ada")

    response = api.patch(f"/api/contacts/{contact['id']}", {"nmae": "typo"}, format="json")

    assert response.status_code == 400
    assert "name, phone_numbers, email_addresses" in response.json()["error"]["message"]


def test_unknown_fields_are_ignored_as_on_every_endpoint(api):
    contact = _create(api, name="Ada", nickname="ada")

    assert "nickname" not in contact


def test_a_body_that_is_not_an_object_is_a_400(api):
    response = api.post("/api/contacts", [{"name": "Ada"}], format="json")

    assert response.status_code == 400


# --- Tenancy -----------------------------------------------------------------------------------


@pytest.fixture
def other_account_contact(db):
    account = account_create(name="globex", senders=["+12015550202"])
    return Contact.objects.create(account=account, name="theirs")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/contacts/{id}", None),
        ("patch", "/api/contacts/{id}", {"name": "mine now"}),
        ("delete", "/api/contacts/{id}", None),
        ("post", "/api/contacts/{id}/merge", {"contact_id": 1}),
        ("get", "/api/contacts/{id}/messages", None),
    ],
)
def test_another_accounts_contact_is_a_404_like_one_that_does_not_exist(api, other_account_contact, method, path, body):
    foreign = getattr(api, method)(path.format(id=other_account_contact.pk), body, format="json")
    missing = getattr(api, method)(path.format(id=999_999), body, format="json")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert Contact.objects.get(pk=other_account_contact.pk).name == "theirs"


def test_another_accounts_contact_cannot_be_merged_in(api, other_account_contact):
    mine = _create(api, name="Ada")

    foreign = api.post(f"/api/contacts/{mine['id']}/merge", {"contact_id": other_account_contact.pk}, format="json")
    missing = api.post(f"/api/contacts/{mine['id']}/merge", {"contact_id": 999_999}, format="json")

    assert foreign.status_code == missing.status_code == 400
    assert foreign.json() == missing.json()
    assert Contact.objects.filter(pk=other_account_contact.pk).exists()


def test_each_account_has_its_own_contact_for_one_address(api, other_account_contact):
    ContactAddress.objects.create(account=other_account_contact.account, contact=other_account_contact, address=PHONE)

    mine = _create(api, name="Ada", phone_numbers=[PHONE])

    assert mine["phone_numbers"] == [PHONE]
    assert [c["id"] for c in api.get("/api/contacts").json()["results"]] == [mine["id"]]
    assert ContactAddress.objects.get(contact=other_account_contact).address == PHONE
    assert Contact.objects.get(pk=mine["id"]).account == account_development()


# --- Races ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL) for real concurrency")
def test_simultaneous_contacts_for_one_address_make_one_and_refuse_the_rest():
    account = account_development()
    barrier = threading.Barrier(6)
    outcomes = []

    def create(i):
        try:
            barrier.wait()
            contact_create(account=account, name=f"c{i}", addresses=[PHONE])
            outcomes.append("created")
        except AddressTaken:
            outcomes.append("taken")
        except Exception as exc:
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["created"] + ["taken"] * 5
    assert ContactAddress.objects.filter(address=PHONE).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL) for real concurrency")
@pytest.mark.parametrize("number", ["+18045550101", "+18045550102", "+18045550103"])
def test_a_contact_made_while_threading_links_the_address_ends_with_every_conversation(number):
    """Sends from four numbers to one contact number, each a new conversation, while a
    contact takes that number (from the automatic contact the first send made)."""
    account = account_development()
    barrier = threading.Barrier(5)
    errors = []

    def run(step):
        try:
            barrier.wait()
            step()
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def send(i):
        new = NewMessage(type="sms", from_address=f"+1201666{i:04d}", to_address=number, body="hi")
        return lambda: message_send(account=account, new=new)

    steps = [send(i) for i in range(4)] + [lambda: contact_create(account=account, name="Ada", addresses=[number])]
    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    ada = Contact.objects.get(name="Ada")
    assert list(ContactAddress.objects.filter(address=number).values_list("contact_id", flat=True)) == [ada.pk]
    # Whichever came first, every conversation with the number ends with Ada: none with
    # the automatic contact she took the number from, none without a contact.
    assert list(Conversation.objects.values_list("contact_id", flat=True)) == [ada.pk] * 4
    assert Contact.objects.count() == 1


def test_changing_or_merging_into_a_contact_deleted_meanwhile_says_it_is_gone(api):
    account = account_development()
    stale = contact_create(account=account, name="Ada")
    other = contact_create(account=account, name="Bob")
    Contact.objects.filter(pk=stale.pk).delete()

    with pytest.raises(ContactGone):
        contact_update(contact=stale, name="Ada L.")
    with pytest.raises(ContactGone):
        contact_merge(contact=stale, other=other)
    assert Contact.objects.get(pk=other.pk).name == "Bob"
