"""`make cluster`: the production shape as separate hosts (Linux network namespaces on
198.18.0.0/24), measured: sends/s through HAProxy and the drain with one web and one
worker host, then two and two; then, under load, a worker host killed outright, a web
host cut off the network and plugged back, and the database link slowed by 200 ms. It
counts what reached the provider sandbox by message id (lost, duplicated), what is left
undone after the sweep (stuck), the load balancer's errors, and scrapes every host's
metrics separately. Root only; bench/cluster/run.sh is the entry point.

Knobs (environment): CLUSTER_TRIM (1: CI's run: one worker host killed under 200
messages, no scale-out measurement; fails only on lost, duplicated or stuck messages),
CLUSTER_DURATION (seconds of load per shape, 15), CLUSTER_CONNECTIONS (wrk's, 32),
CLUSTER_FAULT_MESSAGES (messages sent through the faults, 4000), CLUSTER_FAULT_RATE
(their rate, 60/s), BENCH_LATENCY_MS (the sandbox's answer time, 100).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench import drivers
from bench.cluster import net
from bench.cluster.hosts import LB_PORT, LOGS, METRICS_PORT, WEB_PORT, Cluster, address
from bench.cluster.net import HOSTS
from bench.options import BIN, ROOT
from bench.processes import cpu_sample, cpu_used

TRIM = os.environ.get("CLUSTER_TRIM") == "1"
DURATION = int(os.environ.get("CLUSTER_DURATION", "15"))
CONNECTIONS = int(os.environ.get("CLUSTER_CONNECTIONS", "32"))
FAULT_MESSAGES = 200 if TRIM else int(os.environ.get("CLUSTER_FAULT_MESSAGES", "4000"))
FAULT_RATE = 25.0 if TRIM else float(os.environ.get("CLUSTER_FAULT_RATE", "60"))
# Trimmed, the provider answers slowly, so the killed host holds its claimed messages
# long enough to be caught with them.
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "500" if TRIM else "100"))
UNDONE = "('queued', 'sending')"


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Results:
    shapes: list[dict] = field(default_factory=list)
    faults: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)


class Machine:
    """The whole machine's CPU (every process, ours and anyone else's) between two reads."""

    def __init__(self):
        self.busy, self.total, self.load = self._read(), None, os.getloadavg()[0]

    @staticmethod
    def _read() -> tuple[float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def used(self) -> dict:
        busy, total = self._read()
        share = (busy - self.busy[0]) / max(total - self.busy[1], 1)
        return {"cores_busy": round(share * os.cpu_count(), 2), "load_before": round(self.load, 2)}


def groups(cluster: Cluster) -> dict[str, int]:
    return {name: process.pid for name, process in cluster.procs.running.items()}


def host_cpu(before, after, seconds: float) -> dict[str, float]:
    """Cores used per host over `seconds`: each server's process group; PostgreSQL's
    backends (each its own session) as the db host's, found in its namespace."""
    used = cpu_used(before, after, postgres_pids=set(net.host_pids(HOSTS["db"])))
    used.pop("redis")  # Redis servers outside the cluster; ours is a process group
    hosts: dict[str, float] = {}
    for name, value in used.items():
        host = "db" if name == "postgres" else name.split("-")[0]
        hosts[host] = hosts.get(host, 0.0) + value / seconds
    return {host: round(cores, 2) for host, cores in sorted(hosts.items())}


def undone(cluster: Cluster) -> int:
    return int(cluster.psql(f"SELECT count(*) FROM messaging_message WHERE status IN {UNDONE}")[0][0])


# --- Scale-out ------------------------------------------------------------------------


def shape(cluster: Cluster, webs: int, workers: int) -> dict:
    """Sends/s through the load balancer with `webs` web hosts (no worker running, so the
    webs have the cores), then the backlog drained by `workers` worker hosts."""
    cluster.haproxy(f"set server web/web2 state {'ready' if webs == 2 else 'maint'}")
    time.sleep(1)
    log(f"{webs} web + {workers} worker: sends through the load balancer for {DURATION}s")
    machine, before = Machine(), cpu_sample(groups(cluster))
    run = drivers.wrk(
        "send.lua",
        CONNECTIONS,
        DURATION,
        host=address("lb"),
        port=LB_PORT,
        threads=2,
        env={"BENCH_API_KEY": cluster.api_key},
    )
    send_cpu = host_cpu(before, cpu_sample(groups(cluster)), run["seconds"])
    send_machine = machine.used()
    backlog = undone(cluster)
    log(f"  {run['ok_per_s']}/s accepted ({run['failed']} failed); draining {backlog} with {workers} worker host(s)")
    names = [f"worker{n}" for n in range(1, workers + 1)]
    for name in names:
        cluster.start_worker(name)
    machine, before = Machine(), cpu_sample(groups(cluster))
    first = last = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        left, now = undone(cluster), time.monotonic()
        if first is None and left < backlog:
            first = (now, left)
        if left == 0:
            last = (now, 0)
            break
        time.sleep(0.25)
    if first is None or last is None:
        raise RuntimeError(f"the backlog did not drain ({undone(cluster)} left)")
    seconds = max(last[0] - first[0], 0.25)
    drain_cpu = host_cpu(before, cpu_sample(groups(cluster)), seconds)
    drain_machine = machine.used()
    for name in names:
        cluster.stop(name)
    result = {
        "webs": webs,
        "workers": workers,
        "sends_per_s": run["ok_per_s"],
        "send_failed": run["failed"],
        "p95_ms": run["p95_ms"],
        "drain_per_s": round(first[1] / seconds, 1),
        "backlog": backlog,
        "send_cpu": send_cpu,
        "send_machine": send_machine,
        "drain_cpu": drain_cpu,
        "drain_machine": drain_machine,
    }
    log(f"  drained at {result['drain_per_s']}/s")
    return result


