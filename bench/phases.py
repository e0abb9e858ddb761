"""The phases `make bench` measures, in the order `execute` runs them: the ceilings
(pgbench, a bare DRF endpoint), the API under load (send, batch, webhook, read), the
sandbox's own accept ceiling and the worker draining a backlog through it per pool,
sends and drain together (e2e), and the API again with a large stored history (stored).
Each phase adds its numbers to `Bench.results`."""

import base64
import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import drivers, ledger
from bench.options import (
    ACCOUNT,
    BATCH_CONNECTIONS,
    BATCH_SIZE,
    OUT,
    PACED_SENDER,
    READ_IDS,
    SANDBOX_CONNECTIONS,
    SEEDED_IDS,
    SENDER,
    Config,
    log,
)
from bench.processes import Services, cpu_sample, cpu_used, prepare_out_dir
from bench.store import Store


@dataclass
class Bench:
    """What the phases share: the configuration, the running application, its data and
    what has been measured so far (written to var/bench/results.json)."""

    c: Config
    services: Services
    store: Store
    results: dict = field(default_factory=lambda: {"runs": {}, "drain": [], "notes": []})
    api_key: str = ""

    @classmethod
    def create(cls, config: Config) -> "Bench":
        return cls(config, Services(config), Store(config))

    def close(self) -> None:
        self.services.stop_all()
        self.store.close()

    def wrk(self, script: str, connections: int, duration: int, **env) -> dict:
        return drivers.wrk(
            script,
            connections,
            duration,
            port=self.services.web_port,
            threads=self.c.threads,
            env={"BENCH_API_KEY": self.api_key, **env},
        )


def execute(b: Bench) -> None:
    only = b.c.only
    prepare(b)
    if "pgbench" in only:
        log("ceiling: pgbench single-row inserts")
        pgbench(b)
    b.services.start_web()
    b.services.start_sandbox()
    if "ceiling" in only:
        log("ceiling: bare DRF endpoint")
        load(b, "ceiling", "ceiling.lua")
    if "ledger" in only:
        log("ledger: the cost of each layer of a send")
        ledger.ledger(b)
    if "send" in only:
        load(b, "send", "send.lua")
    if "batch" in only:
        # 1,000 messages a request: a few connections keep the web busy.
        load(b, "batch", "batch.lua", connection_counts=BATCH_CONNECTIONS, BENCH_BATCH_SIZE=str(BATCH_SIZE))
    if "webhook" in only:
        load(b, "webhook", "webhook.lua")
    if "read" in only:
        load(b, "read", "read.lua", BENCH_IDS=READ_IDS)
    if "sandbox" in only or "drain" in only:
        log("ceiling: the sandbox's creates, hammered directly")
        sandbox_ceiling(b)
    if "drain" in only:
        for pool, concurrency in b.c.pools:
            drain(b, pool, concurrency)
    if "e2e" in only and b.results["drain"] and b.results["runs"].get("send"):
        best = max(b.results["drain"], key=lambda r: r["per_s"])
        best_send = max(r["ok_per_s"] for r in b.results["runs"]["send"])
        # Sends arriving at 80% of the best send rate while the best pool drains.
        end_to_end(b, best["pool"], best["concurrency"], rate=max(best_send * 0.8, 1))
    if "schedule" in only:
        schedule(b)
    if "pacing" in only:
        pacing(b)
    if b.c.seed_messages and "stored" in only:
        stored(b)


# --- Setup ----------------------------------------------------------------------------


def prepare(b: Bench) -> None:
    """A fresh database with the schema, an account, an API key and a small history."""
    prepare_out_dir()
    b.store.recreate()
    log("migrating the bench database")
    b.services.manage("migrate", "--no-input", "-v", "0")
    # Not a carrier's long code here: pacing is checked on every dispatch, and holds nothing.
    b.services.manage("create_account", ACCOUNT, "--sender", SENDER, "--throughput", "1000000")
    out = b.services.manage("create_api_key", "--account", ACCOUNT)
    b.api_key = out.strip().splitlines()[-1].split("Bearer ")[-1]
    log("seeding 100 conversations of 60 messages for the read test")
    seed_history(b, prefix="+1646555", conversations=100, per_conversation=60, ids_out=READ_IDS)


def seed_history(b: Bench, *, prefix: str, conversations: int, per_conversation: int, ids_out: Path) -> None:
    b.services.seed(
        "history",
        "--prefix",
        prefix,
        "--conversations",
        str(conversations),
        "--per-conversation",
        str(per_conversation),
        "--ids-out",
        str(ids_out),
        timeout=900,
    )


