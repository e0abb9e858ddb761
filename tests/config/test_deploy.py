"""The production stack's files agree with the code: one worker per queue, a health
check on every long-running service, Prometheus scraping the services that exist, and a
dashboard and alerts that ask only for metrics the service exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client import Counter, Histogram

from config import metrics

ROOT = Path(settings.BASE_DIR)
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
STATE_GAUGES = {
    "queue_depth",
    "messages_outstanding",
    "messages_oldest_due_seconds",
    "circuit_breaker_state",
    "metrics_source_up",
}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "max", "min", "histogram_quantile", "vector", "or", "and", "humanize"}
LABELS = {
    "status", "channel", "direction", "provider", "operation", "outcome", "reason", "actor", "kind", "webhook",
    "scope", "task", "state", "queue", "source", "le", "view", "job", "instance",
}  # fmt: skip


def _exported() -> set[str]:
    names = set(STATE_GAUGES) | {"up"}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, Histogram):
            names |= {value._name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def _unknown_metrics(expr: str) -> set[str]:
    bare = re.sub(r'"[^"]*"|\[[^\]]*\]|\$\w+', " ", expr)
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare)) - PROMQL_WORDS - LABELS
    return {t for t in tokens if not t.startswith("django_http_") and not re.fullmatch(r"[0-9e]+", t)} - _exported()


def test_one_worker_per_queue_covers_every_queue():
    consumed = []
    for service in SERVICES.values():
        command = service.get("command") or []
        if "worker" in command:
            consumed += command[command.index("-Q") + 1].split(",")

    assert sorted(consumed) == sorted(["sms", "mms", "email", "voice", "maintenance", "sandbox", "webhooks"])
    assert {"postgres", "redis", "web", "beat", "prometheus", "grafana"} <= set(SERVICES)


def test_every_long_running_service_has_a_health_check():
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue  # one-shot (migrate): the others wait for it to complete
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name


def test_prometheus_scrapes_services_that_exist():
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    names = {n for job in config["scrape_configs"] for sd in job.get("dns_sd_configs", []) for n in sd["names"]}

    assert names == {name for name in SERVICES if name == "web" or name.startswith("worker-")}
    assert all(service["environment"]["METRICS_PORT"] == "9100" for name, service in SERVICES.items() if name in names)


def test_dashboard_and_alerts_ask_only_for_exported_metrics():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/messaging.json").read_text())
    alerts = yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]

    assert len(expressions) > 30
    assert {expr: _unknown_metrics(expr) for expr in expressions if _unknown_metrics(expr)} == {}
    used = {t for expr in expressions for t in re.findall(r"[a-z_]+", expr)}
    assert {"messages_total", "provider_request_duration_seconds_bucket", "queue_depth", "dead_letters_total"} <= used
    assert {"ratelimit_rejections_total", "webhook_signature_failures_total", "circuit_breaker_state"} <= used


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="needs the docker-compose validator")
def test_compose_file_is_valid():
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
