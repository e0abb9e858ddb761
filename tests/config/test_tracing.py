"""Tracing is off unless the standard OTEL_* variables ask for it; on, it traces the web
request, its database queries, Celery tasks and the provider HTTP client. Each case runs
in a fresh process, as a deployment would (the instrumentation is process-wide), with
the console exporter: nothing leaves the machine."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from config.tracing import tracing_wanted
from tests.e2e.conftest import database_url

SCRIPT = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from config.tracing import tracing_setup, tracing_shutdown
on = tracing_setup(service="test")
django.setup()
from django.test import Client
from django.db import connection
import requests
from messaging.tasks import messages_sweep
Client().get("/health")
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
try:
    requests.get("http://127.0.0.1:9/", timeout=0.5)  # refused: a client span all the same
except requests.RequestException:
    pass
messages_sweep.apply()
tracing_shutdown()
print("TRACING=" + json.dumps(on))
"""


def _run(env: dict) -> tuple[bool, list[dict]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=settings.BASE_DIR,
        env=clean | {"DATABASE_URL": database_url(), "VAR_DIR": str(settings.VAR_DIR), "LOG_LEVEL": "WARNING"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    on = json.loads(out.rsplit("TRACING=", 1)[1])
    decoder, spans, index = json.JSONDecoder(), [], 0
    text = out.rsplit("TRACING=", 1)[0]
    while (start := text.find("{", index)) != -1:
        span, index = decoder.raw_decode(text, start)
        spans.append(span)
    return on, spans


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_SERVICE_NAME": "messaging-web"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ],
)
def test_only_the_standard_variables_switch_tracing_on(environ, wanted):
    assert tracing_wanted(environ) is wanted


@pytest.mark.django_db(transaction=True)
def test_tracing_is_off_by_default():
    on, spans = _run({})

    assert on is False and spans == []


@pytest.mark.django_db(transaction=True)
def test_otel_variables_trace_django_celery_psycopg_and_requests():
    on, spans = _run({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "messaging-test"})

    assert on is True
    names = {span["name"] for span in spans}
    attributes = [span["attributes"] for span in spans]
    assert "GET health" in names  # Django
    assert "run/messaging.tasks.messages_sweep" in names  # Celery
    assert any(a.get("http.url", "").startswith("http://127.0.0.1:9/") for a in attributes)  # requests
    if connection.vendor == "postgresql":
        assert any(a.get("db.system") == "postgresql" for a in attributes)  # psycopg
    assert {span["resource"]["attributes"]["service.name"] for span in spans} == {"messaging-test"}
