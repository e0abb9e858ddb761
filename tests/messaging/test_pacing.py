"""Per-sender pacing: a sender's kind (given or inferred) sets its throughput, a sender
may override it, and dispatch holds a message over the limit for its slot without
spending a try, oldest first, while other senders go at once. The shared schedule runs
in Redis when REDIS_URL is set and on the cache otherwise: the suite runs on both."""

import itertools
import json
import re
import time
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses
from django.core.management import call_command
from django.utils import timezone

from conversations.models import Sender
from conversations.selectors import sender_throughputs
from conversations.services import account_create
from messaging.models import Message
from messaging.services import NewMessage, message_send, messages_dispatch
from providers import registry
from providers.pacing import PaceRequest, pacing_take
from tests.metrics_helpers import value

LONG_CODE = "+12016661234"


@pytest.fixture(autouse=True)
def paced(settings):
    settings.PACING_ENABLED = True


def _send(account, sender: str = LONG_CODE, to: str = "+18045550000", body: str = "hello") -> int:
    new = NewMessage(type="sms", from_address=sender, to_address=to, body=body)
    return message_send(account=account, new=new).pk


@pytest.fixture
def provider(settings):
    """A Twilio-format API that accepts every message and records who it came from and
    when, in order (the network edge, mocked: several calls go out at once from worker
    threads)."""
    settings.PROVIDERS = {
        "twilio": {
            "adapter": "providers.twilio.TwilioProvider",
            "types": ["sms", "mms"],
            "base_url": "https://twilio.test",
            "account_sid": "AC1",
            "auth_token": "token",
        }
    }
    registry.reset()
    received = []

    def create(request):
        form = parse_qs(request.body)
        received.append((form["From"][0], time.monotonic()))
        ref = parse_qs(form["StatusCallback"][0].split("?", 1)[1])["ref"][0]
        return 201, {}, json.dumps({"sid": f"SM{ref}", "status": "queued"})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback("POST", re.compile(r"^https://twilio\.test/.*/Messages\.json$"), callback=create)
        yield received
    registry.reset()


@pytest.fixture
def account(db):
    return account_create(name="clinic", senders=[LONG_CODE, "+18005550100", "+12025550000", "@clinic.example"])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("+12016661234", "long_code"),
        ("+447700900123", "long_code"),
        ("+18005550100", "toll_free"),
        ("+18885550100", "toll_free"),
        ("12345", "short_code"),
        ("front@clinic.example", "email"),
    ],
)
def test_a_senders_kind_is_inferred_from_its_address(db, address, kind):
    assert sender_throughputs(addresses={address}) == {address: (kind, None)}


def test_a_senders_own_kind_and_throughput_win_and_a_domain_covers_its_addresses(account):
    Sender.objects.filter(address=LONG_CODE).update(kind="short_code", throughput=20)
    Sender.objects.filter(address="@clinic.example").update(throughput=5)

    found = sender_throughputs(addresses={LONG_CODE, "front@clinic.example"})

    assert found == {LONG_CODE: ("short_code", 20.0), "front@clinic.example": ("email", 5.0)}


def test_the_schedule_spaces_one_sender_and_leaves_another_alone(db):
    requests = [PaceRequest(sender="+1", reference=str(n), cost=1, per_second=10) for n in range(4)]
    other = PaceRequest(sender="+2", reference="9", cost=1, per_second=10)

    waits = pacing_take([*requests, other])

    assert waits[0] == 0 and waits[4] == 0
    assert [round(w, 1) for w in waits[1:4]] == [0.1, 0.2, 0.3]


def test_a_message_coming_back_keeps_its_slot_and_goes_when_it_is_due(db):
    first, second = (PaceRequest(sender="+1", reference=str(n), cost=1, per_second=5) for n in range(2))
    assert pacing_take([first, second])[1] == pytest.approx(0.2, abs=0.02)

    early = pacing_take([second])[0]  # back too soon: the same slot, not a new one behind it
    time.sleep(early + 0.01)
    on_time = pacing_take([second])[0]
    newcomer = pacing_take([PaceRequest(sender="+1", reference="2", cost=1, per_second=5)])[0]

    assert 0 < early <= 0.2
    assert on_time == 0
    assert newcomer == pytest.approx(0.2, abs=0.03)  # after the second's slot, not the first's


def test_cost_counts_segments(db):
    long_text = PaceRequest(sender="+1", reference="1", cost=3, per_second=10)
    next_one = PaceRequest(sender="+1", reference="2", cost=1, per_second=10)

    assert pacing_take([long_text, next_one])[1] == pytest.approx(0.3, abs=0.02)


