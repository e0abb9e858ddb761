"""Django's PostgreSQL backend, with a health check that needs no round trip.

With CONN_HEALTH_CHECKS Django sends `SELECT 1` before the first query of every request
and task on a reused connection: a round trip per request, a tenth of a send's time
(docs/performance.md). A connection that PostgreSQL dropped (a restart, an idle
timeout, pg_terminate_backend) is told apart without one: the server says goodbye
before it closes, and the kernel marks the socket closed, so the socket has something
to read; a healthy idle connection, between our own requests and answers, has nothing.
So a connection that psycopg knows to be intact and idle, with nothing waiting on its
socket, is usable; anything else gets Django's `SELECT 1` as before.
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.info.transaction_status == TransactionStatus.IDLE and not _readable(conn.fileno()):
            return True
        return super().is_usable()


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
