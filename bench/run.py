"""`make bench`: the production shape on this machine, measured beside its ceilings.

Starts PostgreSQL-backed gunicorn (APP_ENV=production), the provider sandbox as a
separate server answering after SANDBOX_LATENCY_MS, and Celery workers on Redis; drives
them with wrk on loopback; writes the table into docs/performance.md. Every process it
starts is stopped on the way out, failure or not, and the database it made is dropped.

Knobs (environment): BENCH_DURATION (seconds per load run, 10), BENCH_CONNECTIONS
("16,64"), BENCH_SEED_MESSAGES (1000000; 0 skips that phase), BENCH_POOLS (worker pools
to compare, "prefork:2,prefork:8,threads:16,threads:32,gevent:32,gevent:64"),
BENCH_DRAIN_MESSAGES (10000), BENCH_DRAIN_SECONDS (20), BENCH_SCHEDULE_MESSAGES (100000),
BENCH_PACING_MESSAGES (300), BENCH_PACING_RATE (20), BENCH_PG
(postgres://postgres@127.0.0.1:5432), BENCH_DB (bench), BENCH_REDIS
(redis://127.0.0.1:6379), BENCH_REDIS_DBS ("10,11": cache, broker), BENCH_LATENCY_MS
(100), BENCH_OUTPUT (docs/performance.md; "-" prints only), BENCH_PROFILE (1: py-spy profiles of
a web worker at each run and of the worker while draining, in var/bench/), BENCH_ONLY (a subset of the phases
pgbench,ceiling,ledger,send,batch,webhook,read,sandbox,drain,e2e,schedule,pacing,stored; drain implies sandbox,
whose ceiling it is measured against).

The parts: bench/options.py (the knobs, paths, constants), bench/processes.py (the
servers, the worker and the commands it starts), bench/store.py (the database and Redis
it makes and drops), bench/drivers.py (wrk and pgbench), bench/ledger.py (the cost of each layer of a send,
with bench/ledger_settings.py and bench/ledger_urls.py), bench/phases.py (what is
measured, in order) and bench/report.py (the tables and results.json).
"""

import os
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# bench/run.sh runs this file as a script: make the `bench` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import phases, report
from bench.options import OUT, Config, log


def measure(bench: phases.Bench) -> None:
    started = time.monotonic()
    bench.results["machine"] = report.machine_info(bench.store)
    bench.results["started"] = datetime.now(UTC).isoformat(timespec="seconds")
    phases.execute(bench)
    bench.results["seconds"] = round(time.monotonic() - started)
    log(f"done in {bench.results['seconds']}s")
    bench.results["load_after"] = os.getloadavg()[0]


def stop(signum, frame):
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally below stops every child.
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    if not shutil.which("wrk"):
        log("wrk is missing: run `make bench` (it installs wrk) or apt-get install -y wrk")
        return 2
    config = Config()
    bench = phases.Bench.create(config)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        measure(bench)
    except BaseException:
        log(f"failed; logs in {OUT}")
        raise
    finally:
        bench.close()
        report.save_results(bench.results)
    report.write_report(report.render(bench.results, config), config.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
