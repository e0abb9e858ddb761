"""gunicorn settings (bin/start.sh and the Docker image pass `-c config/gunicorn.py`)."""

import multiprocessing
import os
from pathlib import Path

from config.logs import logging_config

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
# sync workers: measured steadier than gthread under keep-alive load (docs/performance.md).
worker_class = os.environ.get("WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = 30
# On SIGTERM workers stop accepting and finish the requests they have, for this long.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# The application logs one structured line per request (config/middleware.py), with the
# request id and account; gunicorn's own access log would repeat it. ACCESS_LOG=- adds it.
accesslog = os.environ.get("ACCESS_LOG") or None
max_requests = 0
# gunicorn 27 binds a control socket (for gunicornc) at one path per user by default,
# ~/.gunicorn/gunicorn.ctl: a second server on the host (the sandbox beside the web in
# `make bench`, two checkouts) unlinks and takes over the first's. One per var folder
# and port instead; a path that cannot be bound only costs gunicornc (gunicorn warns).
_var_dir = Path(os.environ.get("VAR_DIR", Path(__file__).parent.parent / "var"))
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or str(_var_dir / f"gunicorn-{bind.rsplit(':', 1)[-1]}.ctl")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn's own lines (workers booting, timeouts) in the application's format.
_production = os.environ.get("APP_ENV", "local") == "production"
logconfig_dict = logging_config(
    log_format=os.environ.get("LOG_FORMAT") or ("json" if _production else "console"),
    level=os.environ.get("LOG_LEVEL", "INFO"),
)
logconfig_dict["loggers"] |= {
    "gunicorn.error": {"level": "INFO", "propagate": True},
    "gunicorn.access": {"level": "INFO" if accesslog else "WARNING", "propagate": True},
}

# The workers' Prometheus files (settings would choose the same folder; it is set here so
# the master knows it too).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var_dir / "metrics"))


def when_ready(server) -> None:
    """METRICS_PORT: the master serves its workers' summed counters on a port of its own,
    for a Prometheus that scrapes each container rather than through a load balancer."""
    port = os.environ.get("METRICS_PORT")
    if port:
        from config.metrics import metrics_serve

        metrics_serve(int(port), with_state=False, addr=os.environ.get("METRICS_ADDR", "0.0.0.0"))  # noqa: S104


def child_exit(server, worker) -> None:
    from config.metrics import process_dead

    process_dead(worker.pid)
