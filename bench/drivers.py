"""The load generators: wrk with the Lua scripts in bench/lua/, pgbench, and the signed
webhook requests wrk replays. Each run's output parsed into numbers."""

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from pathlib import Path

from bench.options import LUA, OUT, RECIPIENTS, SENDER, WEBHOOK_SECRET
from bench.processes import run


def wrk(
    script: str, connections: int, duration: int, *, port: int, threads: int, env: dict, host: str = "127.0.0.1"
) -> dict:
    """One wrk run against host:port; the script prints its results as one BENCH_JSON line."""
    environment = os.environ | {
        "BENCH_LUA": str(LUA),
        "BENCH_SENDER": SENDER,
        "BENCH_THREADS": str(threads),
        "BENCH_RECIPIENTS": str(RECIPIENTS),
    }
    environment |= {k: str(v) for k, v in env.items()}
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    command += ["-s", str(LUA / script), f"http://{host}:{port}"]
    out = run(command, env=environment, timeout=duration + 60)
    match = re.search(r"^BENCH_JSON (.*)$", out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return _wrk_result(json.loads(match.group(1)), connections)


def _wrk_result(raw: dict, connections: int) -> dict:
    seconds = raw["duration_us"] / 1e6
    failed = raw["status_errors"] + raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]
    failed += raw["timeouts"]
    return {
        "connections": connections,
        "seconds": round(seconds, 2),
        "requests": raw["requests"],
        "failed": failed,
        "ok_per_s": round((raw["requests"] - failed) / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


def signed_webhooks(connections: int, count: int) -> str:
    """Signed inbound webhooks for one run, each with a new provider id (a repeated id
    would be answered as a duplicate, not stored); the path of the file wrk reads."""
    path = OUT / f"webhooks-{connections}.tsv"
    timestamp = str(int(time.time()))
    tag = secrets.token_hex(4)
    with path.open("w") as f:
        for n in range(count):
            body = json.dumps(
                {
                    "from": f"+1201666{n % RECIPIENTS:04d}",
                    "to": SENDER,
                    "type": "sms",
                    "messaging_provider_id": f"bench-{tag}-{n}",
                    "body": f"Inbound benchmark message {n}",
                    "attachments": [],
                    "timestamp": "2024-11-01T14:00:00Z",
                },
                separators=(",", ":"),
            )
            digest = hmac.new(
                WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body.encode(), hashlib.sha256
            ).hexdigest()
            f.write(f"{timestamp}\tsha256={digest}\t{body}\n")
    return str(path)


def pgbench(
    pg: str, db: str, script: Path, connections: int, threads: int, duration: int
) -> tuple[float, float | None]:
    """One pgbench run of `script`: transactions per second and the average latency (ms)."""
    host, port, user = _pg_address(pg)
    command = ["pgbench", "-n", "-h", host, "-p", port, "-U", user, "-c", str(connections), "-j", str(threads)]
    command += ["-T", str(duration), "-f", str(script), db]
    out = run(command, timeout=duration + 60)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    return tps, float(latency.group(1)) if latency else None


def _pg_address(pg: str) -> tuple[str, str, str]:
    """Host, port and user of a postgres:// URL, for pgbench's command line."""
    host, port = re.match(r"postgres(?:ql)?://(?:[^@]*@)?([^:/]+):?(\d+)?", pg).groups()
    user = re.match(r"postgres(?:ql)?://([^:@/]+)", pg)
    return host, port or "5432", user.group(1) if user else "postgres"
