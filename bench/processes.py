"""The processes the bench starts and stops: gunicorn for the web and for the provider
sandbox, a Celery worker, py-spy, and the one-off commands (manage.py, bench/seed.py),
all in the production environment pointed at the bench's database, Redis and ports."""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.options import ACCOUNT, BIN, OUT, QUEUES, ROOT, SENDER, WEBHOOK_SECRET, Config

GUNICORN = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi:application"]
_TICKS = os.sysconf("SC_CLK_TCK")


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


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far: of named process groups, of each PostgreSQL process, of Redis."""

    groups: dict[str, float]
    postgres: dict[int, float]
    redis: dict[int, float]


def cpu_sample(groups: dict[str, int]) -> CpuSample:
    """Read /proc for each named process group (a gunicorn master's, a Celery worker's:
    every process it forked), every PostgreSQL process and Redis. Only processes alive
    now count, so sample around a run of processes that live through it."""
    totals, postgres, redis = dict.fromkeys(groups, 0.0), {}, {}
    names = {pgid: name for name, pgid in groups.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # After the name: state, ppid, pgrp, ..., utime (12th), stime (13th).
        seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        if int(fields[2]) in names:
            totals[names[int(fields[2])]] += seconds
        elif comm == "postgres":
            postgres[int(stat.parent.name)] = seconds
        elif comm.startswith("redis-server"):
            redis[int(stat.parent.name)] = seconds
    return CpuSample(totals, postgres, redis)


def cpu_used(before: CpuSample, after: CpuSample, postgres_pids: set[int] | None = None) -> dict[str, float]:
    """CPU seconds between two samples, per group, "postgres" and "redis". With
    `postgres_pids` (the backends of the bench's database), PostgreSQL counts only
    those: other databases on a shared server are someone else's load."""
    used = {name: after.groups[name] - before.groups.get(name, 0.0) for name in after.groups}
    pids = after.postgres.keys() if postgres_pids is None else postgres_pids & after.postgres.keys()
    used["postgres"] = sum(after.postgres[pid] - before.postgres.get(pid, 0.0) for pid in pids)
    # Redis servers that lived through both samples: one started or stopped meanwhile
    # (a test's) is not ours.
    used["redis"] = sum(after.redis[pid] - before.redis[pid] for pid in after.redis.keys() & before.redis.keys())
    return used


def prepare_out_dir() -> None:
    """var/bench/ for logs, pids, fixtures and results; logs start afresh each run."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "var").mkdir(exist_ok=True)
    for old in OUT.glob("*.log"):
        old.unlink()


class Processes:
    """Children in their own process groups, stopped group by group, pids on disk so the
    shell wrapper can stop them too if this process is killed outright."""

    def __init__(self, pidfile: Path, out: Path = OUT):
        self.pidfile = pidfile
        self.out = out  # logs and control sockets
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        if command[0].endswith("gunicorn"):
            # gunicorn 27 binds one control socket per user (~/.gunicorn/gunicorn.ctl) by
            # default: a second server on the host would take over the first's.
            command = [*command, "--control-socket", str(self.out / f"{name}.ctl")]
        logfile = open(self.out / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
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


def production_env(
    *,
    secret_key: str,
    database_url: str,
    cache_url: str,
    broker_url: str,
    sandbox_base_url: str,
    public_base_url: str,
    latency_ms: int,
    var_dir: Path,
    allowed_hosts: str = "127.0.0.1,localhost",
) -> dict:
    """The environment of a production process pointed at the given servers, with the
    provider sandbox on and the rate limits out of a load test's way."""
    # The caller's own DB_/WEB_/... settings would change the shape being measured.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "WEB_", "WORKER_", "SANDBOX_", "PROVIDER", "BENCH_CEILING", "PROMETHEUS_"))
    }
    return env | {
        "APP_ENV": "production",
        "SECRET_KEY": secret_key,
        "DEBUG": "false",
        "ALLOWED_HOSTS": allowed_hosts,
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": cache_url,
        "CELERY_BROKER_URL": broker_url,
        "PROVIDER_SANDBOX": "true",
        "SANDBOX_BASE_URL": sandbox_base_url,
        "PUBLIC_BASE_URL": public_base_url,
        "SANDBOX_LATENCY_MS": str(latency_ms),
        "WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        # Limits meant for clients, not for a load test from one address.
        "RATE_LIMIT_REQUESTS": "1000000000",
        "RATE_LIMIT_WEBHOOK_REQUESTS": "1000000000",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }


class Services:
    """The application as production runs it: its environment, its servers, its worker."""

    def __init__(self, config: Config):
        self.c = config
        self.procs = Processes(OUT / "pids")
        self.web_port = free_port()
        self.sandbox_port = free_port()
        self.secret_key = secrets.token_urlsafe(48)

    def env(self, **extra) -> dict:
        env = production_env(
            secret_key=self.secret_key,
            database_url=self.c.database_url,
            cache_url=self.c.cache_url,
            broker_url=self.c.broker_url,
            sandbox_base_url=f"http://127.0.0.1:{self.sandbox_port}/sandbox",
            public_base_url=f"http://127.0.0.1:{self.web_port}",
            latency_ms=self.c.latency_ms,
            var_dir=OUT / "var",
        )
        return env | {k: str(v) for k, v in extra.items()}

    # -- one-off commands --

    def manage(self, *args: str) -> str:
        return run([str(BIN / "python"), "manage.py", *args], env=self.env())

    def seed(self, command: str, *args: str, timeout: float = 600) -> str:
        """bench/seed.py (`history` or `queued`) for the bench's account and sender."""
        return run(
            [str(BIN / "python"), "bench/seed.py", command, "--account", ACCOUNT, "--sender", SENDER, *args],
            env=self.env(),
            timeout=timeout,
        )

    # -- servers --

    def start_web(self) -> None:
        env = self.env(PORT=self.web_port, HOST="127.0.0.1", BENCH_CEILING="true") | self.web_overrides()
        self.procs.start("web", GUNICORN, env)
        wait_http(f"http://127.0.0.1:{self.web_port}/health")

    @staticmethod
    def web_overrides() -> dict:
        """BENCH_WEB_CONCURRENCY, BENCH_WEB_WORKER_CLASS and BENCH_WEB_THREADS: the web's shape."""
        names = ("WEB_CONCURRENCY", "WEB_WORKER_CLASS", "WEB_THREADS")
        return {name: os.environ[f"BENCH_{name}"] for name in names if os.environ.get(f"BENCH_{name}")}

    def start_sandbox(self) -> None:
        # Its own server, so the provider's work is not done by the web's workers: threads
        # because every call sleeps SANDBOX_LATENCY_MS, a small pool for their database work.
        # No access log: with ACCESS_LOG set, config/gunicorn.py renders a JSON line per
        # request, a cost no provider's API puts on its clients.
        env = self.env(
            PORT=self.sandbox_port,
            HOST="127.0.0.1",
            WEB_CONCURRENCY=2,
            WEB_WORKER_CLASS="gthread",
            WEB_THREADS=128,
            DB_POOL_SIZE=8,
        )
        self.procs.start("sandbox", GUNICORN, env)
        wait_http(f"http://127.0.0.1:{self.sandbox_port}/health")

    # -- the worker --

    def start_worker(self, pool: str, concurrency: int, queues: str = QUEUES, name: str = "worker", **env) -> None:
        extra = {"LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING")} | env
        if pool == "gevent":
            # Greenlets come and go: pool their connections.
            extra["DB_POOL_SIZE"] = os.environ.get("BENCH_GEVENT_DB_POOL", concurrency)
            extra["BROKER_MAX_CONNECTIONS"] = concurrency + 10
        command = [str(BIN / "celery"), "-A", "config", "worker", "-Q", queues, "--pool", pool]
        command += ["--concurrency", str(concurrency), "--without-mingle", "--without-gossip"]
        command += ["--loglevel", "WARNING", "-n", f"bench-{name}-{pool}-{concurrency}@%h"]
        self.procs.start(name, command, self.env(**extra))

    def start_beat(self) -> None:
        schedule = OUT / "celerybeat-schedule"
        for old in OUT.glob("celerybeat-schedule*"):
            old.unlink()
        command = [str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "WARNING", "--schedule", str(schedule)]
        self.procs.start("beat", command, self.env())

    def stop_beat(self) -> None:
        self.procs.stop("beat")

    def pgid(self, name: str) -> int:
        """The process group of a running child (its leader's pid)."""
        return self.procs.running[name].pid

    def worker_exited(self) -> bool:
        return self.procs.running["worker"].poll() is not None

    def stop_worker(self, name: str = "worker") -> None:
        self.procs.stop(name)

    def stop_all(self) -> None:
        self.procs.stop_all()

    # -- profiles (BENCH_PROFILE=1) --

    @staticmethod
    def profile_done(spy: subprocess.Popen | None) -> None:
        """Wait for a profile; py-spy sampling many threads can lag behind its -d, and
        writes what it has when interrupted."""
        if spy is None:
            return
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()

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
