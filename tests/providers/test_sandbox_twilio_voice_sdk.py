"""The sandbox's Twilio Voice face, driven by the official `twilio` SDK: the calls it
creates, fetches and lists are Twilio's resources, its errors Twilio's, and the progress
callbacks it posts pass twilio's own RequestValidator."""

import re
from urllib.parse import parse_qsl

import pytest
import responses
from django.conf import settings
from django.test import Client as DjangoClient
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from providers.sandbox.calls import call_run
from providers.sandbox.models import SandboxCall
from tests.sandbox_harness import forward

SANDBOX = "/sandbox/twilio-voice"
HOOKS = "https://hooks.example.com/status"


@pytest.fixture
def mock(db):
    web = DjangoClient()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        pattern = re.compile(r"^https://api\.twilio\.com/")
        for method in ("GET", "POST"):
            mock.add_callback(
                method,
                pattern,
                callback=lambda request: forward(web, request, SANDBOX + request.path_url.split("?")[0]),
            )
        yield mock


@pytest.fixture
def twilio(mock):
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)


def _twiml(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    return response.to_xml()


def test_create_fetch_and_list_answer_twilio_call_resources(twilio):
    # (the SDK keeps a call's `from` as `_from`)
    created = twilio.calls.create(to="+18045551234", from_="+12016661234", twiml=_twiml("Hi"))
    fetched = twilio.calls(created.sid).fetch()
    listed = twilio.calls.list(to="+18045551234")

    assert created.sid.startswith("CA") and created.status == "queued"
    assert (fetched.sid, fetched.to, fetched._from, fetched.direction) == (
        created.sid,
        "+18045551234",
        "+12016661234",
        "outbound-api",
    )
    assert [call.sid for call in listed] == [created.sid]
    assert twilio.calls.list(to="+18045550000") == []


def test_a_call_that_ran_shows_its_length_and_who_answered(twilio, mock):
    mock.add(responses.POST, HOOKS, status=200)
    created = twilio.calls.create(
        to="+15005550008",
        from_="+12016661234",
        twiml=_twiml("Your order shipped."),
        machine_detection="DetectMessageEnd",
        status_callback=HOOKS,
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )

    call_run(call=SandboxCall.objects.get(sid=created.sid))

    fetched = twilio.calls(created.sid).fetch()
    assert (fetched.status, fetched.answered_by) == ("completed", "machine_end_beep")
    assert int(fetched.duration) > 0 and fetched.end_time is not None


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "+18045551234"}, 21205),
        ({"to": "+18045551234", "twiml": "<Response><Say>unclosed</Response>"}, 12100),
        ({"to": "+18045551234", "twiml": "<Response/>", "url": "https://x.test/"}, 21205),
        ({"to": "+15005550001", "twiml": "<Response/>"}, 21211),
        ({"to": "+15005550002", "twiml": "<Response/>"}, 20500),
    ],
)
def test_refused_creates_are_twilio_errors(twilio, kwargs, code):
    with pytest.raises(TwilioRestException) as refused:
        twilio.calls.create(from_="+12016661234", **kwargs)

    assert refused.value.code == code
    assert not SandboxCall.objects.exists()


def test_progress_callbacks_are_signed_as_twilio_signs_them(twilio, mock):
    mock.add(responses.POST, HOOKS, status=200)
    created = twilio.calls.create(
        to="+18045551234",
        from_="+12016661234",
        twiml=_twiml("Hi"),
        status_callback=f"{HOOKS}?ref=7",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )

    call_run(call=SandboxCall.objects.get(sid=created.sid))

    posted = [c.request for c in mock.calls if c.request.url.startswith(HOOKS)]
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    statuses = []
    for request in posted:
        params = dict(parse_qsl(request.body))
        assert validator.validate(request.url, params, request.headers["X-Twilio-Signature"])
        statuses.append(params["CallStatus"])
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    assert dict(parse_qsl(posted[-1].body))["CallDuration"] == "2"


def test_without_status_callback_events_only_the_end_is_posted(twilio, mock):
    mock.add(responses.POST, HOOKS, status=200)
    created = twilio.calls.create(to="+15005550006", from_="+12016661234", twiml=_twiml("Hi"), status_callback=HOOKS)

    call_run(call=SandboxCall.objects.get(sid=created.sid))

    posted = [dict(parse_qsl(c.request.body)) for c in mock.calls if c.request.url.startswith(HOOKS)]
    assert [p["CallStatus"] for p in posted] == ["busy"]