# --- Ceilings -------------------------------------------------------------------------


def pgbench(b: Bench) -> None:
    """Single-row inserts straight into PostgreSQL: what the database alone sustains."""
    b.store.sql("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, v integer, created_at timestamptz DEFAULT now())")
    script = OUT / "insert.sql"
    script.write_text("\\set v random(1, 1000000)\nINSERT INTO bench_insert (v) VALUES (:v);\n")
    runs = []
    for connections in b.c.connections:
        tps, avg_ms = drivers.pgbench(b.c.pg, b.c.db, script, connections, b.c.threads, b.c.duration)
        runs.append({"connections": connections, "tps": round(tps, 1), "avg_ms": avg_ms})
        log(f"pgbench insert c={connections}: {tps:.0f} tps")
    b.store.sql("DROP TABLE bench_insert")
    b.results["runs"]["pgbench"] = runs


# --- HTTP load ------------------------------------------------------------------------


def load(b: Bench, label: str, script: str, connection_counts=None, **env) -> None:
    """A warm-up, then one run per connection count."""
    b.wrk(script, (connection_counts or [16])[0], b.c.warmup, **_requests(b, script, 0, env))
    b.results["runs"][label] = [
        _measured_run(b, label, script, connections, _requests(b, script, connections, env))
        for connections in connection_counts or b.c.connections
    ]


def _requests(b: Bench, script: str, connections: int, env: dict) -> dict:
    # Webhooks are deduplicated by provider id: every run needs new ones, freshly signed.
    if script != "webhook.lua":
        return env
    return env | {"BENCH_REQUESTS": drivers.signed_webhooks(connections, 4000 * b.c.duration)}


def _measured_run(b: Bench, label: str, script: str, connections: int, env: dict) -> dict:
    """One run, with what it stored and published counted around it."""
    time.sleep(1)  # requests a previous run left in flight are answered
    before, depth = b.store.count(), b.store.broker_depth()
    spy = b.services.profile(f"{label}-{connections}", "web", max(b.c.duration - 2, 1))
    result = b.wrk(script, connections, b.c.duration, **env)
    b.services.profile_done(spy)
    time.sleep(1)
    result["stored"] = b.store.count() - before
    result["published"] = b.store.broker_depth() - depth
    log(
        f"{label} c={connections}: {result['ok_per_s']}/s ok, p50 {result['p50_ms']:.1f} "
        f"p95 {result['p95_ms']:.1f} p99 {result['p99_ms']:.1f} ms, failed {result['failed']}, "
        f"stored {result['stored']}, published {result['published']}"
    )
    return result


# --- The sandbox ----------------------------------------------------------------------

# What the bench's production environment gives the Twilio adapter (settings' defaults).
TWILIO_ACCOUNT_SID = "AC00000000000000000000000000000000"
TWILIO_AUTH_TOKEN = "sandbox-twilio-auth-token"  # noqa: S105 - the sandbox's own default


def sandbox_ceiling(b: Bench) -> None:
    """The Twilio create call the adapters make, straight at the sandbox (no worker, no
    API in between): creates/s it accepts at its latency, and its CPU per create. The
    best run is the drain's ceiling: a drain cannot send faster than the provider takes."""
    port = b.services.sandbox_port
    credentials = base64.b64encode(f"{TWILIO_ACCOUNT_SID}:{TWILIO_AUTH_TOKEN}".encode()).decode()
    env = {
        "BENCH_AUTH": f"Basic {credentials}",
        "BENCH_CREATE": f"/sandbox/twilio/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json",
        "BENCH_CALLBACK": f"http://127.0.0.1:{b.services.web_port}/api/webhooks/providers/twilio/status",
    }
    drivers.wrk("sandbox.lua", SANDBOX_CONNECTIONS[0], b.c.warmup, port=port, threads=b.c.threads, env=env)
    runs = []
    for connections in SANDBOX_CONNECTIONS:
        time.sleep(1)
        groups = {"sandbox": b.services.pgid("sandbox")}
        backends, before = b.store.backends(), cpu_sample(groups)
        spy = b.services.profile(f"sandbox-{connections}", "sandbox", max(b.c.duration - 2, 1))
        result = drivers.wrk("sandbox.lua", connections, b.c.duration, port=port, threads=b.c.threads, env=env)
        b.services.profile_done(spy)
        used = cpu_used(before, cpu_sample(groups), backends | b.store.backends())
        requests = max(result["requests"], 1)
        result |= {f"{k}_ms": round(seconds * 1000 / requests, 2) for k, seconds in used.items()}
        result["sandbox_cores"] = round(used["sandbox"] / result["seconds"], 2)
        log(
            f"sandbox c={connections}: {result['ok_per_s']}/s ok, p50 {result['p50_ms']:.1f} "
            f"p99 {result['p99_ms']:.1f} ms, failed {result['failed']}; CPU a create: sandbox "
            f"{result['sandbox_ms']} ms, postgres {result['postgres_ms']} ms, redis {result['redis_ms']} ms"
        )
        runs.append(result)
    b.results["runs"]["sandbox"] = runs
    b.results["sandbox_ceiling"] = max(r["ok_per_s"] for r in runs)


