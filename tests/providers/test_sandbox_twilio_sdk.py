"""The sandbox's Twilio face, driven by the official `twilio` SDK: what it sends is what
real clients send, and what it parses is what Twilio answers."""

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import responses
from django.conf import settings
from django.test import Client as DjangoClient
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from providers.sandbox.models import SandboxMessage
from tests.sandbox_harness import forward

SANDBOX = "/sandbox/twilio"


@pytest.fixture
def twilio(db):
    """A real SDK client whose requests to api.twilio.com are served by the sandbox."""
    web = DjangoClient()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        pattern = re.compile(r"^https://api\.twilio\.com/")
        for method in ("GET", "POST", "DELETE", "PUT"):
            mock.add_callback(
                method,
                pattern,
                callback=lambda request: forward(web, request, SANDBOX + request.path_url.split("?")[0]),
            )
        yield Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)


def _send(twilio, to="+18045551234", body="hello", **kwargs):
    return twilio.messages.create(to=to, from_="+12016661234", body=body, **kwargs)


def _page_error(error: TwilioException) -> tuple[int, dict]:
    """The SDK raises a list's error as ("Unable to fetch page", <the response>)."""
    response = error.args[1]
    return response.status_code, json.loads(response.text)


def _sent_at(sid: str, when: datetime) -> None:
    SandboxMessage.objects.filter(sid=sid).update(created_at=when)


def test_create_and_fetch_answer_twilio_resources(twilio):
    created = _send(twilio, media_url=["https://cdn.example.com/cat.jpg"])
    fetched = twilio.messages(created.sid).fetch()

    assert created.sid.startswith("SM") and created.status == "queued"
    assert (fetched.sid, fetched.to, fetched.from_, fetched.body, fetched.num_media) == (
        created.sid,
        "+18045551234",
        "+12016661234",
        "hello",
        "1",
    )
    base = f"/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages/{created.sid}"
    assert fetched.subresource_uris == {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"}


def test_list_follows_next_page_uri_across_pages(twilio):
    sids = [_send(twilio, body=f"m{n}").sid for n in range(4)]

    three = twilio.messages.list(page_size=1, limit=3)
    everything = twilio.messages.list(page_size=3)

    assert [m.sid for m in three] == sids[::-1][:3]
    assert [m.sid for m in everything] == sids[::-1]


def test_a_page_links_back_to_the_previous_one(twilio):
    for n in range(3):
        _send(twilio, body=f"m{n}")

    first = twilio.messages.page(page_size=2)
    second = first.next_page()
    back = second.previous_page()

    assert [m.body for m in first] == ["m2", "m1"]
    assert [m.body for m in second] == ["m0"] and second.next_page() is None
    assert [m.body for m in back] == ["m2", "m1"]


def test_date_sent_filters_take_the_times_the_sdk_sends(twilio):
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent = _send(twilio, body="old").sid, _send(twilio, body="recent").sid
    _sent_at(old, now - timedelta(days=3))
    _sent_at(recent, now - timedelta(minutes=5))

    after = twilio.messages.list(date_sent_after=now - timedelta(hours=1))
    before = twilio.messages.list(date_sent_before=now - timedelta(days=1))
    on_the_day = twilio.messages.list(date_sent=(now - timedelta(days=3)).date())
    up_to_the_second = twilio.messages.list(date_sent_before=now - timedelta(minutes=5))

    assert [m.sid for m in after] == [recent]
    assert [m.sid for m in before] == [old]
    assert [m.sid for m in on_the_day] == [old]
    assert {m.sid for m in up_to_the_second} == {old, recent}


def test_the_adapters_date_only_filter_still_selects_the_day(twilio):
    sid = _send(twilio).sid
    _sent_at(sid, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))

    assert [m.sid for m in twilio.messages.list(date_sent_after=date(2026, 11, 30))] == [sid]
    assert twilio.messages.list(date_sent_after=date(2026, 12, 1)) == []


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-12-01T25:00:00Z"])
def test_a_date_sent_that_is_not_a_date_is_a_twilio_400_not_a_500(twilio, value):
    with pytest.raises(TwilioException) as error:
        twilio.messages.list(date_sent_after=value)

    status, body = _page_error(error.value)
    assert (status, body["code"]) == (400, 20001)
    assert "DateSent>" in body["message"]


