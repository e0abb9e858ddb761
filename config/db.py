"""Statements whose parameters psycopg binds on the server (PostgreSQL only).

Django's PostgreSQL cursors bind on the client: psycopg splits the statement at every
placeholder and quotes each value in Python, which for a statement over a thousand values
(a batch's rows, its recipients) costs more than running it. Bound on the server, the
text stays fixed (so psycopg prepares it after a few uses on a connection) and an array
travels as one parameter.
"""

import psycopg
from django.db import connection


def server_bound_cursor():
    """A cursor of the default connection that binds on the server, wrapped as Django
    wraps its own: errors translated, queries logged where Django logs them."""
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
