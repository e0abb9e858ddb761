"""What every part of the bench shares: its knobs (BENCH_*, listed in bench/run.py),
the paths it works in and the fixtures' constants."""

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LUA = ROOT / "bench" / "lua"
OUT = ROOT / "var" / "bench"
READ_IDS = OUT / "read_ids.txt"
SEEDED_IDS = OUT / "seeded_ids.txt"
SENDER = "+12025550123"
PACED_SENDER = "+12025550124"  #: a long code with a throughput of BENCH_PACING_RATE
ACCOUNT = "bench"
WEBHOOK_SECRET = "bench-webhook-secret"  # noqa: S105
RECIPIENTS = 10_000
BATCH_SIZE = 1000
BATCH_CONNECTIONS = (2, 4)
QUEUES = "sms,mms,email"
# The sandbox hammered directly: its accept ceiling, the drain's.
SANDBOX_CONNECTIONS = (64, 256)
PHASES = {
    "pgbench",
    "ceiling",
    "ledger",
    "send",
    "batch",
    "webhook",
    "read",
    "sandbox",
    "drain",
    "e2e",
    "schedule",
    "pacing",
    "stored",
}


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


@dataclass
class Config:
    duration: int = int(os.environ.get("BENCH_DURATION", "10"))
    warmup: int = 2
    connections: list[int] = field(
        default_factory=lambda: [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,64").split(",")]
    )
    seed_messages: int = int(os.environ.get("BENCH_SEED_MESSAGES", "1000000"))
    pools: list[tuple[str, int]] = field(
        default_factory=lambda: [
            (p.split(":")[0], int(p.split(":")[1]))
            for p in os.environ.get(
                "BENCH_POOLS", "prefork:2,prefork:8,threads:16,threads:32,gevent:32,gevent:64"
            ).split(",")
        ]
    )
    drain_messages: int = int(os.environ.get("BENCH_DRAIN_MESSAGES", "10000"))
    drain_seconds: int = int(os.environ.get("BENCH_DRAIN_SECONDS", "20"))
    e2e_seconds: int = int(os.environ.get("BENCH_E2E_SECONDS", "60"))
    schedule_messages: int = int(os.environ.get("BENCH_SCHEDULE_MESSAGES", "100000"))
    pacing_messages: int = int(os.environ.get("BENCH_PACING_MESSAGES", "300"))
    pacing_rate: float = float(os.environ.get("BENCH_PACING_RATE", "20"))
    pg: str = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    db: str = os.environ.get("BENCH_DB", "bench")
    redis: str = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
    redis_dbs: tuple[str, str] = tuple(os.environ.get("BENCH_REDIS_DBS", "10,11").split(","))  # type: ignore[assignment]
    latency_ms: int = int(os.environ.get("BENCH_LATENCY_MS", "100"))
    output: str = os.environ.get("BENCH_OUTPUT", "docs/performance.md")
    only: set[str] = field(
        default_factory=lambda: set(filter(None, os.environ.get("BENCH_ONLY", "").split(","))) or set(PHASES)
    )
    threads: int = 2  # wrk threads: one per core here

    @property
    def database_url(self) -> str:
        return f"{self.pg}/{self.db}"

    @property
    def cache_url(self) -> str:
        return f"{self.redis}/{self.redis_dbs[0]}"

    @property
    def broker_url(self) -> str:
        return f"{self.redis}/{self.redis_dbs[1]}"
