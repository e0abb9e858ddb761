"""Two accounts side by side on every endpoint: each sees, sends from and replays only its
own; another account's ids answer exactly like ids that do not exist."""

import io
import time

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import ApiKey, Conversation
from conversations.services import account_create, api_key_create, api_key_hash, api_key_revoke, sender_add
from messaging.models import Message
from webhooks.models import WebhookEvent

CONTACT = "+18045551234"


class Tenant:
    def __init__(self, name: str, number: str, domain: str):
        self.account = account_create(name=name, senders=[number, f"@{domain}"])
        self.number, self.email = number, f"team@{domain}"
        self.key, raw_key = api_key_create(account=self.account)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    def send_sms(self, **fields):
        body = {"from": self.number, "to": CONTACT, "type": "sms", "body": "hi"} | fields
        return self.client.post("/api/messages/sms", body, format="json")

    def send_email(self):
        body = {"from": self.email, "to": "contact@gmail.com", "body": "hi"}
        return self.client.post("/api/messages/email", body, format="json")


@pytest.fixture
def acme(db):
    return Tenant("acme", "+12015550101", "acme.example")


@pytest.fixture
def globex(db):
    return Tenant("globex", "+12015550202", "globex.example")


@pytest.fixture
def both(acme, globex):
    """Each account has written to the same contact by SMS and by email."""
    for tenant in (acme, globex):
        assert tenant.send_sms().status_code == 202
        assert tenant.send_email().status_code == 202
    return acme, globex


def _ids(response) -> set[int]:
    assert response.status_code == 200
    return {item["id"] for item in response.json()["results"]}


def test_each_account_lists_only_its_own_conversations(both):
    acme, globex = both

    mine, theirs = _ids(acme.client.get("/api/conversations")), _ids(globex.client.get("/api/conversations"))

    assert len(mine) == len(theirs) == 2
    assert not mine & theirs
    assert mine == set(Conversation.objects.filter(account=acme.account).values_list("id", flat=True))


def test_the_same_contact_makes_one_thread_per_account(both):
    assert (
        Conversation.objects.filter(participant_a=CONTACT).count()
        + Conversation.objects.filter(participant_b=CONTACT).count()
        == 2
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations/{c}",
        "/api/conversations/{c}/messages",
        "/api/messages/{m}",
        "/api/contacts/{k}",
        "/api/contacts/{k}/messages",
    ],
)
def test_another_accounts_ids_look_like_ids_that_do_not_exist(both, path):
    acme, globex = both
    conversation = Conversation.objects.filter(account=acme.account).first()
    message = Message.objects.filter(account=acme.account).first()
    ids = {"c": conversation.pk, "m": message.pk, "k": conversation.contact_id}

    foreign = globex.client.get(path.format(**ids))
    missing = globex.client.get(path.format(c=999_999, m=999_999, k=999_999))

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert acme.client.get(path.format(**ids)).status_code == 200


def test_each_account_lists_only_its_own_contacts(both):
    acme, globex = both

    mine, theirs = _ids(acme.client.get("/api/contacts")), _ids(globex.client.get("/api/contacts"))

    assert len(mine) == len(theirs) == 2  # the contact's number and email address, each automatic
    assert not mine & theirs
    assert len(_ids(globex.client.get("/api/contacts", {"address": CONTACT})) & theirs) == 1


def test_another_accounts_dead_letter_cannot_be_replayed(both):
    acme, globex = both
    message = Message.objects.filter(account=acme.account).first()
    Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED)

    assert globex.client.post(f"/api/messages/{message.pk}/retry").status_code == 404
    assert Message.objects.get(pk=message.pk).status == Message.Status.FAILED
    assert acme.client.post(f"/api/messages/{message.pk}/retry").status_code == 202


