"""Contacts in the admin: their addresses and conversations, and address changes that go
through the same rules as the API."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import Contact, ContactAddress, Conversation
from conversations.selectors import account_development
from conversations.services import contact_create
from tests.factories import SMS


def _inline_post(contact: Contact, addresses: list[tuple[int | None, str, bool]], **fields) -> dict:
    """The change form's POST: the contact's fields and its address rows (id, address, delete)."""
    data = {
        "name": contact.name,
        "addresses-TOTAL_FORMS": str(len(addresses)),
        "addresses-INITIAL_FORMS": str(sum(1 for pk, _, _ in addresses if pk)),
        "addresses-MIN_NUM_FORMS": "0",
        "addresses-MAX_NUM_FORMS": "1000",
        "conversations-TOTAL_FORMS": "0",
        "conversations-INITIAL_FORMS": "0",
        "conversations-MIN_NUM_FORMS": "0",
        "conversations-MAX_NUM_FORMS": "1000",
    } | fields
    for i, (pk, address, delete) in enumerate(addresses):
        data[f"addresses-{i}-id"] = str(pk or "")
        data[f"addresses-{i}-contact"] = str(contact.pk)
        data[f"addresses-{i}-address"] = address
        if delete:
            data[f"addresses-{i}-DELETE"] = "on"
    return data


def test_contact_page_shows_its_addresses_and_conversations(admin_client, api):
    conversation = Conversation.objects.get(
        pk=api.post("/api/messages/sms", SMS, format="json").json()["conversation_id"]
    )
    contact = conversation.contact

    page = admin_client.get(f"/admin/conversations/contact/{contact.pk}/change/")
    listing = admin_client.get("/admin/conversations/contact/")

    assert page.status_code == 200
    assert SMS["to"].encode() in page.content
    assert f"#{conversation.pk}".encode() in page.content
    assert listing.status_code == 200 and SMS["to"].encode() in listing.content


def test_an_address_added_in_the_admin_is_normalised_and_takes_its_conversations(admin_client, api):
    conversation = Conversation.objects.get(
        pk=api.post("/api/messages/sms", SMS, format="json").json()["conversation_id"]
    )
    automatic = conversation.contact
    contact = contact_create(account=account_development(), name="Ada")

    response = admin_client.post(
        f"/admin/conversations/contact/{contact.pk}/change/",
        _inline_post(contact, [(None, "+1 (804) 555-1234", False)]),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    conversation.refresh_from_db()
    assert conversation.contact_id == contact.pk
    assert list(contact.addresses.values_list("address", flat=True)) == [SMS["to"]]
    assert not Contact.objects.filter(pk=automatic.pk).exists()


def test_an_address_removed_in_the_admin_unlinks_its_conversations(admin_client, api):
    contact = contact_create(account=account_development(), name="Ada", addresses=[SMS["to"]])
    conversation = Conversation.objects.get(
        pk=api.post("/api/messages/sms", SMS, format="json").json()["conversation_id"]
    )
    row = ContactAddress.objects.get(contact=contact)

    response = admin_client.post(
        f"/admin/conversations/contact/{contact.pk}/change/", _inline_post(contact, [(row.pk, row.address, True)])
    )

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.contact_id is None
    assert not contact.addresses.exists()


def test_the_admin_refuses_another_contacts_address(admin_client):
    account = account_development()
    holder = contact_create(account=account, name="Ada", addresses=[SMS["to"]])
    contact = contact_create(account=account, name="Bob")

    response = admin_client.post(
        f"/admin/conversations/contact/{contact.pk}/change/", _inline_post(contact, [(None, SMS["to"], False)])
    )

    assert response.status_code == 200  # the form again, with the error
    assert f"contact {holder.pk}" in response.content.decode()
    assert ContactAddress.objects.get(address=SMS["to"]).contact_id == holder.pk


def test_the_admin_refuses_a_malformed_address(admin_client):
    contact = contact_create(account=account_development(), name="Bob")

    response = admin_client.post(
        f"/admin/conversations/contact/{contact.pk}/change/", _inline_post(contact, [(None, "8045551234", False)])
    )

    assert response.status_code == 200
    assert "E.164" in response.content.decode()
    assert not contact.addresses.exists()


def test_contact_list_queries_do_not_grow_with_rows(admin_client):
    account = account_development()
    for i in range(3):
        contact_create(account=account, name=f"c{i}", addresses=[f"+1804555{i:04d}"])
    with CaptureQueriesContext(connection) as few:
        admin_client.get("/admin/conversations/contact/")
    for i in range(3, 12):
        contact_create(account=account, name=f"c{i}", addresses=[f"+1804555{i:04d}", f"c{i}@example.com"])
    with CaptureQueriesContext(connection) as many:
        admin_client.get("/admin/conversations/contact/")

    assert len(many) == len(few)


def test_a_contact_added_in_the_admin_takes_its_addresses_conversations(admin_client, api):
    conversation = Conversation.objects.get(
        pk=api.post("/api/messages/sms", SMS, format="json").json()["conversation_id"]
    )
    account = account_development()
    data = _inline_post(Contact(name="Ada"), [(None, SMS["to"], False)], account=str(account.pk))
    del data["addresses-0-contact"]

    response = admin_client.post("/admin/conversations/contact/add/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    contact = Contact.objects.get(name="Ada")
    conversation.refresh_from_db()
    assert (contact.account, contact.automatic, conversation.contact_id) == (account, False, contact.pk)
