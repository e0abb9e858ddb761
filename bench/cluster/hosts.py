"""The cluster's hosts and what runs on each: PostgreSQL and Redis on `db`, HAProxy on
`lb`, gunicorn on `web1`/`web2`, a Celery worker on `worker1`/`worker2`, beat (and the
one exporter of the queue and backlog gauges) on `beat`, the provider sandbox with its
own database, broker and worker on `sandbox`. Each host has its own VAR_DIR, metrics
folder, HOME and environment, as separate machines would; they share only the network."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.cluster import net
from bench.cluster.net import HOSTS, Host
from bench.options import ACCOUNT, BIN, ROOT, SENDER
from bench.processes import GUNICORN, Processes, production_env, run, wait_http

PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOGS = ROOT / "var" / "cluster"
APP_QUEUES = "sms,mms,email,voice,maintenance,webhooks"
WEB_PORT = 8080
METRICS_PORT = 9100
LB_PORT = 80
DB_DELAY_MS = 200  # the slow cable's


def address(name: str) -> str:
    return HOSTS[name].address


class Cluster:
    """Starts and stops the servers of every host; their logs in var/cluster/, the rest
    in a temporary folder removed at the end."""

    def __init__(self, *, latency_ms: int = 100, web_concurrency: int = 3, worker_concurrency: int = 2):
        self.tmp = Path(tempfile.mkdtemp(prefix="msgcl-"))
        self.tmp.chmod(0o755)  # PostgreSQL runs as its own user below it
        LOGS.mkdir(parents=True, exist_ok=True)
        for old in LOGS.glob("*.log"):
            old.unlink()
        self.procs = Processes(LOGS / "pids", out=LOGS)
        self.latency_ms = latency_ms
        self.web_concurrency = web_concurrency
        self.worker_concurrency = worker_concurrency
        self.secret_key = secrets.token_urlsafe(48)
        self.metrics_token = secrets.token_urlsafe(24)
        self.api_key = ""

    def close(self) -> None:
        """SIGTERM to every server at once, a few seconds to finish, then SIGKILL to
        whatever is left on any host (PostgreSQL's backends are sessions of their own)."""
        for process in self.procs.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs.running.values()):
            time.sleep(0.2)
        for host in HOSTS.values():
            net.host_kill(host)
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- environments --

    def host_dir(self, name: str) -> Path:
        path = self.tmp / name
        (path / "home").mkdir(parents=True, exist_ok=True)
        (path / "var" / "metrics").mkdir(parents=True, exist_ok=True)
        return path

    def env(self, name: str, *, database: str = "app", redis_dbs: tuple[int, int] = (0, 1), **extra) -> dict:
        """A host's environment: production settings, its own folders, the servers on
        `db`, callbacks to the load balancer."""
        db, folder = address("db"), self.host_dir(name)
        env = production_env(
            secret_key=self.secret_key,
            database_url=f"postgres://postgres@{db}:5432/{database}",
            cache_url=f"redis://{db}:6379/{redis_dbs[0]}",
            broker_url=f"redis://{db}:6379/{redis_dbs[1]}",
            sandbox_base_url=f"http://{address('sandbox')}:{WEB_PORT}/sandbox",
            public_base_url=f"http://{address('lb')}",
            latency_ms=self.latency_ms,
            var_dir=folder / "var",
            allowed_hosts=",".join(host.address for host in HOSTS.values()),
        )
        env |= {
            "HOME": str(folder / "home"),
            "PROMETHEUS_MULTIPROC_DIR": str(folder / "var" / "metrics"),
            "METRICS_TOKEN": self.metrics_token,
            "METRICS_ADDR": HOSTS[name].address,
            "FORWARDED_ALLOW_IPS": address("lb"),
            # A killed worker's messages come back within a minute, not the default
            # two: leases, task limits and the broker's redelivery scaled down together.
            "PROVIDER_TIMEOUT_SECONDS": "5",
            "MESSAGING_LEASE_SECONDS": "30",
            "BROKER_VISIBILITY_TIMEOUT": "45",
            # The queue and backlog gauges come from one place (beat), not from every host.
            "METRICS_STATE_GAUGES": "false",
        }
        return env | {k: str(v) for k, v in extra.items()}

    def start(self, host: Host, name: str, command: list[str], env: dict) -> subprocess.Popen:
        return self.procs.start(name, host.exec(command), env)

    def manage(self, name: str, *args: str, **env) -> str:
        return run(HOSTS[name].exec([str(BIN / "python"), "manage.py", *args]), env=self.env(name, **env))

    # -- db --

    def start_db(self) -> None:
        db, pgdata = HOSTS["db"], self.tmp / "db" / "pg"
        pgdata.mkdir(parents=True)
        shutil.chown(pgdata, "postgres", "postgres")
        as_postgres = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"]
        run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        with (pgdata / "pg_hba.conf").open("a") as f:
            f.write(f"host all all {db.address.rsplit('.', 1)[0]}.0/24 trust\n")
        settings = {"listen_addresses": db.address, "port": "5432", "unix_socket_directories": str(pgdata)}
        settings |= {"max_connections": "300", "shared_buffers": "128MB"}
        command = [*as_postgres, str(PG_BIN / "postgres"), "-D", str(pgdata)]
        command += [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        self.start(db, "db-postgres", command, os.environ.copy())
        redis = ["redis-server", "--bind", db.address, "--port", "6379", "--save", "", "--appendonly", "no"]
        redis += ["--protected-mode", "no", "--dir", str(self.tmp / "db")]
        self.start(db, "db-redis", redis, os.environ.copy())
        self.procs.start("wire", net.wire_command(db, DB_DELAY_MS), os.environ.copy())
        wait_tcp(db.address, 5432)
        wait_tcp(db.address, 6379)
        for database in ("app", "sandbox"):
            run([str(PG_BIN / "createdb"), "-h", db.address, "-U", "postgres", database])

    def psql(self, sql: str, database: str = "app") -> list[list[str]]:
        out = run(
            [str(PG_BIN / "psql"), "-h", address("db"), "-U", "postgres", "-d", database, "-AtF", "\t", "-c", sql]
        )
        return [line.split("\t") for line in out.splitlines() if line]

    # -- the application --

    def prepare(self) -> None:
        """The static files (a build step of the code, as the Docker image does it),
        the schemas, the bench account, its API key."""
        self.manage("beat", "collectstatic", "--no-input", "-v", "0")
        self.manage("beat", "migrate", "--no-input", "-v", "0")
        self.manage("sandbox", "migrate", "--no-input", "-v", "0", database="sandbox", redis_dbs=(2, 3))
        # Not a carrier's long code (1 message a second): pacing is checked, and holds nothing.
        self.manage("beat", "create_account", ACCOUNT, "--sender", SENDER, "--throughput", "1000000")
        out = self.manage("beat", "create_api_key", "--account", ACCOUNT)
        self.api_key = out.strip().splitlines()[-1].split("Bearer ")[-1]

    def start_web(self, name: str) -> None:
        host = HOSTS[name]
        env = self.env(
            name, HOST=host.address, PORT=WEB_PORT, WEB_CONCURRENCY=self.web_concurrency, METRICS_PORT=METRICS_PORT
        )
        self.start(host, name, GUNICORN, env)
        wait_http(f"http://{host.address}:{WEB_PORT}/health")

    def start_worker(self, name: str) -> None:
        command = [str(BIN / "celery"), "-A", "config", "worker", "-Q", APP_QUEUES, "--pool", "prefork"]
        command += ["--concurrency", str(self.worker_concurrency), "--without-mingle", "--without-gossip"]
        command += ["--loglevel", "WARNING", "-n", f"{name}@cluster"]
        self.start(HOSTS[name], name, command, self.env(name, METRICS_PORT=METRICS_PORT))
        wait_tcp(HOSTS[name].address, METRICS_PORT)

    def stop(self, name: str) -> None:
        self.procs.stop(name)

    def start_beat(self) -> None:
        command = [str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "WARNING"]
        env = self.env("beat", METRICS_PORT=METRICS_PORT, METRICS_STATE_GAUGES="true")
        self.start(HOSTS["beat"], "beat", command, env)
        wait_tcp(HOSTS["beat"].address, METRICS_PORT)

    def start_sandbox(self) -> None:
        # The provider: a database, a broker and a worker of its own; its receipts go to
        # the load balancer. Threads, because every call sleeps SANDBOX_LATENCY_MS.
        host, own = HOSTS["sandbox"], {"database": "sandbox", "redis_dbs": (2, 3)}
        env = self.env("sandbox", **own, HOST=host.address, PORT=WEB_PORT, WEB_CONCURRENCY=2)
        env |= {"WEB_WORKER_CLASS": "gthread", "WEB_THREADS": "128", "DB_POOL_SIZE": "8"}
        self.start(host, "sandbox", GUNICORN, env)
        command = [str(BIN / "celery"), "-A", "config", "worker", "-Q", "sandbox", "--pool", "threads"]
        command += ["--concurrency", "4", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
        command += ["-n", "sandbox@cluster"]
        self.start(host, "sandbox-worker", command, self.env("sandbox", **own, DB_POOL_SIZE=4))
        wait_http(f"http://{host.address}:{WEB_PORT}/health")

    def start_lb(self) -> None:
        lb, folder = HOSTS["lb"], self.host_dir("lb")
        self.haproxy_socket = folder / "haproxy.sock"
        servers = "\n".join(
            f"    server {name} {address(name)}:{WEB_PORT} check maxconn {self.web_concurrency}"
            for name in ("web1", "web2")
        )
        (folder / "haproxy.cfg").write_text(
            HAPROXY_CONFIG.format(socket=self.haproxy_socket, bind=f"{lb.address}:{LB_PORT}", servers=servers)
        )
        self.start(lb, "lb", ["haproxy", "-db", "-f", str(folder / "haproxy.cfg")], os.environ.copy())
        wait_http(f"http://{lb.address}:{LB_PORT}/health")

    def haproxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.haproxy_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def haproxy_errors(self) -> dict[str, int]:
        """The load balancer's error counters (frontend and backend), from its stats."""
        lines = self.haproxy("show stat").lstrip("# ").splitlines()
        header = lines[0].split(",")
        totals: dict[str, int] = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("svname") not in {"FRONTEND", "BACKEND"}:
                continue
            for field in ("ereq", "econ", "eresp", "wretr", "wredis", "hrsp_5xx"):
                if row.get(field, "").isdigit():
                    key = f"{row['svname'].lower()}_{field}"
                    totals[key] = totals.get(key, 0) + int(row[field])
        return totals


HAPROXY_CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # Requests beyond what the webs' sync workers take at once wait here, not in a
    # web's listen queue, so a web that stalls (a cut link) is given no more.
    timeout queue 30s
    # /health waits behind requests a slow database holds up: a second is not dead.
    timeout check 5s
    default-server inter 1s fall 3 rise 2
    # A connection refused or cut before the request reached a web is tried on another.
    retries 2
    option redispatch

frontend api
    bind {bind}
    default_backend web

backend web
    balance leastconn
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host {bind}
{servers}
"""


def wait_tcp(host: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host}:{port} did not come up in {timeout}s (see {LOGS}/*.log)") from None
            time.sleep(0.2)
