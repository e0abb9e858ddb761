"""The cost ledger: what each layer of a send costs, measured on the same run.

One server at a time, each production's except for what the ledger strips (see
bench/ledger_settings.py). The first has no middleware and logs only warnings; on it the
staged endpoints of bench/ledger_urls.py add one layer each, up to the send endpoint.
The next servers put back the request log line (at INFO, as production logs), then
django-prometheus, then the rest of production's middleware. For each stage: requests/s
at 16 connections and the CPU each request took, in the web's processes, PostgreSQL's
and Redis's, read from /proc around the run. A layer's cost is its stage's web CPU less
the stage before it.

Every stage sends to the same pool of recipients, each with a conversation seeded
beforehand: otherwise the early stages would pay for creating conversations that the
later ones find, and the differences would measure that instead of the layers. So the
ledger prices a reply in an existing conversation; `send` in the main table measures
the mix of new and existing ones.
"""

import time

from bench import drivers
from bench.options import OUT, RECIPIENTS, log
from bench.processes import GUNICORN, cpu_sample, cpu_used, free_port, wait_http

SEND = "/api/messages/sms"
# (middleware, log level, [(stage, path)]): the servers, in order, and their stages.
SERVERS = [
    (
        "none",
        "WARNING",
        [
            ("bare DRF (parse, render)", "/bench/ledger/bare"),
            ("+ authentication (API key)", "/bench/ledger/authenticated"),
            ("+ rate limit (Redis)", "/bench/ledger/rate-limited"),
            ("+ validation (serializer)", "/bench/ledger/validated"),
            ("+ the insert (one statement, NOTIFY) and the answer", "/bench/ledger/stored"),
            ("+ the send view (idempotency, errors)", SEND),
        ],
    ),
    ("logging", "INFO", [("+ logging (request id, one line at INFO)", SEND)]),
    ("metrics", "INFO", [("+ metrics (request counters)", SEND)]),
    ("all", "INFO", [("+ the remaining middleware (production)", SEND)]),
]
CONNECTIONS = 16
PREFIX = "+1201777"  # the ledger's own recipients: +12017770000 and up


def ledger(b) -> None:
    log(f"ledger: seeding a conversation with each of its {RECIPIENTS} recipients")
    b.services.seed(
        "history",
        *("--prefix", PREFIX, "--conversations", str(RECIPIENTS), "--per-conversation", "1"),
        *("--ids-out", str(OUT / "ledger_ids.txt")),
    )
    rows = []
    for middleware, level, stages in SERVERS:
        port = free_port()
        env = b.services.env(
            PORT=port,
            HOST="127.0.0.1",
            DJANGO_SETTINGS_MODULE="bench.ledger_settings",
            BENCH_LEDGER_MIDDLEWARE=middleware,
            LOG_LEVEL=level,
        )
        env |= b.services.web_overrides()
        leader = b.services.procs.start("ledger-web", GUNICORN, env)
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            for stage, path in stages:
                rows.append(_stage(b, stage, path, port, leader.pid))
        finally:
            b.services.procs.stop("ledger-web")
    previous = None
    for row in rows:
        row["marginal_ms"] = round(row["web_ms"] - previous, 2) if previous is not None else row["web_ms"]
        previous = row["web_ms"]
    b.results["ledger"] = rows


def _stage(b, stage: str, path: str, port: int, leader: int) -> dict:
    env = {"BENCH_API_KEY": b.api_key, "BENCH_PATH": path, "BENCH_PREFIX": PREFIX}
    drivers.wrk("send.lua", CONNECTIONS, b.c.warmup, port=port, threads=b.c.threads, env=env)
    time.sleep(1)
    # The backends serving the bench's database (persistent connections, so the same
    # ones through the run): other databases on a shared server are not counted.
    backends = b.store.backends()
    before = cpu_sample({"web": leader})
    result = drivers.wrk("send.lua", CONNECTIONS, b.c.duration, port=port, threads=b.c.threads, env=env)
    used = cpu_used(before, cpu_sample({"web": leader}), backends)
    requests = max(result["requests"], 1)
    row = {
        "stage": stage,
        "per_s": result["ok_per_s"],
        "p99_ms": result["p99_ms"],
        "failed": result["failed"],
        **{f"{k}_ms": round(seconds * 1000 / requests, 2) for k, seconds in used.items()},
    }
    log(
        f"ledger {stage}: {row['per_s']}/s, web {row['web_ms']} ms, postgres {row['postgres_ms']} ms, "
        f"redis {row['redis_ms']} ms of CPU a request, failed {row['failed']}"
    )
    return row
