"""What operators see while real processes deliver: /metrics on the web and on the
worker's own exporter move, and one request id follows a send from the API request to
the provider call in the worker's logs."""

import json
import subprocess
import sys
import time

import pytest
import requests

from tests.e2e.conftest import BASE_DIR, Worker, free_port, post, wait_final
from tests.factories import EMAIL, SMS
from tests.metrics_helpers import samples, scrape, value

pytestmark = pytest.mark.e2e


def test_web_and_worker_metrics_move_during_delivery(e2e):
    port = free_port()
    worker = Worker(e2e.url, METRICS_PORT=str(port), METRICS_ADDR="127.0.0.1").start()
    web_url, worker_url = f"{e2e.url}/metrics", f"http://127.0.0.1:{port}/metrics"
    try:
        web_before, worker_before = scrape(web_url), scrape(worker_url)
        ids = [
            post(e2e, "/api/messages/sms", SMS)["id"],
            post(e2e, "/api/messages/sms", SMS | {"to": "+15005550003"})["id"],  # two 429s, then accepted
            post(e2e, "/api/messages/email", EMAIL)["id"],
        ]
        messages = wait_final(ids, timeout=60)
        web_after, worker_after = scrape(web_url), scrape(worker_url)
    finally:
        worker.stop()

    assert {m.status for m in messages.values()} == {"delivered"}

    def moved(before, after, name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Counted in the worker's pool processes, served by the worker's own exporter...
    on_worker = {
        "sends": moved(worker_before, worker_after, "provider_requests_total", operation="send"),
        "rate limited": moved(
            worker_before, worker_after, "provider_requests_total", provider="twilio", outcome="transient"
        ),
        "latencies": moved(worker_before, worker_after, "provider_request_duration_seconds_count"),
        "attempts": moved(worker_before, worker_after, "delivery_attempts_total"),
        "retries": moved(worker_before, worker_after, "message_retries_total", channel="sms"),
        "sent": moved(worker_before, worker_after, "messages_total", direction="outbound", status="sent"),
    }
    # The relay batches what is due together: five tries, in one to five tasks.
    dispatch_tasks = moved(
        worker_before, worker_after, "celery_tasks_total", task="messaging.tasks.messages_dispatch", state="SUCCESS"
    )
    assert 1 <= dispatch_tasks <= 5
    assert on_worker == {
        "sends": 5,
        "rate limited": 2,
        "latencies": 5,
        "attempts": 5,
        "retries": 2,
        "sent": 3,
    }
    # ...and by the web's /metrics, which sums every process of this machine.
    assert moved(web_before, web_after, "provider_requests_total", operation="send") == 5
    assert moved(web_before, web_after, "messages_total", direction="outbound", status="queued") == 3 + 2
    assert moved(web_before, web_after, "messages_total", direction="outbound", status="delivered") == 3
    assert moved(web_before, web_after, "webhook_events_total", kind="status", outcome="processed") >= 3
    assert moved(web_before, web_after, "django_http_responses_total_by_status_total", status="202") >= 3
    assert value(worker_after, "queue_depth", queue="sms") >= 0  # the worker reads the state gauges too
    assert value(worker_after, "metrics_source_up", source="broker") == 1


def test_one_send_is_followed_from_request_to_provider_by_its_ids(e2e, json_logs):
    """The request id ties the web's lines together, the message id the web's to the
    worker's (the relay, not the request, publishes the dispatch)."""
    worker = Worker(e2e.url, LOG_FORMAT="json").start()
    try:
        response = requests.post(
            f"{e2e.url}/api/messages/sms", json=SMS, headers={"X-Request-ID": "follow-me-1"}, timeout=10
        )
        message_id = response.json()["id"]
        wait_final([message_id], timeout=30)
    finally:
        worker.stop()

    web = [line for line in json_logs() if line.get("request_id") == "follow-me-1"]
    worker_lines = worker.records()
    followed = [line for line in worker_lines if line.get("message_id") == message_id]

    assert response.headers["X-Request-ID"] == "follow-me-1"
    # One line for the request, naming the message it queued.
    assert [
        (line["event"], line.get("method"), line.get("path"), line.get("status"), line.get("message_id"))
        for line in web
    ] == [("request", "POST", "/api/messages/sms", 202, message_id)]
    task = next(line for line in worker_lines if line["event"] == "task" and "dispatch" in line["task"])
    assert (task["task"], task["state"]) == ("messaging.tasks.messages_dispatch", "SUCCESS")
    assert task["result"] == {"sent": 1}
    call = next(line for line in followed if line["event"] == "provider send")
    assert (call["provider"], call["outcome"], call["message_id"], call["http_status"]) == (
        "twilio",
        "success",
        message_id,
        201,
    )
    everything = json.dumps(web) + worker.log.read_text()
    assert SMS["to"] not in everything and SMS["from"] not in everything  # no number in the clear


def test_on_separate_hosts_each_reports_its_own_counters_and_only_beat_the_queue_gauges(e2e, settings, tmp_path):
    """Machines that share no folder: the worker's exporter counts its tasks and the
    web's /metrics does not; the queue and backlog gauges come from beat's exporter
    alone (METRICS_STATE_GAUGES off elsewhere), so a sum over hosts counts them once."""
    settings.METRICS_STATE_GAUGES = False  # the web (this live server)
    worker_port, beat_port = free_port(), free_port()
    (tmp_path / "worker").mkdir()
    (tmp_path / "beat").mkdir()
    worker = Worker(
        e2e.url,
        METRICS_PORT=str(worker_port),
        METRICS_ADDR="127.0.0.1",
        METRICS_STATE_GAUGES="false",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker"),
    ).start()
    beat_env = worker.env | {
        "METRICS_PORT": str(beat_port),
        "METRICS_STATE_GAUGES": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "beat"),
    }
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "WARNING", "-s", str(tmp_path / "schedule")],
        cwd=BASE_DIR,
        env=beat_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    web_url, worker_url = f"{e2e.url}/metrics", f"http://127.0.0.1:{worker_port}/metrics"
    try:
        web_before = scrape(web_url)
        message_id = post(e2e, "/api/messages/sms", SMS)["id"]
        wait_final([message_id], timeout=60)
        web_after, on_worker = scrape(web_url), scrape(worker_url)
        on_beat = _scrape_when_up(f"http://127.0.0.1:{beat_port}/metrics")
    finally:
        beat.terminate()
        beat.wait(20)
        worker.stop()

    def moved(name, **labels):
        return value(web_after, name, **labels) - value(web_before, name, **labels)

    assert value(on_worker, "provider_requests_total", operation="send") == 1
    assert value(on_worker, "messages_total", direction="outbound", status="sent") == 1
    assert moved("provider_requests_total", operation="send") == 0  # the worker's, not the web's
    assert moved("messages_total", direction="outbound", status="queued") == 1  # the web's own
    gauges = ("queue_depth", "messages_outstanding", "circuit_breaker_state")
    assert [g for g in gauges if g in web_after or g in on_worker] == []
    assert value(on_beat, "metrics_source_up", source="broker") == 1
    assert {dict(labels)["queue"] for name, labels in samples(on_beat) if name == "queue_depth"} >= {"sms", "email"}
    assert value(on_beat, "messages_outstanding", status="sending") == 0


def _scrape_when_up(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return scrape(url)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
