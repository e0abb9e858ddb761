"""The report: the machine it ran on, the results as markdown tables (printed, and
written between the bench markers of docs/performance.md) and as var/bench/results.json."""

import contextlib
import json
import os
import platform
import subprocess
from pathlib import Path

from bench.options import BATCH_SIZE, BIN, OUT, ROOT, Config, log
from bench.processes import run
from bench.store import Store

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NAMES = {
    "ceiling": "ceiling: bare DRF POST (`/bench/ceiling`)",
    "send": "`POST /api/messages/sms`",
    "batch": f"`POST /api/messages/batch` ({BATCH_SIZE:,} messages per request)",
    "webhook": "`POST /api/webhooks/sms` (signed)",
    "read": "`GET /api/conversations/{id}/messages` (50 per page)",
    "send_1m": "`POST /api/messages/sms`, 1M stored",
    "webhook_1m": "`POST /api/webhooks/sms`, 1M stored",
    "read_1m": "`GET /api/conversations/{id}/messages`, 1M stored",
}


# --- The machine ----------------------------------------------------------------------


def machine_info(store: Store) -> dict:
    commit = run(["git", "rev-parse", "--short", "HEAD"], check=False).strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], check=False).strip()
    return {
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "memory": _memory(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": _packages(),
        "postgres": store.sql("SHOW server_version", dbname="postgres")[0][0],
        "redis": _version(["redis-server", "--version"]),
        "wrk": _version(["wrk", "-v"]),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load_before": os.getloadavg()[0],
    }


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _memory() -> str:
    with contextlib.suppress(OSError, StopIteration):
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
        return f"{kb / 1024 / 1024:.1f} GiB"
    return "unknown"


def _packages() -> str:
    """The versions the venv, not this interpreter, has installed."""
    return run(
        [
            str(BIN / "python"),
            "-c",
            "import django, rest_framework, celery, psycopg, gunicorn, kombu, redis;"
            "print(f'Django {django.__version__}, DRF {rest_framework.__version__}, Celery {celery.__version__}, "
            "kombu {kombu.__version__}, psycopg {psycopg.__version__}, gunicorn {gunicorn.__version__}, "
            "redis-py {redis.__version__}')",
        ]
    ).strip()


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


# --- Markdown -------------------------------------------------------------------------


def render(results: dict, config: Config) -> str:
    runs = results["runs"]
    lines = _header(results, config)
    lines += _throughput(runs)
    lines += _writes(runs)
    lines += _bulk(runs)
    lines += _stored(results)
    lines += _drain(results, config)
    lines += _e2e(results.get("e2e"))
    lines += _schedule(results.get("schedule"))
    lines += _pacing(results.get("pacing"))
    lines += _ledger(results.get("ledger"))
    return "\n".join(lines) + "\n"


def _header(results: dict, config: Config) -> list[str]:
    m = results["machine"]
    return [
        f"Run {results['started']} on commit {m['commit']}, {results.get('seconds', '?')} s in all.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, Linux {m['kernel']}; "
        f"load average {m['load_before']:.2f} at the start, {results.get('load_after', 0):.2f} at the end.",
        f"- Software: Python {m['python']}, {m['packages']}; PostgreSQL {m['postgres']}; {m['redis']}; {m['wrk']}.",
        f"- Shape: gunicorn `config/gunicorn.py` with `APP_ENV=production` (its defaults: WEB_CONCURRENCY, "
        f"worker class), Celery on Redis, PostgreSQL on loopback, the sandbox as a separate gunicorn "
        f"(2 x 128 threads) answering after {config.latency_ms} ms, wrk with {config.threads} threads on "
        f"the same machine. {config.duration} s per run after a {config.warmup} s warm-up; one run each.",
        "",
    ]


def _throughput(runs: dict) -> list[str]:
    """Every HTTP run, and each beside both ceilings at the same connection count."""
    lines = [
        "| what | conns | ok/s | p50 ms | p95 ms | p99 ms | failed | vs bare DRF | vs pgbench |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ceiling = {r["connections"]: r["ok_per_s"] for r in runs.get("ceiling", [])}
    pg = {r["connections"]: r["tps"] for r in runs.get("pgbench", [])}
    for r in runs.get("pgbench", []):
        lines.append(
            f"| ceiling: pgbench single-row INSERT | {r['connections']} | {r['tps']:.0f} | "
            f"{r['avg_ms'] or 0:.2f} (avg) | | | | | |"
        )
    for key, name in NAMES.items():
        for r in runs.get(key, []):
            c = r["connections"]
            vs_drf = "" if key == "ceiling" else _ratio(r["ok_per_s"], ceiling.get(c, 0))
            vs_pg = _ratio(r["ok_per_s"], pg.get(c, 0))
            lines.append(
                f"| {name} | {c} | {r['ok_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['failed']} | {vs_drf} | {vs_pg} |"
            )
    return lines


def _ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.0%}" if ceiling else "n/a"


def _writes(runs: dict) -> list[str]:
    lines = ["", "Writes, checked in the database and the broker after each run:", ""]
    lines += ["| what | conns | accepted | rows stored | tasks published |", "|---|---:|---:|---:|---:|"]
    for key in ("send", "batch", "webhook", "send_1m", "webhook_1m"):
        for r in runs.get(key, []):
            lines.append(
                f"| {NAMES[key]} | {r['connections']} | {r['requests'] - r['failed']} | {r['stored']} | "
                f"{r['published']} |"
            )
    return lines


def _bulk(runs: dict) -> list[str]:
    return [
        f"\nBulk at {r['connections']} connections: {r['ok_per_s'] * BATCH_SIZE:,.0f} messages/s accepted "
        f"({r['ok_per_s']} requests/s of {BATCH_SIZE:,}; p50 {r['p50_ms']:.0f} ms a request)."
        for r in runs.get("batch", [])
    ]


def _stored(results: dict) -> list[str]:
    """The runs with a large history against the same runs on the nearly empty database."""
    runs = results["runs"]
    if not any(k.endswith("_1m") for k in runs):
        return []
    lines = [
        "",
        f"With {results.get('stored_messages', 0):,} messages stored (seeded with COPY in "
        f"{results.get('seed_seconds', '?')} s), against the empty database:",
        "",
        "| what | conns | ok/s change | p99 change |",
        "|---|---:|---:|---:|",
    ]
    empty = {(k, r["connections"]): r for k in ("send", "webhook", "read") for r in runs.get(k, [])}
    for key in ("send", "webhook", "read"):
        for r in runs.get(f"{key}_1m", []):
            base = empty.get((key, r["connections"]))
            if base:
                lines.append(
                    f"| {NAMES[key]} | {r['connections']} | {r['ok_per_s'] / base['ok_per_s'] - 1:+.0%} | "
                    f"{r['p99_ms'] / base['p99_ms'] - 1:+.0%} |"
                )
    return lines


def _drain(results: dict, config: Config) -> list[str]:
    lines = _sandbox(results.get("runs", {}).get("sandbox", []), config)
    ceiling = results.get("sandbox_ceiling")
    lines += [
        "",
        f"Worker drain: {config.drain_messages} queued SMS published by the outbox relay, then one worker "
        f"started; messages/s from the first claim to the last `sent` (at most {config.drain_seconds} s), through "
        f"the sandbox over HTTP at {config.latency_ms} ms, against the sandbox's ceiling above "
        f"({ceiling or 0:.0f}/s). CPU in ms per message sent, from /proc once the first message is out "
        f"(PostgreSQL: the bench database's backends only); cores: the worker's and the sandbox's use meanwhile:",
        "",
        "| pool | concurrency | sent | failed | seconds | sent/s | vs sandbox | worker ms | sandbox ms "
        "| PostgreSQL ms | Redis ms | worker cores | sandbox cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in results.get("drain", []):
        lines.append(
            f"| {d['pool']} | {d['concurrency']} | {d['sent']} of {d['queued']} | {d['failed']} | {d['seconds']} | "
            f"{d['per_s']:.0f} | {_ratio(d['per_s'], ceiling or 0)} | {_ms(d.get('worker_ms'))} | "
            f"{_ms(d.get('sandbox_ms'))} | {_ms(d.get('postgres_ms'))} | {_ms(d.get('redis_ms'))} | "
            f"{d.get('worker_cores', '')} | {d.get('sandbox_cores', '')} |"
        )
    return lines


def _schedule(s: dict | None) -> list[str]:
    if not s:
        return []
    return [
        "",
        f"Scheduled sends: {s['messages']:,} messages scheduled for the same minute, released by beat "
        "(`messaging.tasks.messages_release` every second) through one prefork worker, without dispatch "
        "(the relay off). Lag from `send_at` to the first and the last release; rate from the first to the last:",
        "",
        "| scheduled | released | left | early | twice | first after send_at | last after send_at | released/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['messages']:,} | {s['released']:,} | {s['left']} | {s['early']} | {s['released_twice']} | "
        f"{s['first_lag_s']} s | {s['last_lag_s']} s | {s['per_s'] or 0:,} |",
    ]


def _pacing(p: dict | None) -> list[str]:
    if not p:
        return []
    return [
        "",
        f"Per-sender pacing: {p['messages']} queued SMS from one long code set to {p['rate']:g}/s and 200 from an "
        "unpaced sender, drained by two workers (prefork:2 each). The long code's rate as the provider (the sandbox) "
        "received it, first to last; the others' last arrival after the long code's first:",
        "",
        "| set /s | sent | measured /s | vs set | most tries | others sent | others out after |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {p['rate']:g} | {p['sent']} | {p['measured_per_s']} | {_ratio(p['measured_per_s'] or 0, p['rate'])} | "
        f"{p['most_tries']} | {p['others_sent']} | {p['others_out_after_s']} s |",
    ]


def _sandbox(runs: list[dict], config: Config) -> list[str]:
    if not runs:
        return []
    lines = [
        "",
        f"The sandbox's own ceiling: the Twilio create call the adapters make, sent straight to it by wrk "
        f"(answered after {config.latency_ms} ms); CPU in ms per create:",
        "",
        "| conns | creates/s | p50 ms | p99 ms | failed | sandbox ms | PostgreSQL ms | Redis ms | sandbox cores |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['connections']} | {r['ok_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['failed']} | "
        f"{_ms(r.get('sandbox_ms'))} | {_ms(r.get('postgres_ms'))} | {_ms(r.get('redis_ms'))} | "
        f"{r.get('sandbox_cores', '')} |"
        for r in runs
    ]
    return lines


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _e2e(e2e: dict | None) -> list[str]:
    if not e2e:
        return []
    return [
        "",
        f"Sustained, end to end (`created_at` to `sent_at`) with the {e2e['pool']}:{e2e['concurrency']} "
        f"worker draining while sends arrive for {e2e.get('seconds', '?')} s, paced at "
        f"{e2e['target_per_s']:.0f}/s (80% of the best send rate; {e2e['offered_per_s']:.0f}/s offered): "
        f"p50 {e2e['p50_s']} s, p99 {e2e['p99_s']} s over {e2e['sent']} messages, {e2e['unsent']} not sent "
        f"30 s after the load stopped; messages waiting (queued or sending) at most "
        f"{e2e.get('backlog_max', '?')} and {e2e.get('backlog_last', '?')} at the end, dispatch tasks "
        f"waiting in the broker at most {e2e.get('tasks_waiting_max', '?')}; send p99 "
        f"{e2e['send_p99_ms']:.1f} ms meanwhile.",
    ]


# --- Output ---------------------------------------------------------------------------


def _ledger(rows: list | None) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "Cost ledger of a send (bench/ledger.py): each stage adds one layer to the one above, on a server "
        "of its own at 16 connections; CPU per request from /proc around the run.",
        "",
        "| stage | req/s | p99 ms | web CPU ms | its own ms | PostgreSQL CPU ms | Redis CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['stage']} | {r['per_s']:.0f} | {r['p99_ms']:.1f} | {r['web_ms']:.2f} | {r['marginal_ms']:+.2f} | "
        f"{r['postgres_ms']:.2f} | {r['redis_ms']:.2f} |"
        for r in rows
    ]
    return lines


def save_results(results: dict) -> None:
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))


def write_report(text: str, output: str) -> None:
    """Print the report and, unless output is "-", replace the block between the
    markers in `output` (or append one, with a heading, to a file without them)."""
    print("\n" + text)
    if output == "-":
        return
    path = ROOT / output
    block = f"{BEGIN}\n{text}{END}"
    if path.exists() and BEGIN in path.read_text():
        current = path.read_text()
        start, end = current.index(BEGIN), current.index(END) + len(END)
        path.write_text(current[:start] + block + current[end:])
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        existing = path.read_text() if path.exists() else "# Performance\n\n"
        path.write_text(existing.rstrip("\n") + "\n\n## Latest `make bench`\n\n" + block + "\n")
    log(f"wrote {output}")
