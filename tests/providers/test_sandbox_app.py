"""The sandbox is an app of its own: installed, migrated, mounted and imported only when
PROVIDER_SANDBOX is on; its requests skip our API's middleware; its receipts go out in
batches, woken by the creates, not one task per create."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import responses
from django.conf import settings

from providers.sandbox import callbacks
from providers.sandbox.models import SandboxMessage
from providers.sandbox.tasks import sandbox_callbacks_send
from tests.factories import SANDBOX_TWILIO_AUTH as AUTH
from tests.factories import SANDBOX_TWILIO_CREATE as CREATE

BASE_DIR = Path(settings.BASE_DIR)

_INSPECT = """
import json, sys
import django
django.setup()
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client

call_command("migrate", verbosity=0)
import config.urls, config.wsgi
from config.celery import app
from providers import registry

registry.providers_for("sms"), registry.providers_for("email")
app.loader.import_default_modules()  # what a worker imports: every installed app's tasks
client = Client()
print(json.dumps({
    "installed": apps.is_installed("providers.sandbox"),
    "tables": sorted(t for t in connection.introspection.table_names() if "sandbox" in t),
    "create": client.post("/sandbox/twilio/2010-04-01/Accounts/AC1/Messages.json", {"To": "+18045551234"}).status_code,
    "inspect": client.get("/sandbox/messages").status_code,
    "tasks": sorted(name for name in app.tasks if "sandbox" in name),
    "modules": sorted(m for m in sys.modules if m.startswith("providers.sandbox")),
}))
"""


def _inspect(tmp_path: Path, sandbox: str) -> dict:
    """A fresh process on a fresh SQLite database, migrated, with PROVIDER_SANDBOX as given."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PROVIDER_SANDBOX": sandbox,
    }
    result = subprocess.run(
        [sys.executable, "-c", _INSPECT], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_the_sandbox_off_it_is_not_installed_mounted_migrated_or_imported(tmp_path):
    found = _inspect(tmp_path, "false")

    assert found["installed"] is False
    assert found["tables"] == []
    assert (found["create"], found["inspect"]) == (404, 404)
    assert found["tasks"] == []
    assert found["modules"] == []


def test_with_the_sandbox_on_it_is_installed_mounted_and_migrated(tmp_path):
    found = _inspect(tmp_path, "true")

    assert found["installed"] is True
    assert found["tables"] == ["sandbox_sandboxcall", "sandbox_sandboxmessage"]
    assert (found["create"], found["inspect"]) == (401, 200)  # a create without Twilio's Basic auth
    assert found["tasks"] == ["providers.sandbox.tasks.sandbox_callbacks_send"]


def _wsgi(path: str, *, method: str = "GET", body: bytes = b"", **headers) -> tuple[str, dict, bytes]:
    """One request to the WSGI application gunicorn serves (config.wsgi)."""
    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **{f"HTTP_{k.upper()}" if k != "CONTENT_TYPE" else k: v for k, v in headers.items()},
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=dict(response_headers))

    chunks = application(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        chunks.close()
    return answer["status"], answer["headers"], content


def test_sandbox_requests_skip_the_api_middleware_and_other_requests_do_not(transactional_db):
    form = b"To=%2B18045551234&From=%2B12016661234&Body=hi"

    status, headers, content = _wsgi(
        CREATE, method="POST", body=form, CONTENT_TYPE="application/x-www-form-urlencoded", AUTHORIZATION=AUTH
    )
    health_status, health_headers, _ = _wsgi("/health")

    assert status.startswith("201")
    assert json.loads(content)["sid"] == SandboxMessage.objects.get().sid
    assert "X-Request-ID" not in headers  # RequestIdMiddleware did not run
    assert health_status.startswith("200")
    assert "X-Request-ID" in health_headers


def test_a_create_of_the_lean_path_still_answers_twilio_errors(transactional_db):
    status, _, content = _wsgi(CREATE, method="POST", body=b"From=%2B12016661234&Body=hi", AUTHORIZATION=AUTH)

    assert status.startswith("400")
    assert json.loads(content)["code"] == 21604
    assert SandboxMessage.objects.count() == 0


@pytest.fixture
def wakes(monkeypatch):
    """The callbacks task's publishes (countdowns), with the wake window starting afresh."""
    published = []
    monkeypatch.setattr(callbacks, "_last_wake", 0.0)
    monkeypatch.setattr(sandbox_callbacks_send, "apply_async", lambda **kw: published.append(kw["countdown"]))
    return published


def test_creates_close_together_wake_the_callbacks_task_once(client, db, wakes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            client.post(
                CREATE, {"To": f"+1804555123{n}", "From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH
            )

    assert SandboxMessage.objects.filter(callbacks_due_at__isnull=False).count() == 5
    assert wakes == [callbacks.WAKE_SECONDS]


def test_a_timed_out_create_wakes_the_callbacks_task_after_the_client_gave_up(
    client, db, settings, wakes, django_capture_on_commit_callbacks
):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.1
    with django_capture_on_commit_callbacks(execute=True):
        client.post(CREATE, {"To": "+15005550004", "From": "+12016661234", "Body": "hi"}, HTTP_AUTHORIZATION=AUTH)

    message = SandboxMessage.objects.get()
    assert wakes == [pytest.approx(0.1 * 2 + 2 + callbacks.WAKE_SECONDS)]
    assert (message.callbacks_due_at - message.created_at).total_seconds() == pytest.approx(2.2, abs=0.05)


def _form(to: str, body: str = "hi") -> dict:
    callback = f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/twilio/status?ref=1"
    return {"To": to, "From": "+12016661234", "Body": body, "StatusCallback": callback}


def test_the_callbacks_task_posts_every_due_receipt_and_wakes_again_for_the_rest(client, sandbox, settings, wakes):
    for to in ("+18045551234", "+18045551235", "+15005550005"):
        client.post(CREATE, _form(to), HTTP_AUTHORIZATION=AUTH)
    settings.PROVIDER_TIMEOUT_SECONDS = 0.01
    client.post(CREATE, _form("+15005550004", "later"), HTTP_AUTHORIZATION=AUTH)
    settings.PROVIDER_TIMEOUT_SECONDS = 2  # our webhook answers the receipts within it
    calls_before = sandbox.calls

    taken = sandbox_callbacks_send()

    statuses = dict(SandboxMessage.objects.values_list("to_address", "status"))
    assert taken == 3
    assert statuses == {
        "+18045551234": "delivered",
        "+18045551235": "delivered",
        "+15005550005": "undelivered",
        "+15005550004": "queued",  # its receipts are due after the client's timeout
    }
    assert sandbox.calls - calls_before == 6  # `sent` and the final status, for each of three
    assert SandboxMessage.objects.filter(callbacks_due_at__isnull=True).count() == 3
    # Once more, when the timed-out create's receipts fall due (2.02 s after it, at least 1 s from now).
    assert len(wakes) == 1 and 1 + callbacks.WAKE_SECONDS <= wakes[0] <= 2.02 + callbacks.WAKE_SECONDS


def test_receipts_our_webhook_refused_are_tried_again_later_then_given_up(client, db, settings, wakes):
    client.post(CREATE, _form("+18045551234"), HTTP_AUTHORIZATION=AUTH)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{settings.PUBLIC_BASE_URL}/api/webhooks/providers/twilio/status", status=503)

        sandbox_callbacks_send()
        first = SandboxMessage.objects.get()
        for _ in range(callbacks.MAX_TRIES - 1):
            SandboxMessage.objects.update(callbacks_due_at="2000-01-01T00:00:00Z")
            sandbox_callbacks_send()
        last = SandboxMessage.objects.get()

    assert (first.status, first.callback_tries) == ("queued", 1)
    assert (first.callbacks_due_at - first.created_at).total_seconds() >= 1
    assert (last.status, last.callback_tries, last.callbacks_due_at) == ("queued", callbacks.MAX_TRIES, None)
    assert wakes[0] == pytest.approx(1 + callbacks.WAKE_SECONDS, abs=0.2)  # when the first retry falls due
    assert len(wakes) == callbacks.MAX_TRIES - 1  # none once given up