# --- Faults ---------------------------------------------------------------------------


def fault_schedule() -> list[tuple[float, str]]:
    seconds = FAULT_MESSAGES / FAULT_RATE
    if TRIM:
        return [(seconds * 0.3, "kill worker1")]
    return [
        (seconds * 0.08, "kill worker1"),
        (seconds * 0.2, "cut web1"),
        (seconds * 0.2 + 10, "plug web1"),
        (seconds * 0.45, "delay db 200ms"),
        (seconds * 0.45 + 30, "undelay db"),
    ]


def inject(cluster: Cluster, what: str, done: list) -> None:
    if what == "kill worker1":
        # Killed while messages are claimed and at the provider: the case where a resend
        # would be a duplicate and a forgotten claim a loss. (Trimmed, worker1 is the
        # only worker until then, so they are its own.)
        held, deadline = 0, time.monotonic() + 15
        while not held and time.monotonic() < deadline:
            held = int(cluster.psql("SELECT count(*) FROM messaging_message WHERE status = 'sending'")[0][0])
        pids = net.host_kill(HOSTS["worker1"])
        cluster.procs.running.pop("worker1", None)
        done.append(f"kill -9 of worker1's {len(pids)} processes with {held} messages being sent")
        if TRIM:
            cluster.start_worker("worker2")
    elif what == "cut web1":
        net.link_set(HOSTS["web1"], "down")
        done.append("web1's link down")
    elif what == "plug web1":
        net.link_set(HOSTS["web1"], "up")
        done.append("web1's link up")
    elif what == "delay db 200ms":
        net.link_delay(HOSTS["db"], True)
        done.append("db link +200 ms")
    elif what == "undelay db":
        net.link_delay(HOSTS["db"], False)
        done.append("db link delay off")


def faults(cluster: Cluster) -> dict:
    cluster.haproxy("set server web/web2 state ready")
    for name in ("worker1",) if TRIM else ("worker1", "worker2"):
        if name not in cluster.procs.running:
            cluster.start_worker(name)
    schedule = fault_schedule()
    log(f"faults: {FAULT_MESSAGES} messages at {FAULT_RATE:g}/s; " + ", ".join(f"{w} at {t:.0f}s" for t, w in schedule))
    out = LOGS / "drive.json"
    driver = subprocess.Popen(
        [
            str(BIN / "python"),
            "-m",
            "bench.cluster.drive",
            f"http://{address('lb')}:{LB_PORT}",
            cluster.api_key,
            str(FAULT_MESSAGES),
            str(FAULT_RATE),
            str(out),
        ],
        cwd=ROOT,
    )
    started, done = time.monotonic(), []
    for at, what in schedule:
        time.sleep(max(0.0, started + at - time.monotonic()))
        log(f"  {what}")
        inject(cluster, what, done)
    driver.wait(timeout=FAULT_MESSAGES / FAULT_RATE * 10 + 300)
    sent = json.loads(out.read_text())
    log(f"  driver done in {sent['seconds']}s: {len(sent['accepted'])} accepted, errors {sent['errors'] or 'none'}")
    # The sweep recovers what the killed host held once its leases run out.
    log("waiting for the sweep to finish what is left")
    deadline = time.monotonic() + 240
    while undone(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    return {"injected": done, "accepted": sent["accepted"], "driver_errors": sent["errors"], "seconds": sent["seconds"]}


def tally(cluster: Cluster, accepted: list[int]) -> dict:
    """Every outbound message stored, against what the sandbox received, by message id."""
    stored = {int(r[0]) for r in cluster.psql("SELECT id FROM messaging_message WHERE direction = 'outbound'")}
    received: dict[int, int] = {}
    for reference, count in cluster.psql(
        "SELECT reference, count(*) FROM sandbox_sandboxmessage WHERE reference <> '' GROUP BY reference",
        database="sandbox",
    ):
        received[int(reference)] = int(count)
    retried = cluster.psql("SELECT count(*) FROM messaging_message WHERE direction = 'outbound' AND attempts > 1")
    recovered = cluster.psql(
        "SELECT count(DISTINCT message_id) FROM messaging_messageevent WHERE detail->>'reason' = 'lease expired'"
    )
    statuses = dict(
        (status, int(n)) for status, n in cluster.psql("SELECT status, count(*) FROM messaging_message GROUP BY status")
    )
    return {
        "stored": len(stored),
        "accepted_not_stored": len(set(accepted) - stored),
        "lost": len(stored - received.keys()) + len(set(accepted) - stored),
        "duplicated": sum(1 for n in received.values() if n > 1),
        "stuck": undone(cluster),
        "retried": int(retried[0][0]),
        "recovered": int(recovered[0][0]),
        "statuses": statuses,
    }


# --- Metrics, host by host ------------------------------------------------------------


def scrape(url: str, token: str | None = None) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a host of ours
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a host of ours
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], prefix: str, *labels: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix) and all(label in k for label in labels))


