"""PostgreSQL access: connection helpers and the migration runner.

Migrations are plain SQL files in bot/core/migrations, applied in name order inside one transaction each and
recorded in schema_migrations. An advisory lock makes concurrent start-ups (web and worker replicas)
wait for each other instead of racing.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg

MIGRATION_LOCK_ID = 727_001  # any constant; shared by every process of this service


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
