"""`make bench`: the production shape on this machine, measured beside its ceilings.

Starts PostgreSQL-backed gunicorn (APP_ENV=production), the provider sandbox as a
separate server answering after SANDBOX_LATENCY_MS, and Celery workers on Redis; drives
them with wrk on loopback; writes the table into docs/performance.md. Every process it
starts is stopped on the way out, failure or not, and the database it made is dropped.

Knobs (environment): BENCH_DURATION (seconds per load run, 10), BENCH_CONNECTIONS
("16,64"), BENCH_SEED_MESSAGES (1000000; 0 skips that phase), BENCH_POOLS (worker pools
to compare, "prefork:2,prefork:8,threads:16,threads:32,gevent:32,gevent:64"),
BENCH_DRAIN_MESSAGES (3000), BENCH_DRAIN_SECONDS (20), BENCH_PG
(postgres://postgres@127.0.0.1:5432), BENCH_DB (bench), BENCH_REDIS
(redis://127.0.0.1:6379), BENCH_REDIS_DBS ("10,11": cache, broker), BENCH_LATENCY_MS
(100), BENCH_OUTPUT (docs/performance.md; "-" prints only), BENCH_PROFILE (1: py-spy profiles of
a web worker at each run and of the worker while draining, in var/bench/), BENCH_ONLY (a subset of the phases
pgbench,ceiling,send,batch,webhook,read,drain,e2e,stored).
"""

import contextlib
import hashlib
import hmac
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LUA = ROOT / "bench" / "lua"
OUT = ROOT / "var" / "bench"
SENDER = "+12025550123"
ACCOUNT = "bench"
WEBHOOK_SECRET = "bench-webhook-secret"  # noqa: S105
RECIPIENTS = 10_000
BATCH_SIZE = 1000
BATCH_CONNECTIONS = (2, 4)
QUEUES = "sms,mms,email"


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
    drain_messages: int = int(os.environ.get("BENCH_DRAIN_MESSAGES", "3000"))
    drain_seconds: int = int(os.environ.get("BENCH_DRAIN_SECONDS", "20"))
    e2e_seconds: int = int(os.environ.get("BENCH_E2E_SECONDS", "60"))
    pg: str = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    db: str = os.environ.get("BENCH_DB", "bench")
    redis: str = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
    redis_dbs: tuple[str, str] = tuple(os.environ.get("BENCH_REDIS_DBS", "10,11").split(","))  # type: ignore[assignment]
    latency_ms: int = int(os.environ.get("BENCH_LATENCY_MS", "100"))
    output: str = os.environ.get("BENCH_OUTPUT", "docs/performance.md")
    only: set[str] = field(
        default_factory=lambda: (
            set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
            or {"pgbench", "ceiling", "send", "batch", "webhook", "read", "drain", "e2e", "stored"}
        )
    )
    threads: int = 2  # wrk threads: one per core here

    @property
    def database_url(self) -> str:
        return f"{self.pg}/{self.db}"


# --- Processes ------------------------------------------------------------------------


