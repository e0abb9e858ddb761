"""The PostgreSQL backend's health check (config/postgresql): a dropped connection is
replaced before a request uses it, and a healthy one costs no round trip to tell."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the backend is PostgreSQL's (set DATABASE_URL)"),
]


def _last_query(pid: int) -> str:
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def _start_request() -> None:
    """What Django does when a request (or, in config/celery.py, a task) begins."""
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()


def test_a_healthy_connection_is_judged_usable_without_a_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42 AS marker")
    pid = connection.connection.info.backend_pid

    _start_request()

    assert connection.health_check_enabled
    assert connection.connection.info.backend_pid == pid  # kept
    assert _last_query(pid) == "SELECT 42 AS marker"  # and no SELECT 1 was sent


def test_a_connection_the_server_dropped_is_replaced_before_the_next_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    time.sleep(0.2)  # the server's goodbye reaches our socket

    _start_request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        new_pid = cursor.fetchone()[0]

    assert new_pid != pid


def test_a_transaction_left_idle_is_ended_by_the_server_and_its_locks_freed():
    """A client that vanished mid-transaction (its link cut) must not hold row locks
    until TCP gives up: the settings ask PostgreSQL to end the session."""
    assert "idle_in_transaction_session_timeout=60000" in connection.get_connection_params()["options"]
    params = connection.get_connection_params() | {"options": "-c idle_in_transaction_session_timeout=500"}
    vanished = psycopg.connect(**params)
    vanished.execute("SELECT pg_advisory_xact_lock(4215)")  # a lock held inside a transaction

    time.sleep(1.5)

    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(4215)").fetchone()[0] is True
    # The server's goodbye, or the closed socket if that was read first.
    with pytest.raises((psycopg.errors.IdleInTransactionSessionTimeout, psycopg.OperationalError)):
        vanished.execute("SELECT 1")
    vanished.close()