# --- The worker -----------------------------------------------------------------------


def drain(b: Bench, pool: str, concurrency: int) -> None:
    """A backlog of queued SMS, then one worker started: how fast it sends them."""
    b.store.settle_outbox()
    out = b.services.seed("queued", "--count", str(b.c.drain_messages))
    first, last = (int(x) for x in out.split())
    started = time.monotonic()
    b.services.start_worker(pool, concurrency)
    where = f"WHERE id BETWEEN {first} AND {last}"
    window = _cpu_window_start(b, where)
    spy = b.services.profile(f"drain-{pool}-{concurrency}", "worker", 10)
    _wait_for_drain(b, where, pool, deadline=started + b.c.drain_seconds + 10)
    cpu = _cpu_window_end(b, where, window)
    b.services.profile_done(spy)
    b.services.stop_worker()
    result = _drain_result(b, where, pool, concurrency, queued=last - first + 1) | cpu
    b.results["drain"].append(result)


@dataclass
class _CpuWindow:
    groups: dict[str, int]
    backends: set[int]
    sample: object
    sent: int
    at: float


def _cpu_window_start(b: Bench, where: str) -> _CpuWindow:
    """Once the first message is sent (the worker has started up): the CPU so far of
    the worker, the sandbox, PostgreSQL and Redis, and how many messages are sent."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not b.store.count(f"{where} AND sent_at IS NOT NULL"):
        if b.services.worker_exited():
            break
        time.sleep(0.1)
    groups = {"worker": b.services.pgid("worker"), "sandbox": b.services.pgid("sandbox")}
    sent = b.store.count(f"{where} AND sent_at IS NOT NULL")
    return _CpuWindow(groups, b.store.backends(), cpu_sample(groups), sent, time.monotonic())


def _cpu_window_end(b: Bench, where: str, window: _CpuWindow) -> dict:
    """CPU per message sent since the window opened, in ms, by process; and the cores
    the worker and the sandbox kept busy meanwhile."""
    used = cpu_used(window.sample, cpu_sample(window.groups), window.backends | b.store.backends())
    seconds = max(time.monotonic() - window.at, 0.001)
    sent = b.store.count(f"{where} AND sent_at IS NOT NULL") - window.sent
    per_message = {f"{k}_ms": round(cpu * 1000 / sent, 2) if sent else None for k, cpu in used.items()}
    return per_message | {
        "worker_cores": round(used["worker"] / seconds, 2),
        "sandbox_cores": round(used["sandbox"] / seconds, 2),
    }


def _wait_for_drain(b: Bench, where: str, pool: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if b.store.count(f"{where} AND status IN ('queued', 'sending')") == 0:
            return
        if b.services.worker_exited():
            log(f"the {pool} worker exited; see {OUT / 'worker.log'}")
            return
        time.sleep(0.25)
        # Time from the first message sent, so the worker's start-up is not counted;
        # stop after drain_seconds of sending.
        first_sent = b.store.sql(f"SELECT min(sent_at) FROM messaging_message {where}")[0][0]
        if first_sent and (datetime.now(UTC) - first_sent).total_seconds() > b.c.drain_seconds:
            return


def _drain_result(b: Bench, where: str, pool: str, concurrency: int, queued: int) -> dict:
    # From the first claim (a batch's messages are written back together, so the first
    # `sent_at` already includes one batch's provider calls) to the last `sent_at`.
    sent, last_at, failed = b.store.sql(
        f"SELECT count(sent_at), max(sent_at), count(*) FILTER (WHERE status = 'failed') FROM messaging_message {where}"
    )[0]
    first_at = b.store.sql(
        f"SELECT min(created_at) FROM messaging_deliveryattempt WHERE message_id IN "
        f"(SELECT id FROM messaging_message {where})"
    )[0][0]
    span = (last_at - first_at).total_seconds() if sent and first_at else 0
    connections = b.store.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (b.c.db,))[0][0]
    result = {
        "pool": pool,
        "concurrency": concurrency,
        "queued": queued,
        "sent": sent,
        "failed": failed,
        "seconds": round(span, 2),
        "per_s": round(sent / span, 1) if span else 0.0,
    }
    log(
        f"drain {pool}:{concurrency}: {result['per_s']}/s ({sent} of {queued} sent in {span:.1f}s, "
        f"{failed} failed; {connections} db connections left)"
    )
    return result


def end_to_end(b: Bench, pool: str, concurrency: int, rate: float) -> None:
    """Sends paced at `rate` while the worker drains: `created_at` to `sent_at`."""
    b.store.settle_outbox()
    b.services.start_worker(pool, concurrency)
    time.sleep(3)
    since = b.store.sql("SELECT now()")[0][0]
    with _backlog_samples(b, since) as backlog:
        result = b.wrk("send.lua", 16, b.c.e2e_seconds, BENCH_RATE=rate)
    where = "WHERE direction = 'outbound' AND created_at >= %s"
    _wait_until_sent(b, where, since, seconds=30)
    b.services.stop_worker()
    waits, unsent = _send_waits(b, where, since)
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
        "seconds": b.c.e2e_seconds,
        "backlog_max": max((m for m, _ in backlog), default=0),
        "backlog_last": backlog[-1][0] if backlog else 0,
        "tasks_waiting_max": max((t for _, t in backlog), default=0),
    }
    log(f"end-to-end at {rate:.0f}/s: {e2e}")
    b.results["e2e"] = e2e


@contextlib.contextmanager
def _backlog_samples(b: Bench, since: datetime) -> Iterator[list[tuple[int, int]]]:
    """What waits, once a second while the block runs: messages in the table and
    dispatch tasks in the broker."""
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(1.0):
            waiting = b.store.sql(
                "SELECT count(*) FROM messaging_message WHERE status IN ('queued', 'sending') AND created_at >= %s",
                (since,),
            )[0][0]
            samples.append((waiting, b.store.broker.llen("sms")))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield samples
    finally:
        stop.set()
        watcher.join()


def _send_waits(b: Bench, where: str, since: datetime) -> tuple[list[float], int]:
    """Seconds from `created_at` to `sent_at` of each message sent, sorted; how many were not."""
    rows = b.store.sql(
        f"SELECT extract(epoch FROM sent_at - created_at) FROM messaging_message {where} AND sent_at IS NOT NULL",
        (since,),
    )
    unsent = b.store.sql(f"SELECT count(*) FROM messaging_message {where} AND sent_at IS NULL", (since,))[0][0]
    return sorted(float(r[0]) for r in rows), unsent


def _wait_until_sent(b: Bench, where: str, since: datetime, seconds: float) -> None:
    """Give the worker up to `seconds` after the load to send what is still waiting."""
    deadline = time.monotonic() + seconds
    unsent = f"SELECT count(*) FROM messaging_message {where} AND sent_at IS NULL AND status <> 'failed'"
    while time.monotonic() < deadline and b.store.sql(unsent, (since,))[0][0]:
        time.sleep(0.5)


def percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


# --- Scheduled sends ------------------------------------------------------------------


def schedule(b: Bench) -> None:
    """BENCH_SCHEDULE_MESSAGES messages scheduled for the same minute, then beat and one
    worker taking only the maintenance queue, with no outbox relay (nothing is
    dispatched): how fast the release moves them to `queued`, and how long after
    `send_at` the last one is."""
    b.store.settle_outbox()
    count = b.c.schedule_messages
    # The next whole minute that leaves the seed time to finish.
    send_at = (datetime.now(UTC) + timedelta(seconds=40)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    log(f"schedule: seeding {count} messages scheduled for {send_at:%H:%M:%S}")
    out = b.services.seed("scheduled", "--count", str(count), "--send-at", send_at.isoformat(), timeout=900)
    first, last = (int(x) for x in out.split())
    where = f"WHERE id BETWEEN {first} AND {last}"
    b.services.start_worker("prefork", 1, queues="maintenance", MESSAGING_RELAY="false")
    b.services.start_beat()
    try:
        early = 0
        while datetime.now(UTC) < send_at:
            early = max(early, b.store.count(f"{where} AND status <> 'scheduled'"))
            time.sleep(1)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and b.store.count(f"{where} AND status = 'scheduled'"):
            time.sleep(0.2)
    finally:
        b.services.stop_beat()
        b.services.stop_worker()
    released, left, first_at, last_at = b.store.sql(
        f"SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'scheduled'), "
        f"min(updated_at), max(updated_at) FROM messaging_message {where}"
    )[0]
    events = b.store.sql(
        f"SELECT count(*), count(DISTINCT message_id) FROM messaging_messageevent WHERE status = 'queued' "
        f"AND message_id BETWEEN {first} AND {last}"
    )[0]
    span = (last_at - first_at).total_seconds() if released else 0.0
    result = {
        "messages": count,
        "released": released,
        "left": left,
        "early": early,
        "released_twice": events[0] - events[1],
        "first_lag_s": round((first_at - send_at).total_seconds(), 2) if released else None,
        "last_lag_s": round((last_at - send_at).total_seconds(), 2) if released else None,
        "per_s": round(released / span) if span else None,
    }
    b.results["schedule"] = result
    log(
        f"schedule: {released} of {count} released ({left} left, {early} early, {result['released_twice']} twice); "
        f"first {result['first_lag_s']} s and last {result['last_lag_s']} s after send_at, {result['per_s']}/s"
    )


# --- Per-sender pacing -----------------------------------------------------------------


def pacing(b: Bench) -> None:
    """BENCH_PACING_MESSAGES queued from one long code set to BENCH_PACING_RATE a second,
    and 200 from the unpaced bench sender beside them, drained by two workers: the long
    code's rate as the provider received it, and how soon the others were out."""
    b.store.settle_outbox()
    rate, count = b.c.pacing_rate, b.c.pacing_messages
    b.services.manage("create_account", ACCOUNT, "--sender", PACED_SENDER, "--throughput", f"{rate:g}")
    first, last = (int(x) for x in b.services.seed("queued", "--sender", PACED_SENDER, "--count", str(count)).split())
    other_first, other_last = (int(x) for x in b.services.seed("queued", "--count", "200").split())
    paced, others = f"WHERE id BETWEEN {first} AND {last}", f"WHERE id BETWEEN {other_first} AND {other_last}"
    log(f"pacing: {count} messages at {rate:g}/s from one long code and 200 unpaced, two prefork:2 workers")
    for name in ("worker", "worker2"):
        b.services.start_worker("prefork", 2, name=name)
    try:
        deadline = time.monotonic() + count / rate * 2 + 60
        while time.monotonic() < deadline and b.store.count(f"{paced} AND sent_at IS NULL"):
            time.sleep(0.5)
    finally:
        for name in ("worker", "worker2"):
            b.services.stop_worker(name)
    # When the provider (the sandbox) received each: `sent_at` is written after a batch's
    # calls, and the first batch's include a fresh worker's first connections.
    received = "SELECT count(*), min(created_at), max(created_at) FROM sandbox_sandboxmessage WHERE reference IN "
    sent, first_at, last_at = b.store.sql(f"{received}(SELECT id::text FROM messaging_message {paced})")[0]
    tries = b.store.sql(f"SELECT max(attempts) FROM messaging_message {paced}")[0][0]
    other_sent, _, other_last_at = b.store.sql(f"{received}(SELECT id::text FROM messaging_message {others})")[0]
    span = (last_at - first_at).total_seconds() if sent > 1 else 0.0
    result = {
        "rate": rate,
        "messages": count,
        "sent": sent,
        "measured_per_s": round((sent - 1) / span, 2) if span else None,
        "most_tries": tries,
        "others_sent": other_sent,
        # From the long code's first message received to the last of the others.
        "others_out_after_s": round((other_last_at - first_at).total_seconds(), 2) if other_sent and sent else None,
        "paced_seconds": round(span, 2),
    }
    b.results["pacing"] = result
    log(
        f"pacing: {sent} of {count} sent at {result['measured_per_s']}/s (set {rate:g}/s, most tries {tries}); "
        f"the 200 others out {result['others_out_after_s']} s after the first"
    )


# --- A large history ------------------------------------------------------------------


def stored(b: Bench) -> None:
    """BENCH_SEED_MESSAGES stored with COPY, then send, webhook and read again."""
    b.store.settle_outbox()
    per_conversation = 100
    conversations = max(b.c.seed_messages // per_conversation, 1)
    log(f"seeding {conversations * per_conversation} stored messages with COPY")
    seed_started = time.monotonic()
    seed_history(
        b, prefix="+1312555", conversations=conversations, per_conversation=per_conversation, ids_out=SEEDED_IDS
    )
    b.results["seed_seconds"] = round(time.monotonic() - seed_started, 1)
    b.results["stored_messages"] = b.store.count()
    load(b, "send_1m", "send.lua")
    load(b, "webhook_1m", "webhook.lua")
    load(b, "read_1m", "read.lua", BENCH_IDS=SEEDED_IDS)