class Processes:
    """Children in their own process groups, stopped group by group, pids on disk so the
    shell wrapper can stop them too if this process is killed outright."""

    def __init__(self, pidfile: Path):
        self.pidfile = pidfile
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        logfile = open(OUT / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running[name] = process
        self._write()
        return process

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None:
            return
        # The leader first (gunicorn's master, Celery's main process): a warm shutdown
        # lets it finish what its children are doing; then whatever is left of the group.
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything the group left behind
        self._write()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def _write(self) -> None:
        self.pidfile.write_text("".join(f"{p.pid}\n" for p in self.running.values()))


def run(command: list[str], env: dict | None = None, timeout: float = 600, check: bool = True) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}... failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up in {timeout}s (see {OUT}/*.log)")
        time.sleep(0.3)


# --- The bench ------------------------------------------------------------------------


class Bench:
    def __init__(self, config: Config):
        self.c = config
        self.procs = Processes(OUT / "pids")
        self.web_port = free_port()
        self.sandbox_port = free_port()
        self.results: dict = {"runs": {}, "drain": [], "notes": []}
        self.api_key = ""
        self.secret_key = secrets.token_urlsafe(48)
        self.read_ids = OUT / "read_ids.txt"
        self.seeded_ids = OUT / "seeded_ids.txt"
        import psycopg  # the venv's, as run.sh runs us with it

        self.psycopg = psycopg
        import redis

        self.broker = redis.Redis.from_url(f"{config.redis}/{config.redis_dbs[1]}")
        self.cache = redis.Redis.from_url(f"{config.redis}/{config.redis_dbs[0]}")

    # -- environment --

    def app_env(self, **extra) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DB_", "WEB_", "WORKER_", "SANDBOX_", "PROVIDER", "BENCH_CEILING"))
        }
        env |= {
            "APP_ENV": "production",
            "SECRET_KEY": self.secret_key,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": self.c.database_url,
            "REDIS_URL": f"{self.c.redis}/{self.c.redis_dbs[0]}",
            "CELERY_BROKER_URL": f"{self.c.redis}/{self.c.redis_dbs[1]}",
            "PROVIDER_SANDBOX": "true",
            "SANDBOX_BASE_URL": f"http://127.0.0.1:{self.sandbox_port}/sandbox",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "SANDBOX_LATENCY_MS": str(self.c.latency_ms),
            "WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "VAR_DIR": str(OUT / "var"),
            "LOG_LEVEL": "WARNING",
            # Limits meant for clients, not for a load test from one address.
            "RATE_LIMIT_REQUESTS": "1000000000",
            "RATE_LIMIT_WEBHOOK_REQUESTS": "1000000000",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        }
        return env | {k: str(v) for k, v in extra.items()}

    def sql(self, query: str, params: tuple = (), dbname: str | None = None, autocommit: bool = True) -> list:
        url = f"{self.c.pg}/{dbname or self.c.db}"
        with self.psycopg.connect(url, autocommit=autocommit) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    # -- setup --

    def prepare(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "var").mkdir(exist_ok=True)
        for old in OUT.glob("*.log"):
            old.unlink()
        self.drop_database()
        self.sql(f'CREATE DATABASE "{self.c.db}"', dbname="postgres")
        self.broker.flushdb()
        self.cache.flushdb()
        env = self.app_env()
        log("migrating the bench database")
        run([str(BIN / "python"), "manage.py", "migrate", "--no-input", "-v", "0"], env=env)
        run([str(BIN / "python"), "manage.py", "create_account", ACCOUNT, "--sender", SENDER], env=env)
        out = run([str(BIN / "python"), "manage.py", "create_api_key", "--account", ACCOUNT], env=env)
        self.api_key = out.strip().splitlines()[-1].split("Bearer ")[-1]
        log("seeding 100 conversations of 60 messages for the read test")
        self.seed_history(prefix="+1646555", conversations=100, per_conversation=60, ids_out=self.read_ids)

    def drop_database(self) -> None:
        self.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.c.db,),
            dbname="postgres",
        )
        self.sql(f'DROP DATABASE IF EXISTS "{self.c.db}"', dbname="postgres")

    def seed_history(self, *, prefix: str, conversations: int, per_conversation: int, ids_out: Path) -> None:
        run(
            [
                str(BIN / "python"),
                "bench/seed.py",
                "history",
                "--account",
                ACCOUNT,
                "--sender",
                SENDER,
                "--prefix",
                prefix,
                "--conversations",
                str(conversations),
                "--per-conversation",
                str(per_conversation),
                "--ids-out",
                str(ids_out),
            ],
            env=self.app_env(),
            timeout=900,
        )

    def start_web(self) -> None:
        env = self.app_env(PORT=self.web_port, HOST="127.0.0.1", BENCH_CEILING="true")
        for name in ("WEB_CONCURRENCY", "WEB_WORKER_CLASS", "WEB_THREADS"):
            if os.environ.get(f"BENCH_{name}"):
                env[name] = os.environ[f"BENCH_{name}"]
        self.procs.start("web", [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi:application"], env)
        wait_http(f"http://127.0.0.1:{self.web_port}/health")

    def start_sandbox(self) -> None:
        # Its own server, so the provider's work is not done by the web's workers: threads
        # because every call sleeps SANDBOX_LATENCY_MS, a small pool for their database work.
        env = self.app_env(
            PORT=self.sandbox_port,
            HOST="127.0.0.1",
            WEB_CONCURRENCY=2,
            WEB_WORKER_CLASS="gthread",
            WEB_THREADS=128,
            DB_POOL_SIZE=8,
            ACCESS_LOG="/dev/null",
        )
        self.procs.start("sandbox", [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi:application"], env)
        wait_http(f"http://127.0.0.1:{self.sandbox_port}/health")

    def start_worker(self, pool: str, concurrency: int, queues: str = QUEUES) -> None:
        extra = {"LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING")}
        if pool == "gevent":
            extra["DB_POOL_SIZE"] = os.environ.get(
                "BENCH_GEVENT_DB_POOL", concurrency
            )  # greenlets come and go: pool their connections
            extra["BROKER_MAX_CONNECTIONS"] = concurrency + 10
        self.procs.start(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                queues,
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
                "-n",
                f"bench-{pool}-{concurrency}@%h",
            ],
            self.app_env(**extra),
        )

    # -- profiles (BENCH_PROFILE=1) --

    def profile(self, name: str, leader: str, seconds: int) -> subprocess.Popen | None:
        """py-spy on one child of a running leader (a gunicorn worker, a Celery pool
        process) or the leader itself; a flame graph and the top frames in var/bench/."""
        spy = BIN / "py-spy"
        if not os.environ.get("BENCH_PROFILE") or not spy.exists() or leader not in self.procs.running:
            return None
        pid = self.procs.running[leader].pid
        children = run(["pgrep", "-P", str(pid)], check=False).split()
        target = children[0] if children else str(pid)
        command = [str(spy), "record", "-p", target, "-d", str(seconds), "-r", "200", "--nonblocking"]
        if leader == "worker":
            command.append("--threads")
        return subprocess.Popen(
            [*command, "-f", "raw", "-o", str(OUT / f"profile-{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # -- measuring --

    def wrk(self, script: str, connections: int, duration: int, **env) -> dict:
        environment = os.environ | {
            "BENCH_LUA": str(LUA),
            "BENCH_API_KEY": self.api_key,
            "BENCH_SENDER": SENDER,
            "BENCH_THREADS": str(self.c.threads),
            "BENCH_RECIPIENTS": str(RECIPIENTS),
        }
        environment |= {k: str(v) for k, v in env.items()}
        command = [
            "wrk",
            f"-t{self.c.threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA / script),
            f"http://127.0.0.1:{self.web_port}",
        ]
        out = run(command, env=environment, timeout=duration + 60)
        match = re.search(r"^BENCH_JSON (.*)$", out, re.MULTILINE)
        if not match:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        raw = json.loads(match.group(1))
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

    def count(self, where: str = "") -> int:
        return self.sql(f"SELECT count(*) FROM messaging_message {where}")[0][0]

    def broker_depth(self) -> int:
        return sum(
            self.broker.llen(key) for key in self.broker.scan_iter(match="sms*") if self.broker.type(key) == b"list"
        )

    def load(self, label: str, script: str, connection_counts=None, **env) -> list[dict]:
        """A warm-up, then one run per connection count."""
        if script == "webhook.lua":
            env["BENCH_REQUESTS"] = self.signed_webhooks(0)
        self.wrk(script, (connection_counts or [16])[0], self.c.warmup, **env)
        runs = []
        for connections in connection_counts or self.c.connections:
            if script == "webhook.lua":
                env["BENCH_REQUESTS"] = self.signed_webhooks(connections)
            time.sleep(1)  # requests a previous run left in flight are answered
            before, depth = self.count(), self.broker_depth()
            spy = self.profile(f"{label}-{connections}", "web", max(self.c.duration - 2, 1))
            result = self.wrk(script, connections, self.c.duration, **env)
            if spy:
                spy.wait(timeout=30)
            time.sleep(1)
            result["stored"] = self.count() - before
            result["published"] = self.broker_depth() - depth
            log(
                f"{label} c={connections}: {result['ok_per_s']}/s ok, p50 {result['p50_ms']:.1f} "
                f"p95 {result['p95_ms']:.1f} p99 {result['p99_ms']:.1f} ms, failed {result['failed']}, "
                f"stored {result['stored']}, published {result['published']}"
            )
            runs.append(result)
        self.results["runs"][label] = runs
        return runs

    def signed_webhooks(self, connections: int) -> str:
        """Enough signed inbound webhooks, each with a new provider id, for one run."""
        path = OUT / f"webhooks-{connections}.tsv"
        count = 4000 * self.c.duration
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

    def pgbench(self) -> list[dict]:
        self.sql(
            "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, v integer, created_at timestamptz DEFAULT now())"
        )
        script = OUT / "insert.sql"
        script.write_text("\\set v random(1, 1000000)\nINSERT INTO bench_insert (v) VALUES (:v);\n")
        host, port = re.match(r"postgres(?:ql)?://(?:[^@]*@)?([^:/]+):?(\d+)?", self.c.pg).groups()
        user = re.match(r"postgres(?:ql)?://([^:@/]+)", self.c.pg)
        runs = []
        for connections in self.c.connections:
            out = run(
                [
                    "pgbench",
                    "-n",
                    "-h",
                    host,
                    "-p",
                    port or "5432",
                    "-U",
                    user.group(1) if user else "postgres",
                    "-c",
                    str(connections),
                    "-j",
                    str(self.c.threads),
                    "-T",
                    str(self.c.duration),
                    "-f",
                    str(script),
                    self.c.db,
                ],
                timeout=self.c.duration + 60,
            )
            tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
            latency = re.search(r"latency average = ([\d.]+) ms", out)
            runs.append(
                {
                    "connections": connections,
                    "tps": round(tps, 1),
                    "avg_ms": float(latency.group(1)) if latency else None,
                }
            )
            log(f"pgbench insert c={connections}: {tps:.0f} tps")
        self.sql("DROP TABLE bench_insert")
        self.results["runs"]["pgbench"] = runs
        return runs

    # -- workers --

    def settle_outbox(self) -> None:
        """Take earlier phases' messages out of the way: no worker will see them."""
        self.sql(
            "UPDATE messaging_message SET status = 'sent', sent_at = coalesce(sent_at, now()), "
            "lease_expires_at = NULL WHERE status IN ('queued', 'sending')"
        )
        self.broker.flushdb()

    def drain(self, pool: str, concurrency: int) -> dict:
        self.settle_outbox()
        out = run(
            [
                str(BIN / "python"),
                "bench/seed.py",
                "queued",
                "--account",
                ACCOUNT,
                "--sender",
                SENDER,
                "--count",
                str(self.c.drain_messages),
            ],
            env=self.app_env(),
        )
        first, last = (int(x) for x in out.split())
        started = time.monotonic()
        self.start_worker(pool, concurrency)
        time.sleep(3)
        spy = self.profile(f"drain-{pool}-{concurrency}", "worker", 10)
        deadline = started + self.c.drain_seconds + 10
        where = f"WHERE id BETWEEN {first} AND {last}"
        while time.monotonic() < deadline:
            if self.count(f"{where} AND status IN ('queued', 'sending')") == 0:
                break
            if self.procs.running["worker"].poll() is not None:
                log(f"the {pool} worker exited; see {OUT / 'worker.log'}")
                break
            time.sleep(0.25)
            # Time from the first message sent, so the worker's start-up is not counted;
            # stop after drain_seconds of sending.
            first_sent = self.sql(f"SELECT min(sent_at) FROM messaging_message {where}")[0][0]
            if first_sent and (datetime.now(UTC) - first_sent).total_seconds() > self.c.drain_seconds:
                break
        if spy:
            spy.wait(timeout=30)
        self.procs.stop("worker")
        sent, first_at, last_at, failed = self.sql(
            f"SELECT count(sent_at), min(sent_at), max(sent_at), count(*) FILTER (WHERE status = 'failed') "
            f"FROM messaging_message {where}"
        )[0]
        span = (last_at - first_at).total_seconds() if sent > 1 else 0
        connections = self.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.c.db,))[0][0]
        result = {
            "pool": pool,
            "concurrency": concurrency,
            "queued": last - first + 1,
            "sent": sent,
            "failed": failed,
            "seconds": round(span, 2),
            "per_s": round((sent - 1) / span, 1) if span else 0.0,
        }
        log(
            f"drain {pool}:{concurrency}: {result['per_s']}/s ({sent} of {result['queued']} sent in {span:.1f}s, "
            f"{failed} failed; {connections} db connections left)"
        )
        self.results["drain"].append(result)
        return result

    def end_to_end(self, pool: str, concurrency: int, rate: float) -> dict:
        self.settle_outbox()
        self.start_worker(pool, concurrency)
        time.sleep(3)
        since = self.sql("SELECT now()")[0][0]
        backlog, stop = [], threading.Event()

        def watch() -> None:  # what waits, once a second: in the table and in the broker
            while not stop.wait(1.0):
                waiting = self.sql(
                    "SELECT count(*) FROM messaging_message WHERE status IN ('queued', 'sending') AND created_at >= %s",
                    (since,),
                )[0][0]
                backlog.append((waiting, self.broker.llen("sms")))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        result = self.wrk("send.lua", 16, self.c.e2e_seconds, BENCH_RATE=rate)
        stop.set()
        watcher.join()
        deadline = time.monotonic() + 30
        where = "WHERE direction = 'outbound' AND created_at >= %s"
        while (
            time.monotonic() < deadline
            and self.sql(
                f"SELECT count(*) FROM messaging_message {where} AND sent_at IS NULL AND status <> 'failed'", (since,)
            )[0][0]
        ):
            time.sleep(0.5)
        self.procs.stop("worker")
        rows = self.sql(
            f"SELECT extract(epoch FROM sent_at - created_at) FROM messaging_message {where} AND sent_at IS NOT NULL",
            (since,),
        )
        waits = sorted(float(r[0]) for r in rows)
        unsent = self.sql(f"SELECT count(*) FROM messaging_message {where} AND sent_at IS NULL", (since,))[0][0]
        e2e = {
            "pool": pool,
            "concurrency": concurrency,
            "target_per_s": round(rate, 1),
            "offered_per_s": result["ok_per_s"],
            "sent": len(waits),
            "unsent": unsent,
            "p50_s": round(percentile(waits, 50), 3) if waits else None,
            "p99_s": round(percentile(waits, 99), 3) if waits else None,
            "send_p99_ms": result["p99_ms"],
            "seconds": self.c.e2e_seconds,
            "backlog_max": max((b for b, _ in backlog), default=0),
            "backlog_last": backlog[-1][0] if backlog else 0,
            "tasks_waiting_max": max((t for _, t in backlog), default=0),
        }
        log(f"end-to-end at {rate:.0f}/s: {e2e}")
        self.results["e2e"] = e2e
        return e2e

    # -- the run --

    def execute(self) -> None:
        started = time.monotonic()
        self.results["machine"] = machine_info(self.c)
        self.results["started"] = datetime.now(UTC).isoformat(timespec="seconds")
        only = self.c.only
        self.prepare()
        if "pgbench" in only:
            log("ceiling: pgbench single-row inserts")
            self.pgbench()
        self.start_web()
        self.start_sandbox()
        if "ceiling" in only:
            log("ceiling: bare DRF endpoint")
            self.load("ceiling", "ceiling.lua")
        if "send" in only:
            self.load("send", "send.lua")
        if "batch" in only:
            # 1,000 messages a request: a few connections keep the web busy.
            self.load("batch", "batch.lua", connection_counts=BATCH_CONNECTIONS, BENCH_BATCH_SIZE=str(BATCH_SIZE))
        if "webhook" in only:
            self.load("webhook", "webhook.lua")
        if "read" in only:
            self.load("read", "read.lua", BENCH_IDS=self.read_ids)
        if "drain" in only:
            for pool, concurrency in self.c.pools:
                self.drain(pool, concurrency)
        if "e2e" in only and self.results["drain"] and self.results["runs"].get("send"):
            best = max(self.results["drain"], key=lambda r: r["per_s"])
            best_send = max(r["ok_per_s"] for r in self.results["runs"]["send"])
            # Sends arriving at 80% of the best send rate while the best pool drains.
            self.end_to_end(best["pool"], best["concurrency"], rate=max(best_send * 0.8, 1))
        if self.c.seed_messages and "stored" in only:
            self.settle_outbox()
            per_conversation = 100
            conversations = max(self.c.seed_messages // per_conversation, 1)
            log(f"seeding {conversations * per_conversation} stored messages with COPY")
            seed_started = time.monotonic()
            self.seed_history(
                prefix="+1312555",
                conversations=conversations,
                per_conversation=per_conversation,
                ids_out=self.seeded_ids,
            )
            self.results["seed_seconds"] = round(time.monotonic() - seed_started, 1)
            self.results["stored_messages"] = self.count()
            self.load("send_1m", "send.lua")
            self.load("webhook_1m", "webhook.lua")
            self.load("read_1m", "read.lua", BENCH_IDS=self.seeded_ids)
        self.results["seconds"] = round(time.monotonic() - started)
        log(f"done in {self.results['seconds']}s")

    def close(self) -> None:
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            self.broker.flushdb()
            self.cache.flushdb()
        with contextlib.suppress(Exception):
            self.drop_database()


def percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


# --- Report ---------------------------------------------------------------------------


def machine_info(config: Config) -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
        memory = f"{kb / 1024 / 1024:.1f} GiB"

    def version(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except OSError:
            return "missing"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"

    packages = run(
        [
            str(BIN / "python"),
            "-c",
            "import django, rest_framework, celery, psycopg, gunicorn, kombu, redis;"
            "print(f'Django {django.__version__}, DRF {rest_framework.__version__}, Celery {celery.__version__}, "
            "kombu {kombu.__version__}, psycopg {psycopg.__version__}, gunicorn {gunicorn.__version__}, "
            "redis-py {redis.__version__}')",
        ]
    ).strip()
    commit = run(["git", "rev-parse", "--short", "HEAD"], check=False).strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], check=False).strip()
    with psycopg_connect(f"{config.pg}/postgres") as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "postgres": postgres,
        "redis": version(["redis-server", "--version"]),
        "wrk": version(["wrk", "-v"]),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load_before": os.getloadavg()[0],
    }


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.0%}" if ceiling else "n/a"


def render(results: dict, config: Config) -> str:
    m = results["machine"]
    runs = results["runs"]
    lines = [
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
        "| what | conns | ok/s | p50 ms | p95 ms | p99 ms | failed | vs bare DRF | vs pgbench |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ceiling = {r["connections"]: r["ok_per_s"] for r in runs.get("ceiling", [])}
    pg = {r["connections"]: r["tps"] for r in runs.get("pgbench", [])}
    names = {
        "ceiling": "ceiling: bare DRF POST (`/bench/ceiling`)",
        "send": "`POST /api/messages/sms`",
        "batch": f"`POST /api/messages/batch` ({BATCH_SIZE:,} messages per request)",
        "webhook": "`POST /api/webhooks/sms` (signed)",
        "read": "`GET /api/conversations/{id}/messages` (50 per page)",
        "send_1m": "`POST /api/messages/sms`, 1M stored",
        "webhook_1m": "`POST /api/webhooks/sms`, 1M stored",
        "read_1m": "`GET /api/conversations/{id}/messages`, 1M stored",
    }
    for r in runs.get("pgbench", []):
        lines.append(
            f"| ceiling: pgbench single-row INSERT | {r['connections']} | {r['tps']:.0f} | "
            f"{r['avg_ms'] or 0:.2f} (avg) | | | | | |"
        )
    for key, name in names.items():
        for r in runs.get(key, []):
            c = r["connections"]
            vs_drf = "" if key == "ceiling" else ratio(r["ok_per_s"], ceiling.get(c, 0))
            vs_pg = ratio(r["ok_per_s"], pg.get(c, 0))
            lines.append(
                f"| {name} | {c} | {r['ok_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['failed']} | {vs_drf} | {vs_pg} |"
            )
    lines += ["", "Writes, checked in the database and the broker after each run:", ""]
    lines += ["| what | conns | accepted | rows stored | tasks published |", "|---|---:|---:|---:|---:|"]
    for key in ("send", "batch", "webhook", "send_1m", "webhook_1m"):
        for r in runs.get(key, []):
            lines.append(
                f"| {names[key]} | {r['connections']} | {r['requests'] - r['failed']} | {r['stored']} | "
                f"{r['published']} |"
            )
    for r in runs.get("batch", []):
        lines.append(
            f"\nBulk at {r['connections']} connections: {r['ok_per_s'] * BATCH_SIZE:,.0f} messages/s accepted "
            f"({r['ok_per_s']} requests/s of {BATCH_SIZE:,}; p50 {r['p50_ms']:.0f} ms a request)."
        )
    empty = {(k, r["connections"]): r for k in ("send", "webhook", "read") for r in runs.get(k, [])}
    if any(k.endswith("_1m") for k in runs):
        lines += [
            "",
            f"With {results.get('stored_messages', 0):,} messages stored (seeded with COPY in "
            f"{results.get('seed_seconds', '?')} s), against the empty database:",
            "",
            "| what | conns | ok/s change | p99 change |",
            "|---|---:|---:|---:|",
        ]
        for key in ("send", "webhook", "read"):
            for r in runs.get(f"{key}_1m", []):
                base = empty.get((key, r["connections"]))
                if base:
                    lines.append(
                        f"| {names[key]} | {r['connections']} | {r['ok_per_s'] / base['ok_per_s'] - 1:+.0%} | "
                        f"{r['p99_ms'] / base['p99_ms'] - 1:+.0%} |"
                    )
    lines += [
        "",
        f"Worker drain: {config.drain_messages} queued SMS published by the outbox sweep, then one worker "
        f"started; messages/s from the first `sent` to the last (at most {config.drain_seconds} s), through "
        f"the sandbox over HTTP at {config.latency_ms} ms:",
        "",
        "| pool | concurrency | sent | failed | seconds | sent/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d in results.get("drain", []):
        lines.append(
            f"| {d['pool']} | {d['concurrency']} | {d['sent']} of {d['queued']} | {d['failed']} | {d['seconds']} | "
            f"{d['per_s']:.0f} |"
        )
    e2e = results.get("e2e")
    if e2e:
        lines += [
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
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_report(text: str, output: str) -> None:
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
    log(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    if not shutil.which("wrk"):
        log("wrk is missing: run `make bench` (it installs wrk) or apt-get install -y wrk")
        return 2
    config = Config()
    bench = Bench(config)

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        bench.execute()
        bench.results["load_after"] = os.getloadavg()[0]
    except BaseException:
        log(f"failed; logs in {OUT}")
        raise
    finally:
        bench.close()
        (OUT / "results.json").write_text(json.dumps(bench.results, indent=2, default=str))
    write_report(render(bench.results, config), config.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
