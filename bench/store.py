"""The state the bench makes and clears: its PostgreSQL database and its two Redis
databases (cache, broker), and the counts the phases read from them."""

import contextlib

import psycopg
import redis

from bench.options import Config


class Store:
    def __init__(self, config: Config):
        self.c = config
        self.broker = redis.Redis.from_url(config.broker_url)
        self.cache = redis.Redis.from_url(config.cache_url)

    def sql(self, query: str, params: tuple = (), dbname: str | None = None) -> list:
        """One statement on a connection of its own, so no phase holds one open."""
        with psycopg.connect(f"{self.c.pg}/{dbname or self.c.db}", autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def recreate(self) -> None:
        self.drop_database()
        self.sql(f'CREATE DATABASE "{self.c.db}"', dbname="postgres")
        self.flush()

    def drop_database(self) -> None:
        self.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.c.db,),
            dbname="postgres",
        )
        self.sql(f'DROP DATABASE IF EXISTS "{self.c.db}"', dbname="postgres")

    def flush(self) -> None:
        self.broker.flushdb()
        self.cache.flushdb()

    def close(self) -> None:
        """Best effort on the way out: a failure here must not hide the run's own."""
        with contextlib.suppress(Exception):
            self.flush()
        with contextlib.suppress(Exception):
            self.drop_database()

    def count(self, where: str = "") -> int:
        return self.sql(f"SELECT count(*) FROM messaging_message {where}")[0][0]

    def backends(self) -> set[int]:
        """The pids of PostgreSQL's backends serving the bench's database now."""
        return {row[0] for row in self.sql("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.c.db,))}

    def broker_depth(self) -> int:
        """Dispatch tasks waiting in the broker's sms queues."""
        return sum(
            self.broker.llen(key) for key in self.broker.scan_iter(match="sms*") if self.broker.type(key) == b"list"
        )

    def settle_outbox(self) -> None:
        """Take earlier phases' messages out of the way: no worker will see them."""
        self.sql(
            "UPDATE messaging_message SET status = 'sent', sent_at = coalesce(sent_at, now()), "
            "lease_expires_at = NULL WHERE status IN ('queued', 'sending')"
        )
        self.broker.flushdb()
