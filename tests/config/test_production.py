"""APP_ENV=production: refuses unsafe settings, passes Django's deploy checks, and
answers with the security headers."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = secrets.token_urlsafe(50)


def _run(args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    environment |= {"APP_ENV": "production", "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    environment |= {"PUBLIC_BASE_URL": "https://messaging.example.com"}
    environment |= env
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True)


def test_recordings_go_to_a_private_s3_compatible_bucket_when_one_is_named(tmp_path):
    show = (
        "import django; django.setup(); from django.core.files.storage import storages; "
        "s = storages['recordings']; "
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.default_acl, s.querystring_auth, s.location)"
    )
    env = {"APP_ENV": "local", "RECORDINGS_S3_BUCKET": "voicemail", "RECORDINGS_S3_ENDPOINT_URL": "http://127.0.0.1:9"}

    named = _run(["-c", show], tmp_path, **env)
    unnamed = _run(
        ["-c", show.replace(", s.bucket_name, s.endpoint_url, s.default_acl, s.querystring_auth", "")],
        tmp_path,
        APP_ENV="local",
    )

    assert named.returncode == 0, named.stderr
    assert named.stdout.split() == ["S3Storage", "voicemail", "http://127.0.0.1:9", "private", "True", "recordings"]
    assert unnamed.stdout.split() == ["FileSystemStorage", str(tmp_path / "recordings")]


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, SECRET_KEY=GOOD_SECRET)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "local-development-key-not-for-production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY"),
        ({"SECRET_KEY": GOOD_SECRET, "DEBUG": "true"}, "DEBUG"),
        ({"SECRET_KEY": GOOD_SECRET, "PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(tmp_path, env, complaint):
    result = _run(["manage.py", "check"], tmp_path, **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


_SHOW = """
import django
django.setup()
from django.conf import settings as s
print(s.ALLOW_ANONYMOUS_API, s.ALLOW_UNSIGNED_WEBHOOKS, s.PROVIDER_SANDBOX, s.SECURE_SSL_REDIRECT,
      s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)
"""


def test_production_turns_off_every_local_convenience(tmp_path):
    result = _run(["-c", _SHOW], tmp_path, SECRET_KEY=GOOD_SECRET)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", "True", "True", "True", "True"]


def test_production_refuses_key_less_requests_and_unsigned_webhooks(api, settings):
    settings.ALLOW_ANONYMOUS_API = False
    settings.ALLOW_UNSIGNED_WEBHOOKS = False
    inbound = {"from": "+18045551234", "to": "+12016661234", "type": "sms", "messaging_provider_id": "p", "body": "x"}

    assert api.get("/api/conversations").status_code == 401
    response = api.post("/api/webhooks/sms", inbound, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The webhook is not signed."


@pytest.mark.parametrize("path", ["/api/conversations", "/health", "/admin/login/", "/api/nowhere"])
def test_responses_carry_the_security_headers(client, db, path):
    response = client.get(path)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_api_answers_are_never_cached(client, db):
    assert client.get("/api/conversations")["Cache-Control"] == "no-store"


def test_static_files_live_beside_the_code_whatever_each_machine_var_dir(tmp_path):
    """collectstatic is a build step of the code: machines with their own VAR_DIR serve
    the same files, none of them from a folder that only one machine filled."""
    show = "import django; django.setup(); from django.conf import settings; print(settings.STATIC_ROOT)"
    roots = {_run(["-c", show], tmp_path / name, SECRET_KEY=GOOD_SECRET).stdout.strip() for name in ("a", "b")}

    assert roots == {str(ROOT / "staticfiles")}
