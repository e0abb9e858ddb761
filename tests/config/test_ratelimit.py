"""Rate limits: headers, 429s, who shares a budget, the sliding window, processes sharing
Redis, and failing open when the store is gone."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from config import ratelimit
from conversations.services import api_key_create
from tests.factories import AccountFactory

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_020.0  # a fixed instant, 20 s into a 60 s window


@pytest.fixture
def frozen_clock(monkeypatch):
    """Pin the limiter's clock so a test never straddles a window boundary."""
    monkeypatch.setattr(ratelimit.time, "time", lambda: NOW)


@pytest.fixture
def tight_limit(settings, frozen_clock):
    settings.RATE_LIMITS = {"api": (3, 60), "webhooks": (5, 60)}


def _bearer(account=None) -> dict:
    _, raw_key = api_key_create(account=account or AccountFactory())
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def test_every_api_response_carries_the_limit_headers(api, tight_limit):
    first = api.get("/api/conversations")
    second = api.get("/api/conversations")

    assert first.status_code == second.status_code == 200
    assert first["X-RateLimit-Limit"] == "3"
    assert (first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"]) == ("2", "1")
    assert first["X-RateLimit-Reset"] == "40"


def test_over_the_limit_is_a_429_with_retry_after_and_the_envelope(api, tight_limit):
    for _ in range(3):
        assert api.get("/api/conversations").status_code == 200

    response = api.get("/api/conversations")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response["X-RateLimit-Remaining"] == "0"
    # Room again 40 s into the next window, when the three weigh 3 * (1 - 20/60) = 2.
    assert response["Retry-After"] == str(40 + 20)


def test_rejected_requests_do_not_count_against_the_client(api, tight_limit, monkeypatch):
    for _ in range(10):
        api.get("/api/conversations")

    # In the next window the three accepted requests weigh 3 * (1 - 41/60) < 1 ...
    monkeypatch.setattr(ratelimit.time, "time", lambda: NOW + 81)

    # ... so two more fit, which would not be so had the seven 429s been counted.
    assert [api.get("/api/conversations").status_code for _ in range(3)] == [200, 200, 429]


def test_each_api_key_has_its_own_budget(api, tight_limit):
    one, other = _bearer(), _bearer()
    for _ in range(3):
        api.get("/api/conversations", **one)

    assert api.get("/api/conversations", **one).status_code == 429
    assert api.get("/api/conversations", **other).status_code == 200
    assert api.get("/api/conversations").status_code == 200  # anonymous: its own, by address


def test_anonymous_clients_are_limited_by_address(api, tight_limit):
    for _ in range(3):
        api.get("/api/conversations", REMOTE_ADDR="10.0.0.1")

    assert api.get("/api/conversations", REMOTE_ADDR="10.0.0.1").status_code == 429
    assert api.get("/api/conversations", REMOTE_ADDR="10.0.0.2").status_code == 200


def test_webhooks_have_their_own_wider_budget(api, tight_limit):
    for _ in range(3):
        api.get("/api/conversations")
    body = {
        "from": "+18045551234",
        "to": "+12016661234",
        "type": "sms",
        "body": "hi",
        "attachments": None,
        "timestamp": "2024-11-01T14:00:00Z",
    }

    statuses = [
        api.post("/api/webhooks/sms", {**body, "messaging_provider_id": f"m{i}"}, format="json").status_code
        for i in range(6)
    ]

    assert statuses == [201] * 5 + [429]


def test_health_ready_and_metrics_are_never_limited(api, settings, frozen_clock):
    settings.RATE_LIMITS = {"api": (1, 60), "webhooks": (1, 60)}
    for path in ("/health", "/ready", "/metrics"):
        responses = [api.get(path) for _ in range(3)]
        assert [r.status_code for r in responses] == [200] * 3
        assert "X-RateLimit-Limit" not in responses[-1]


def test_limits_can_be_switched_off(api, settings, frozen_clock):
    settings.RATE_LIMITS = {"api": (1, 60), "webhooks": (1, 60)}
    settings.RATE_LIMIT_ENABLED = False

    assert [api.get("/api/conversations").status_code for _ in range(3)] == [200] * 3


@pytest.mark.django_db
def test_the_window_slides_rather_than_resetting():
    window = 60
    start = 1_800_000_000.0 - 1_800_000_000.0 % window  # the start of a window
    hits = [ratelimit.rate_limit_hit("slide", limit=10, window=window, now=start + 30) for _ in range(11)]
    assert [h.allowed for h in hits] == [True] * 10 + [False]

    # A quarter into the next window, 3/4 of the previous ten still count: two fit.
    later = [ratelimit.rate_limit_hit("slide", limit=10, window=window, now=start + 75) for _ in range(3)]
    assert [h.allowed for h in later] == [True, True, False]
    assert later[1].remaining == 0
    # 7.5 + 2 = 9.5 >= 10 - 1 until the previous share fades to 7: 60 * (1 - 7/10) - 15 = 3 s.
    assert later[2].retry_after == 3

    # Two windows on, the first has no weight left.
    fresh = ratelimit.rate_limit_hit("slide", limit=10, window=window, now=start + 150)
    assert fresh.allowed and fresh.remaining == 10 - 1 - round(2 * (1 - 30 / 60))


_COUNT_IN_A_PROCESS = """
import django, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from config.ratelimit import rate_limit_hit
allowed = sum(
    rate_limit_hit(sys.argv[1], limit=60, window=3600, now=float(sys.argv[2])).allowed for _ in range(50)
)
print(allowed)
"""


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL) shared by two processes")
def test_two_processes_share_one_budget_in_redis(settings):
    identity = f"shared-{time.time_ns()}"
    now = str(time.time() // 3600 * 3600 + 10)  # early in a window, so the previous one has no weight
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNT_IN_A_PROCESS, identity, now], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    allowed = [int(p.communicate(timeout=60)[0]) for p in processes]

    assert sum(allowed) == 60
    assert all(0 < a <= 50 for a in allowed)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own, so the test can stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: cannot stop a real Redis under the limiter")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield process, f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait()


def test_fails_open_when_redis_is_stopped(api, settings, private_redis, caplog):
    process, url = private_redis
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
            "KEY_PREFIX": "msg",
        }
    }
    settings.RATE_LIMITS = {"api": (100, 60), "webhooks": (100, 60)}
    assert api.get("/api/conversations")["X-RateLimit-Remaining"] == "99"

    process.kill()
    process.wait()
    before = REGISTRY.get_sample_value("ratelimit_failopen_total") or 0
    response = api.get("/api/conversations")

    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response
    assert REGISTRY.get_sample_value("ratelimit_failopen_total") == before + 1
    assert "rate limit store unreachable" in caplog.text
    # Within the pause the dead store is not asked again (no second timeout, no second count).
    assert api.get("/api/conversations").status_code == 200
    assert REGISTRY.get_sample_value("ratelimit_failopen_total") == before + 1
