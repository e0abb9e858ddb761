"""Structured logs: one JSON line per request with its id and account, phone numbers,
email addresses and secrets masked before anything is written."""

import json
import logging

import pytest
import structlog

from config.logs import formatter_for, mask_text
from tests.factories import SMS


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +12016661234", "to +1201****234"),
        ("/sandbox/messages?to=%2B15005550004", "/sandbox/messages?to=%2B1500****004"),
        ("from john.smith@example.com", "from j***@example.com"),
        ("Authorization: Bearer sk_live_abc.def", "Authorization: Bearer [redacted]"),
        ("celery@worker-1 ready.", "celery@worker-1 ready."),
        ("took 1234567 ms", "took 1234567 ms"),
    ],
)
def test_addresses_and_credentials_are_masked(text, masked):
    assert mask_text(text) == masked


def test_each_request_is_one_line_with_its_id_account_status_and_duration(api, json_logs):
    response = api.post("/api/messages/sms", SMS, format="json", HTTP_X_REQUEST_ID="req-42")

    lines = [line for line in json_logs() if line["event"] == "request"]
    assert response.status_code == 202 and response["X-Request-ID"] == "req-42"
    assert len(lines) == 1
    line = lines[0]
    assert {k: line[k] for k in ("method", "path", "status", "request_id", "level")} == {
        "method": "POST",
        "path": "/api/messages/sms",
        "status": 202,
        "request_id": "req-42",
        "level": "info",
    }
    assert line["account"] == response.wsgi_request.user.pk
    assert line["duration_ms"] >= 0 and line["timestamp"].endswith("Z")


def test_a_send_writes_one_line_that_names_its_message(api, json_logs):
    response = api.post("/api/messages/sms", SMS, format="json", HTTP_X_REQUEST_ID="req-44")

    (line,) = json_logs()
    assert (line["event"], line["request_id"], line["message_id"]) == ("request", "req-44", response.json()["id"])


def test_what_a_view_binds_does_not_reach_the_next_request(api, json_logs):
    api.post("/api/messages/sms", SMS, format="json")
    api.get("/api/conversations")

    last = json_logs()[-1]
    assert last["path"] == "/api/conversations" and "message_id" not in last


def test_lines_written_during_a_request_carry_its_id_and_mask_the_recipient(api, json_logs, caplog):
    caplog.set_level(logging.DEBUG, logger="messaging.services.sending")
    api.post("/api/messages/sms", SMS, format="json", HTTP_X_REQUEST_ID="req-43")

    queued = next(line for line in json_logs() if line["event"] == "message queued")
    assert queued["request_id"] == "req-43"
    assert queued["to"] == "+1804****234"
    assert SMS["to"] not in json.dumps(json_logs())


def test_secrets_are_never_written(json_logs):
    log = structlog.get_logger("test")

    log.info("calling", api_key="SG.abc", headers={"Authorization": "Basic dXNlcjpwYXNz"}, note="token=plain")
    logging.getLogger("test").warning("auth %s", "Bearer abc123", extra={"auth_token": "xyz"})

    first, second = json_logs()
    assert first["api_key"] == "[redacted]" and first["headers"] == {"Authorization": "[redacted]"}
    assert second["event"] == "auth Bearer [redacted]" and second["auth_token"] == "[redacted]"
    assert "abc" not in json.dumps([first["api_key"], second])


def test_console_format_is_one_readable_line():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent to %s", ("+12016661234",), None)

    line = formatter_for("console").format(record)

    assert "sent to +1201****234" in line and "\n" not in line


def test_a_task_run_in_place_logs_one_line_and_keeps_its_callers_request_id(db, json_logs):
    from messaging.tasks import messages_sweep

    structlog.contextvars.bind_contextvars(request_id="outer-1")
    try:
        messages_sweep.apply()
        after = structlog.contextvars.get_contextvars()
    finally:
        structlog.contextvars.clear_contextvars()

    (task,) = [line for line in json_logs() if line["event"] == "task"]
    assert (task["task"], task["state"], task["request_id"]) == ("messaging.tasks.messages_sweep", "SUCCESS", "outer-1")
    assert after == {"request_id": "outer-1"}