def static_files() -> dict[str, int]:
    """The admin's stylesheet from each web: built once beside the code, served by
    every machine whatever its VAR_DIR."""
    statuses = {}
    for name in ("web1", "web2"):
        url = f"http://{address(name)}:{WEB_PORT}/static/admin/css/base.css"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                statuses[name] = response.status
        except urllib.error.HTTPError as exc:
            statuses[name] = exc.code
    return statuses


def metrics(cluster: Cluster, stored: int) -> dict:
    """Each live host's exporter on its own: webs count the sends they accepted (and
    no task), workers count tasks (and no request), only beat has the queue gauges."""
    hosts = {}
    for name in ("web1", "web2", "worker2", "beat", "sandbox"):
        if name == "sandbox":
            continue
        samples = scrape(f"http://{address(name)}:{METRICS_PORT}/metrics")
        hosts[name] = {
            "queued": total(samples, "messages_total{", 'direction="outbound"', 'status="queued"'),
            "tasks": total(samples, "celery_tasks_total{"),
            "requests": total(samples, "django_http_requests_total_by_method_total{"),
            "queue_gauges": sum(1 for k in samples if k.startswith("queue_depth{")),
            "backlog_gauges": sum(1 for k in samples if k.startswith("messages_outstanding{")),
        }
    view = scrape(f"http://{address('web1')}:{WEB_PORT}/metrics", cluster.metrics_token)
    hosts["web1 /metrics"] = {
        "queued": total(view, "messages_total{", 'direction="outbound"', 'status="queued"'),
        "tasks": total(view, "celery_tasks_total{"),
        "requests": total(view, "django_http_requests_total_by_method_total{"),
        "queue_gauges": sum(1 for k in view if k.startswith("queue_depth{")),
        "backlog_gauges": sum(1 for k in view if k.startswith("messages_outstanding{")),
    }
    accepted_by_webs = hosts["web1"]["queued"] + hosts["web2"]["queued"]
    problems = []
    if accepted_by_webs != stored:
        problems.append(f"the webs counted {accepted_by_webs:g} sends queued, the database holds {stored}")
    if any(hosts[n]["tasks"] for n in ("web1", "web2", "web1 /metrics")):
        problems.append("a web host reports Celery tasks")
    if hosts["worker2"]["requests"]:
        problems.append("a worker host reports HTTP requests")
    if [n for n, h in hosts.items() if h["queue_gauges"] and n != "beat"] or not hosts["beat"]["queue_gauges"]:
        problems.append("the queue gauges do not come from beat alone")
    return {"hosts": hosts, "problems": problems}


# --- The report -----------------------------------------------------------------------


def cpu_cell(hosts: dict[str, float], machine: dict) -> str:
    """Each host's cores, then what the rest of the machine used meanwhile (the load
    generator, and anything else running on the machine)."""
    ours = ", ".join(f"{h} {c}" for h, c in hosts.items() if c >= 0.05)
    rest = max(machine["cores_busy"] - sum(hosts.values()), 0)
    return f"{ours}; rest {rest:.2f} (machine {machine['cores_busy']} busy)"


