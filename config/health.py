"""Liveness and readiness. /health says the process answers; /ready checks, for real,
that it can reach what it needs: the database, the broker and the cache."""

import logging
import time

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from config.celery import app as celery_app

logger = logging.getLogger(__name__)


@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _cache() -> None:
    key = "ready:probe"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")


CHECKS = {"database": _database, "broker": _broker, "cache": _cache}


@require_GET
def ready(request):
    results, ok = {}, True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            results[name] = {"status": "ok", "ms": round((time.monotonic() - started) * 1000, 1)}
        except Exception as exc:
            ok = False
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = {"status": "error", "error": type(exc).__name__}
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)