@pytest.mark.parametrize("sender", ["+12015550202", "team@globex.example", "+12015559999"])
def test_sending_from_an_address_the_account_does_not_own_is_a_403(acme, globex, sender):
    path = "/api/messages/email" if "@" in sender else "/api/messages/sms"
    body = {"from": sender, "to": "contact@gmail.com" if "@" in sender else CONTACT, "body": "hi"}

    response = acme.client.post(path, body, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sender_not_allowed"
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_a_domain_sender_covers_every_address_at_it(acme):
    body = {"from": "billing@acme.example", "to": "contact@gmail.com", "body": "hi"}

    assert acme.client.post("/api/messages/email", body, format="json").status_code == 202


def test_inbound_goes_to_the_account_that_owns_the_recipient(api, both):
    acme, globex = both
    inbound = {"from": CONTACT, "to": globex.number, "type": "sms", "messaging_provider_id": "in-1", "body": "yo"}

    response = api.post("/api/webhooks/sms", inbound, format="json")

    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["id"])
    assert stored.account == globex.account
    assert stored.conversation_id in _ids(globex.client.get("/api/conversations"))
    assert stored.conversation_id not in _ids(acme.client.get("/api/conversations"))


def test_inbound_to_an_address_nobody_owns_is_acknowledged_and_kept_from_every_tenant(api, both, settings):
    settings.IS_PRODUCTION = True  # locally the development account owns every address
    inbound = {"from": CONTACT, "to": "+12015559999", "type": "sms", "messaging_provider_id": "in-2", "body": "?"}
    before = Message.objects.count()

    response = api.post("/api/webhooks/sms", inbound, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "unrouted"
    assert Message.objects.count() == before
    event = WebhookEvent.objects.get(outcome=WebhookEvent.Outcome.UNROUTED)
    assert event.account is None and event.message is None


def test_a_key_is_stored_only_as_its_hash(acme):
    _, raw_key = api_key_create(account=acme.account, name="ci")
    stored = ApiKey.objects.get(name="ci")

    assert stored.key_hash == api_key_hash(raw_key) != raw_key
    assert raw_key not in str(ApiKey.objects.filter(pk=stored.pk).values().get())
    assert raw_key.startswith(stored.prefix) and len(stored.prefix) < len(raw_key) // 2


def test_a_revoked_key_is_refused_at_once(acme):
    assert acme.client.get("/api/conversations").status_code == 200

    api_key_revoke(key=acme.key)
    response = acme.client.get("/api/conversations")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("header", ["Bearer not-a-key", "Token abc", "Bearer", "Basic dXNlcjpwYXNz"])
def test_a_bad_authorization_header_is_a_401_not_the_development_account(api, header):
    response = api.get("/api/conversations", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_without_anonymous_access_a_missing_key_is_a_401(api, settings):
    settings.ALLOW_ANONYMOUS_API = False

    for path in ("/api/conversations", "/api/messages/1"):
        response = api.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    assert api.post("/api/messages/sms", {"from": "+12015550101"}, format="json").status_code == 401


def test_create_api_key_prints_a_working_key_once(acme):
    out, err = io.StringIO(), io.StringIO()

    call_command("create_api_key", "--account", "acme", "--name", "cli", stdout=out, stderr=err)

    header = out.getvalue().strip().removeprefix("Authorization: ")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/conversations").status_code == 200
    assert header.split()[-1] not in err.getvalue()


def test_a_key_revoked_in_another_process_is_refused_within_the_cache_time(acme, settings):
    settings.AUTH_CACHE_SECONDS = 0.2
    assert acme.client.get("/api/conversations").status_code == 200

    ApiKey.objects.filter(pk=acme.key.pk).update(revoked_at=timezone.now())  # as another process would
    assert acme.client.get("/api/conversations").status_code == 200  # remembered here, for now
    time.sleep(0.25)

    assert acme.client.get("/api/conversations").status_code == 401


def test_a_sender_given_to_an_account_can_be_used_at_once(acme, globex):
    assert acme.send_sms(**{"from": "+12015550303"}).status_code == 403

    sender_add(account=acme.account, address="+12015550303")

    assert acme.send_sms(**{"from": "+12015550303"}).status_code == 202
