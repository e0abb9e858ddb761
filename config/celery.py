"""The Celery app. Its settings live in config/settings.py under the CELERY_ prefix.

The signal handlers below give every task what a request gets from the middleware: the
request id it was published under (carried in a message header), one log line when it
ends, its counts and duration in the metrics, and tracing when OTEL_* asks for it.
"""

import logging
import os
import threading
import time

import structlog
from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("messaging_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "request_id"
task_log = structlog.get_logger("config.task")
_started: dict[str, float] = {}


@signals.setup_logging.connect
def _logging(**kwargs) -> None:
    """Log as the web does (settings.LOGGING), not in Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _carry_request_id(headers: dict | None = None, **kwargs) -> None:
    """Tasks published while serving a request (or running a task) carry its id."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect
def _task_started(task_id: str, task, **kwargs) -> None:
    if not task.request.is_eager:  # an eager task runs in its caller's context and transaction
        _close_old_connections()
        structlog.contextvars.clear_contextvars()
    context = {"task": task.name, "task_id": task_id}
    if request_id := task.request.get(REQUEST_ID_HEADER):
        context["request_id"] = request_id
    structlog.contextvars.bind_contextvars(**context)
    _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(task_id: str, task, retval=None, state: str = "", **kwargs) -> None:
    from config import metrics

    seconds = time.monotonic() - _started.pop(task_id, time.monotonic())
    metrics.TASKS.labels(task=task.name, state=state or "UNKNOWN").inc()
    metrics.TASK_DURATION.labels(task=task.name).observe(seconds)
    result = retval if isinstance(retval, str | int | float | dict | type(None)) else type(retval).__name__
    log = task_log.info if state == "SUCCESS" else task_log.warning
    log("task", state=state, duration_ms=round(seconds * 1000, 1), retries=task.request.retries, result=result)
    if task.request.is_eager:
        structlog.contextvars.unbind_contextvars("task", "task_id", "message_id")
    else:
        structlog.contextvars.clear_contextvars()
        _close_old_connections()


def _close_old_connections() -> None:
    """Do around each task what Django does around each request: drop connections that
    broke (a database restart) or aged out, so the next query opens a fresh one."""
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
def _worker_started(sender=None, **kwargs) -> None:
    from config import tracing

    _serve_metrics()
    pool = str(getattr(sender, "pool_cls", "prefork"))
    if "prefork" not in pool and "processes" not in pool:
        tracing.tracing_setup(service="worker")  # threads, gevent, solo: tasks run in this process


@signals.beat_init.connect
def _beat_started(sender=None, **kwargs) -> None:
    _serve_metrics()


def _serve_metrics() -> None:
    """METRICS_PORT: this worker (or beat) serves /metrics itself (the counters of this
    machine's processes and, unless METRICS_STATE_GAUGES is off, the scrape-time gauges),
    for when the web is on another machine or container."""
    port = os.environ.get("METRICS_PORT")
    if not port:
        return
    from config import metrics

    try:
        metrics.metrics_serve(int(port), with_state=True, addr=os.environ.get("METRICS_ADDR", "0.0.0.0"))  # noqa: S104
    except OSError as exc:
        logging.getLogger(__name__).warning("metrics: cannot serve on port %s: %s", port, exc)


@signals.worker_process_init.connect
def _pool_process_started(**kwargs) -> None:
    from config import tracing

    tracing.tracing_setup(service="worker")  # prefork: each pool process traces itself


@signals.worker_process_shutdown.connect
def _pool_process_stopped(pid: int | None = None, **kwargs) -> None:
    from config import metrics

    metrics.process_dead(pid or os.getpid())


def queue_depths(queues: list[str], *, strict: bool = False) -> dict[str, int | None]:
    """Tasks waiting in each queue (not those a worker holds). A queue nobody declared
    yet holds nothing. When the broker cannot be read: None for each, or the error
    when `strict`."""
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            depths = {}
            for queue in queues:
                # A passive declare of a missing queue fails (and closes an AMQP channel),
                # hence one channel per queue.
                channel = conn.channel()
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except conn.channel_errors:
                    depths[queue] = 0
                finally:
                    channel.close()
            return depths
    except Exception:
        if strict:
            raise
        logging.getLogger(__name__).warning("cannot read the queue depths", exc_info=True)
        return dict.fromkeys(queues)


class OutboxRelay(bootsteps.StartStopStep):
    """Every worker runs the outbox relay in a thread of its main process (after the
    pool has forked), unless MESSAGING_RELAY is off: relays share the work through
    SKIP LOCKED, so any number may run (messaging/services/outbox.py)."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker) -> None:
        from django.conf import settings

        if not settings.MESSAGING_RELAY:
            return
        from messaging.services.outbox import outbox_run

        self.thread = threading.Thread(
            target=outbox_run, kwargs={"stop": self.stop_event}, name="outbox-relay", daemon=True
        )
        self.thread.start()

    def stop(self, worker) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


app.steps["worker"].add(OutboxRelay)
