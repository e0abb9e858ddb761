"""Idempotency-Key on sends: replay, mismatch, in flight, release, takeover, expiry,
accounts, and one message per key under concurrent requests."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.services import api_key_create, sender_add
from messaging import tasks
from messaging.models import IdempotencyKey, Message
from tests.factories import EMAIL, SMS, AccountFactory


def _post(api, body=SMS, key="key-1", path="/api/messages/sms", **extra):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


def test_the_same_key_and_body_replays_the_first_answer(api):
    first = _post(api)
    again = _post(api)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Message.objects.count() == 1


def test_the_replay_is_the_original_answer_not_the_current_state(api):
    first = _post(api)
    Message.objects.filter(pk=first.json()["id"]).update(status=Message.Status.DELIVERED)

    assert _post(api).json()["status"] == "queued"


def test_the_same_key_with_another_body_is_a_422_and_sends_nothing(api):
    _post(api)

    response = _post(api, SMS | {"body": "something else"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Message.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_a_422(api):
    _post(api)

    response = _post(api, EMAIL, path="/api/messages/email")

    assert response.status_code == 422
    assert Message.objects.count() == 1


def test_key_order_and_spacing_of_the_json_do_not_matter(api):
    _post(api)
    reordered = dict(reversed(list(SMS.items())))

    assert _post(api, reordered)["Idempotent-Replayed"] == "true"


def test_without_a_key_every_request_sends(api):
    api.post("/api/messages/sms", SMS, format="json")
    api.post("/api/messages/sms", SMS, format="json")

    assert Message.objects.count() == 2


def test_a_key_still_in_flight_is_a_409(api, dev_account):
    now = timezone.now()
    IdempotencyKey.objects.create(account=dev_account, key="key-1", fingerprint="x", created_at=now, locked_at=now)
    _same_fingerprint(dev_account)

    response = _post(api)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert Message.objects.count() == 0


def test_a_key_whose_holder_died_is_taken_over(api, dev_account):
    long_ago = timezone.now() - timedelta(minutes=5)
    IdempotencyKey.objects.create(
        account=dev_account, key="key-1", fingerprint="x", created_at=long_ago, locked_at=long_ago
    )
    _same_fingerprint(dev_account)

    response = _post(api)

    assert response.status_code == 202
    assert Message.objects.count() == 1
    assert _post(api)["Idempotent-Replayed"] == "true"


def test_a_refused_request_gives_the_key_back(api):
    refused = _post(api, SMS | {"to": "not a number"})
    corrected = _post(api)

    assert refused.status_code == 400
    assert corrected.status_code == 202
    assert "Idempotent-Replayed" not in corrected
    assert Message.objects.count() == 1


def test_a_sender_the_account_does_not_own_gives_the_key_back(api):
    account = AccountFactory()
    _, raw_key = api_key_create(account=account)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}

    assert _post(api, **auth).status_code == 403
    sender_add(account=account, address=SMS["from"])
    assert _post(api, **auth).status_code == 202


def test_keys_belong_to_one_account(api):
    other = AccountFactory()
    sender_add(account=other, address="+12015550000")
    _, raw_key = api_key_create(account=other)

    mine = _post(api)
    theirs = _post(api, SMS | {"from": "+12015550000"}, HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve"])
def test_a_malformed_key_is_a_400(api, key):
    response = api.post("/api/messages/sms", SMS, format="json", HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert Message.objects.count() == 0


def test_an_expired_key_starts_afresh(api, dev_account):
    _post(api)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    response = _post(api, SMS | {"body": "a new message"})

    assert response.status_code == 202
    assert Message.objects.count() == 2


def test_the_beat_task_prunes_keys_older_than_a_day(api):
    _post(api, key="old")
    _post(api, key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))

    assert tasks.idempotency_keys_prune() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL) for real concurrency")
def test_concurrent_requests_with_one_key_send_one_message():
    barrier = threading.Barrier(8)
    answers = []

    def post():
        client = APIClient()
        barrier.wait()
        response = _post(client)
        answers.append((response.status_code, response.get("Idempotent-Replayed"), response.json().get("id")))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Message.objects.count() == 1
    message_id = Message.objects.get().pk
    assert {status for status, _, _ in answers} <= {202, 409}
    fresh = [a for a in answers if a[0] == 202 and a[1] is None]
    assert len(fresh) == 1 and fresh[0][2] == message_id
    assert all(a[2] == message_id for a in answers if a[0] == 202)


@pytest.fixture
def dev_account(db):
    from conversations.selectors import account_development

    return account_development()


def _same_fingerprint(account) -> None:
    """Give the pre-made key the fingerprint the test's request will have."""
    from messaging.services import idempotency_fingerprint

    fingerprint = idempotency_fingerprint(method="POST", path="/api/messages/sms", data=SMS)
    IdempotencyKey.objects.filter(account=account, key="key-1").update(fingerprint=fingerprint)