def _paced(client, kind: str) -> float:
    return value(client.get("/metrics").content.decode(), "messages_paced_total", sender_kind=kind)


def test_dispatch_holds_messages_over_the_limit_without_spending_a_try(account, provider, client):
    Sender.objects.filter(address=LONG_CODE).update(throughput=10)
    ids = [_send(account, to=f"+1804555{n:04d}") for n in range(5)]
    other = _send(account, sender="+12025550000", to="+18045559999")
    before = _paced(client, "long_code")

    outcomes = messages_dispatch(message_ids=[*ids, other], message_type="sms")

    assert outcomes == {ids[0]: "sent", other: "sent"}
    assert sorted(sender for sender, _ in provider) == sorted([LONG_CODE, "+12025550000"])
    waiting = Message.objects.filter(pk__in=ids[1:]).order_by("pk")
    assert {(m.status, m.attempts, m.enqueued_at) for m in waiting} == {("queued", 0, None)}
    assert not Message.objects.get(pk=ids[1]).delivery_attempts.exists()
    slots = [m.next_attempt_at for m in waiting]
    assert slots == sorted(slots)  # oldest first
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert all(gap == pytest.approx(0.1, abs=0.02) for gap in gaps)
    assert timezone.now() < slots[0] <= timezone.now() + timedelta(seconds=0.2)
    assert _paced(client, "long_code") - before == 4


def test_a_held_message_is_sent_at_its_slot_with_its_first_try(account, provider):
    Sender.objects.filter(address=LONG_CODE).update(throughput=10)
    first, second = _send(account, to="+18045550001"), _send(account, to="+18045550002")
    messages_dispatch(message_ids=[first, second], message_type="sms")
    held = Message.objects.get(pk=second)

    assert messages_dispatch(message_ids=[second], message_type="sms") == {}  # not due yet
    time.sleep(max((held.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.01)
    outcomes = messages_dispatch(message_ids=[second], message_type="sms")

    assert outcomes == {second: "sent"}
    assert Message.objects.get(pk=second).attempts == 1


def test_pacing_by_segments_charges_a_long_message_its_segments(account, provider, settings):
    settings.PACING_UNIT = "segments"
    Sender.objects.filter(address=LONG_CODE).update(throughput=10)
    long_text = _send(account, to="+18045550001", body="x" * 400)  # 3 segments
    short = _send(account, to="+18045550002")

    messages_dispatch(message_ids=[long_text, short], message_type="sms")

    held = Message.objects.get(pk=short)
    assert held.status == "queued"
    assert (held.next_attempt_at - timezone.now()).total_seconds() == pytest.approx(0.3, abs=0.05)


def test_a_kinds_default_rate_comes_from_the_settings(account, provider, settings):
    settings.PACING_RATES = settings.PACING_RATES | {"toll_free": 4.0}
    ids = [_send(account, sender="+18005550100", to=f"+1804555{n:04d}") for n in range(3)]

    messages_dispatch(message_ids=ids, message_type="sms")

    slots = list(Message.objects.filter(pk__in=ids[1:]).order_by("pk").values_list("next_attempt_at", flat=True))
    assert (slots[1] - slots[0]).total_seconds() == pytest.approx(0.25, abs=0.02)


def test_pacing_off_sends_the_burst(account, provider, settings):
    settings.PACING_ENABLED = False
    ids = [_send(account, to=f"+1804555{n:04d}") for n in range(3)]

    assert set(messages_dispatch(message_ids=ids, message_type="sms").values()) == {"sent"}


def test_create_account_sets_kind_and_throughput(db, capsys):
    call_command("create_account", "shop", "--sender", "+18005550199", "--kind", "toll_free", "--throughput", "25")

    sender = Sender.objects.get(address="+18005550199")
    assert (sender.kind, sender.throughput) == ("toll_free", 25.0)


def test_a_turn_a_moment_away_is_waited_for_in_the_task(account, provider, settings):
    settings.PACING_HOLD_SECONDS = 0.05
    Sender.objects.filter(address=LONG_CODE).update(throughput=50)  # a turn every 20 ms
    ids = [_send(account, to=f"+1804555{n:04d}") for n in range(6)]

    started = time.monotonic()
    outcomes = messages_dispatch(message_ids=ids, message_type="sms")

    # Turns 0, 20 and 40 ms away went in this task, none before its turn; 60 ms and later wait.
    assert outcomes == {pk: "sent" for pk in ids[:3]}
    assert set(Message.objects.filter(pk__in=ids[3:]).values_list("status", "attempts")) == {("queued", 0)}
    times = sorted(at - started for _, at in provider)
    assert times[1] >= 0.02 and times[2] >= 0.04, times