@pytest.mark.parametrize("size", [0, -5])
def test_a_page_size_below_one_is_refused(twilio, size):
    with pytest.raises(TwilioException) as error:
        twilio.messages.page(page_size=size)

    status, body = _page_error(error.value)
    assert (status, body["code"]) == (400, 20001)


def test_media_lists_and_fetches_in_twilio_format(twilio):
    sid = _send(twilio, media_url=["https://cdn.example.com/a.png", "https://cdn.example.com/b.gif"]).sid

    media = twilio.messages(sid).media.list()
    one = twilio.messages(sid).media(media[1].sid).fetch()

    assert [m.content_type for m in media] == ["image/png", "image/gif"]
    assert all(m.sid.startswith("ME") and m.parent_sid == sid for m in media)
    assert (one.sid, one.content_type) == (media[1].sid, "image/gif")


def test_deleting_one_media_item_keeps_the_other_addressable(twilio):
    sid = _send(twilio, media_url=["https://cdn.example.com/a.png", "https://cdn.example.com/b.gif"]).sid
    first, second = twilio.messages(sid).media.list()

    assert twilio.messages(sid).media(first.sid).delete() is True
    assert [m.sid for m in twilio.messages(sid).media.list()] == [second.sid]
    with pytest.raises(TwilioRestException) as error:
        twilio.messages(sid).media(first.sid).fetch()
    assert (error.value.status, error.value.code) == (404, 20404)


def test_media_of_an_unknown_message_is_twilios_404(twilio):
    with pytest.raises(TwilioException) as error:
        twilio.messages("SM" + "0" * 32).media.list()

    status, body = _page_error(error.value)
    assert (status, body["code"]) == (404, 20404)


def test_a_body_can_be_redacted_and_nothing_else_updated(twilio):
    sid = _send(twilio, body="secret code 1234").sid

    redacted = twilio.messages(sid).update(body="")
    with pytest.raises(TwilioRestException) as rewrite:
        twilio.messages(sid).update(body="something else")
    with pytest.raises(TwilioRestException) as cancel:
        twilio.messages(sid).update(status="canceled")

    assert redacted.body == "" and twilio.messages(sid).fetch().body == ""
    assert (rewrite.value.status, rewrite.value.code) == (400, 30400)
    assert (cancel.value.status, cancel.value.code) == (400, 30409)


def test_a_finished_message_can_be_deleted_and_an_unfinished_one_not(twilio):
    sid = _send(twilio).sid

    with pytest.raises(TwilioRestException) as early:
        twilio.messages(sid).delete()
    SandboxMessage.objects.filter(sid=sid).update(status="delivered")
    deleted = twilio.messages(sid).delete()
    with pytest.raises(TwilioRestException) as gone:
        twilio.messages(sid).fetch()

    assert (early.value.status, early.value.code) == (409, 20009)
    assert deleted is True
    assert (gone.value.status, gone.value.code) == (404, 20404)


def test_unsupported_methods_and_resources_answer_in_twilios_envelope(client, db):
    import base64

    auth = base64.b64encode(f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode()).decode()
    base = f"{SANDBOX}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}"

    put = client.put(f"{base}/Messages.json", HTTP_AUTHORIZATION=f"Basic {auth}")
    unknown = client.get(f"{base}/Calls/CA123/Feedback.json", HTTP_AUTHORIZATION=f"Basic {auth}")

    assert (put.status_code, put.json()["code"]) == (405, 20004)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    assert put["Content-Type"] == unknown["Content-Type"] == "application/json"
