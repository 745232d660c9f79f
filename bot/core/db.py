"""PostgreSQL access: connection helpers and the migration runner.

Migrations are plain SQL files in bot/core/migrations, applied in name order inside one transaction each and
recorded in schema_migrations. An advisory lock makes concurrent start-ups (web and worker replicas)
wait for each other instead of racing.
"""

from __future__ import annotations

import select
import time
import weakref
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

MIGRATION_LOCK_ID = 727_001  # any constant; shared by every process of this service


class IdleCheck:
    """Check a pooled connection before use only when it sat idle long enough to have gone stale.

    A Postgres restart leaves the pool's idle connections dead; checking every checkout (an empty query)
    catches that but costs a round trip per query, half the database time on a busy reply path. So the
    round trip is made only for a connection idle past `idle_s`, or whose socket has something to read
    while it should be silent: a server that ends a session (a restart, pg_terminate_backend) says so
    and closes the socket, which a zero-timeout select sees without a round trip.
    Pass `check=` and `reset=` of the same instance to the pool."""

    def __init__(self, idle_s: float = 2.0) -> None:
        self.idle_s = idle_s
        self._returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > self.idle_s or _has_input(conn):
            await AsyncConnectionPool.check_connection(conn)


def _has_input(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection's socket is readable (a notice, an error, or the server hanging up)."""
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def pool_options() -> dict[str, Any]:
    """`check` and `reset` for an AsyncConnectionPool that recovers from a database restart cheaply."""
    idle = IdleCheck()
    return {"check": idle.check, "reset": idle.reset}


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every bundled migration, in the order they apply."""
    folder = resources.files("bot.core") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def upgrade(dsn: str) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for name, sql in migration_files():
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied_now.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now


def with_database(dsn: str, dbname: str) -> str:
    """The same server URL pointing at another database (used to create and drop test databases)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_database(dsn: str) -> bool:
    """Create the database named in dsn if it does not exist; True when it was created."""
    name = urlsplit(dsn).path.lstrip("/")
    admin = with_database(dsn, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return True


def drop_database(dsn: str) -> None:
    """Drop the database named in dsn, closing other sessions first."""
    name = urlsplit(dsn).path.lstrip("/")
    with psycopg.connect(with_database(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
