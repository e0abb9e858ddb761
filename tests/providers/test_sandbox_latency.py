import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.factories import SANDBOX_TWILIO_AUTH, SANDBOX_TWILIO_CREATE

AUTH, CREATE = SANDBOX_TWILIO_AUTH, SANDBOX_TWILIO_CREATE
SENDGRID = {
    "personalizations": [{"to": [{"email": "contact@gmail.com"}], "custom_args": {"message_id": "9"}}],
    "from": {"email": "user@usehatchapp.com"},
    "subject": "s",
    "content": [{"type": "text/plain", "value": "x"}],
}


def _timed_twilio_create(client, to: str) -> tuple[int, float]:
    started = time.monotonic()
    body = f"hi {uuid.uuid4()}"  # the sandbox counts tries per recipient and body
    response = client.post(CREATE, {"To": to, "From": "+12016661234", "Body": body}, HTTP_AUTHORIZATION=AUTH)
    return response.status_code, time.monotonic() - started


@pytest.mark.parametrize(
    ("to", "status"),
    [("+18045551234", 201), ("+15005550001", 400), ("+15005550002", 500), ("+15005550003", 429)],
)
def test_sandbox_answers_create_calls_after_the_configured_latency(client, db, settings, to, status):
    settings.SANDBOX_LATENCY_MS = 300

    code, elapsed = _timed_twilio_create(client, to)

    assert code == status
    assert elapsed >= 0.3


def test_sandbox_latency_applies_to_sendgrid_too(client, db, settings):
    settings.SANDBOX_LATENCY_MS = 300
    started = time.monotonic()

    response = client.post(
        "/sandbox/sendgrid/v3/mail/send",
        SENDGRID,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {settings.SENDGRID_API_KEY}",
    )

    assert response.status_code == 202
    assert time.monotonic() - started >= 0.3


def test_sandbox_answers_at_once_by_default(client, db, settings):
    assert settings.SANDBOX_LATENCY_MS == 0

    code, elapsed = _timed_twilio_create(client, "+18045551234")

    assert code == 201
    assert elapsed < 0.3


def _setting_in_a_fresh_process(tmp_path, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "SANDBOX_LATENCY_MS"}
    environment |= {"DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path), **env}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SANDBOX_LATENCY_MS)"
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_sandbox_latency_is_read_from_the_environment(tmp_path):
    assert _setting_in_a_fresh_process(tmp_path, SANDBOX_LATENCY_MS="100") == "100"
    assert _setting_in_a_fresh_process(tmp_path) == "0"


def test_sandbox_sleeps_before_its_first_query_so_no_connection_is_held_asleep(client, db, settings, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from providers.sandbox import common

    settings.SANDBOX_LATENCY_MS = 1
    queries_before_sleep = []
    with CaptureQueriesContext(connection) as queries:
        monkeypatch.setattr(common.time, "sleep", lambda _s: queries_before_sleep.append(len(queries)))
        code, _ = _timed_twilio_create(client, "+18045551234")

    assert code == 201
    assert queries_before_sleep == [0]
    assert len(queries) >= 1  # the record was still stored, after the sleep