def table(results: Results) -> str:
    lines = []
    if results.shapes:
        lines += [
            "| hosts | sends/s via LB | p95 ms | drain msg/s | CPU while sending (cores) | CPU draining (cores) |",
            "|---|---|---|---|---|---|",
        ]
        for s in results.shapes:
            lines.append(
                f"| {s['webs']} web + {s['workers']} worker | {s['sends_per_s']} | {s['p95_ms']:.0f} | "
                f"{s['drain_per_s']} | {cpu_cell(s['send_cpu'], s['send_machine'])} | "
                f"{cpu_cell(s['drain_cpu'], s['drain_machine'])} |"
            )
        if len(results.shapes) == 2:
            one, two = results.shapes
            lines.append(
                f"\nscale-out 2+2 / 1+1: sends {two['sends_per_s'] / max(one['sends_per_s'], 0.1):.2f}x, "
                f"drain {two['drain_per_s'] / max(one['drain_per_s'], 0.1):.2f}x "
                f"(on {os.cpu_count()} cores shared by every host and the load generator)"
            )
    f = results.faults
    if f:
        lines += [
            "",
            f"faults under load ({f['sent']} messages at {FAULT_RATE:g}/s): " + "; ".join(f["injected"]),
            "",
            "| accepted | stored (run) | lost | duplicated | stuck after sweep | HAProxy errors | driver errors |",
            "|---|---|---|---|---|---|---|",
            f"| {f['accepted']} | {f['stored']} | {f['lost']} | {f['duplicated']} | {f['stuck']} | "
            f"{', '.join(f'{k} {v}' for k, v in f['haproxy'].items() if v) or 'none'} | "
            f"{', '.join(f'{k} {v}' for k, v in f['driver_errors'].items()) or 'none'} |",
            f"\nstatuses: {f['statuses']}; tried more than once: {f['retried']}; "
            f"taken back by the sweep from an expired lease (the killed host's): {f['recovered']}",
        ]
    m = results.metrics
    if m:
        lines += ["", "| scraped | sends queued | Celery tasks | HTTP requests | queue gauges | backlog gauges |"]
        lines.append("|---|---|---|---|---|---|")
        for name, h in m["hosts"].items():
            lines.append(
                f"| {name} | {h['queued']:g} | {h['tasks']:g} | {h['requests']:g} | "
                f"{h['queue_gauges']} | {h['backlog_gauges']} |"
            )
        lines.append("\nmetrics: " + ("; ".join(m["problems"]) if m["problems"] else "each host reports only its own"))
        lines.append("static files (admin/css/base.css): " + ", ".join(f"{h} {c}" for h, c in m["static"].items()))
    lines.append(
        f"\nmachine: {os.cpu_count()} cores, load average {results.machine.get('load_before')} before, "
        f"{results.machine.get('load_after')} after; {results.machine.get('seconds')} s in all"
    )
    return "\n".join(lines)


def stop(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    if os.geteuid() != 0:
        print("make cluster needs root: it creates network namespaces and links", file=sys.stderr)
        return 2
    # Ctrl-C unwinds through the finally below even where SIGINT came in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    results, started = Results(), time.monotonic()
    results.machine["load_before"] = round(os.getloadavg()[0], 2)
    log("creating the hosts' namespaces and links on 198.18.0.0/24")
    net.network_create(slow="db")
    cluster = None
    try:
        net.join(HOSTS["client"])
        cluster = Cluster(latency_ms=LATENCY_MS)
        log("db: PostgreSQL and Redis")
        cluster.start_db()
        log("migrating; the account and its key")
        cluster.prepare()
        log("sandbox, web1, web2, lb, beat")
        with ThreadPoolExecutor() as pool:
            starting = [
                pool.submit(cluster.start_sandbox),
                *(pool.submit(cluster.start_web, w) for w in ("web1", "web2")),
            ]
            for future in starting:
                future.result()
        cluster.start_lb()
        cluster.start_beat()
        if not TRIM:
            results.shapes.append(shape(cluster, 1, 1))
            results.shapes.append(shape(cluster, 2, 2))
        f = faults(cluster)
        counts = tally(cluster, f["accepted"])
        results.faults = counts | {
            "injected": f["injected"],
            "sent": FAULT_MESSAGES,
            "accepted": len(f["accepted"]),
            "driver_errors": f["driver_errors"],
            "haproxy": cluster.haproxy_errors(),
        }
        if not TRIM:
            results.metrics = metrics(cluster, counts["stored"]) | {"static": static_files()}
    finally:
        results.machine["load_after"] = round(os.getloadavg()[0], 2)
        results.machine["seconds"] = round(time.monotonic() - started)
        if cluster is not None:
            cluster.close()
        net.network_delete()
        (LOGS / "results.json").write_text(json.dumps(results.__dict__, indent=2, default=str))
    print(table(results), flush=True)
    f = results.faults
    bad = f["lost"] or f["duplicated"] or f["stuck"]
    if bad:
        log(f"FAILED: lost {f['lost']}, duplicated {f['duplicated']}, stuck {f['stuck']} (logs in {LOGS})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
