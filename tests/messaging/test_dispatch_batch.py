"""A dispatch task takes a batch: one claim, the provider calls side by side (bounded
per provider), the results written back in a few statements. The provider is mocked
at the network edge (`responses`) with a Twilio-format API that answers slowly."""

import json
import re
import threading
import time
from urllib.parse import parse_qs

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.selectors import account_development
from messaging.models import DeliveryAttempt, Message, MessageEvent
from messaging.services import NewMessage, message_send, messages_dispatch
from providers import registry

TWILIO = "https://twilio.test"


class SlowTwilio:
    """Answers each create after `latency` seconds, by recipient: the last four digits
    0400 refuse it (400), 0429 rate-limit it, 0500 fail with a 500; others are accepted."""

    def __init__(self, mock: responses.RequestsMock, latency: float = 0.05):
        self.latency, self.lock = latency, threading.Lock()
        self.in_flight = self.most_in_flight = 0
        mock.add_callback("POST", re.compile(rf"^{TWILIO}/.*/Messages\.json$"), callback=self._create)

    def _create(self, request):
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1
        form = parse_qs(request.body)
        to = form["To"][0]
        if to.endswith("0400"):
            return 400, {}, json.dumps({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
        if to.endswith("0429"):
            return 429, {"Retry-After": "3"}, json.dumps({"code": 20429, "message": "Too Many Requests"})
        if to.endswith("0500"):
            return 500, {}, json.dumps({"code": 20500, "message": "Internal Server Error"})
        ref = parse_qs(form["StatusCallback"][0].split("?", 1)[1])["ref"][0]
        return 201, {}, json.dumps({"sid": f"SM{ref}", "status": "queued"})


@pytest.fixture
def twilio(settings):
    settings.PROVIDERS = {
        "twilio": {
            "adapter": "providers.twilio.TwilioProvider",
            "types": ["sms", "mms"],
            "base_url": TWILIO,
            "account_sid": "AC1",
            "auth_token": "token",
        }
    }
    settings.PROVIDER_MAX_IN_FLIGHT = 5
    registry.reset()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield SlowTwilio(mock)
    registry.reset()


def _send(to: str) -> int:
    new = NewMessage(type="sms", from_address="+12016661234", to_address=to, body="hello")
    return message_send(account=account_development(), new=new).pk


def test_a_batch_goes_out_side_by_side_within_the_per_provider_bound(db, twilio):
    ids = [_send(f"+1804555{i:04d}") for i in range(1, 21)]

    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        outcomes = messages_dispatch(message_ids=ids, message_type="sms")
    took = time.monotonic() - started

    assert outcomes == dict.fromkeys(ids, "sent")
    assert 1 < twilio.most_in_flight <= 5
    assert took < 20 * twilio.latency * 0.6  # not one after another
    assert {m.provider_message_id for m in Message.objects.filter(pk__in=ids)} == {f"SM{pk}" for pk in ids}
    assert DeliveryAttempt.objects.filter(message_id__in=ids, outcome="success").count() == 20
    statuses = MessageEvent.objects.filter(message_id__in=ids, kind="status").values_list("status", flat=True)
    assert sorted(set(statuses)) == ["queued", "sending", "sent"] and len(statuses) == 60
    # claim, then in one transaction: lock what is still ours, write it, attempts, events
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(writes) <= 8, writes


def test_each_message_of_a_batch_gets_its_own_outcome(db, twilio):
    accepted, refused, limited, failing = (
        _send(to) for to in ("+18045550001", "+18045550400", "+18045550429", "+18045550500")
    )

    outcomes = messages_dispatch(message_ids=[accepted, refused, limited, failing], message_type="sms")

    assert outcomes == {accepted: "sent", refused: "failed", limited: "retry", failing: "retry"}
    rows = {m.pk: m for m in Message.objects.filter(pk__in=outcomes)}
    assert (rows[refused].status, rows[refused].failure_reason, rows[refused].error_code) == (
        "failed",
        "permanent",
        "21211",
    )
    assert (rows[limited].status, rows[limited].needs_reconcile) == ("queued", False)
    assert 2.9 < (rows[limited].next_attempt_at - rows[limited].updated_at).total_seconds() < 3.1  # Retry-After
    assert (rows[failing].status, rows[failing].needs_reconcile) == ("queued", True)  # a 500 may have sent it
    assert {rows[pk].enqueued_at for pk in (limited, failing)} == {None}  # the relay publishes retries when due


def test_a_second_copy_of_a_batch_task_does_nothing(db, twilio):
    ids = [_send(f"+1804555{i:04d}") for i in range(1, 4)]

    assert set(messages_dispatch(message_ids=ids, message_type="sms").values()) == {"sent"}
    assert messages_dispatch(message_ids=ids, message_type="sms") == {}
    assert DeliveryAttempt.objects.filter(message_id__in=ids).count() == 3


def test_a_bug_in_reconciling_is_not_taken_for_an_unreachable_provider(db, twilio, monkeypatch):
    """Only ProviderError means "the provider could not say": our own KeyError raises,
    after the rest of the batch is recorded; its message waits for its lease to run out
    (then the sweep reconciles it again) instead of being marked unresolved forever."""
    unresolved, fine = _send("+18045550001"), _send("+18045550002")
    Message.objects.filter(pk=unresolved).update(needs_reconcile=True, provider="twilio")

    def broken(self, message, *, since):
        raise KeyError("sid")

    monkeypatch.setattr("providers.twilio.TwilioProvider.lookup", broken)
    with pytest.raises(KeyError):
        messages_dispatch(message_ids=[unresolved, fine], message_type="sms")

    assert Message.objects.get(pk=fine).status == "sent"
    assert Message.objects.get(pk=unresolved).status == "sending"
    assert not DeliveryAttempt.objects.filter(message_id=unresolved).exists()
