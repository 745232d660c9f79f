"""Fixtures for every test folder (tests/, integrations/*/tests/, speech/tests/): a private PostgreSQL
database created and dropped by this run, and Redis keys no one else uses."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from bot.core import db
from tests.conftest import REDIS_URL, SERVER_URL, spool_dir_for


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database with every migration applied, dropped at the end of the session."""
    dsn = db.with_database(SERVER_URL, f"sidecar_test_{uuid.uuid4().hex[:10]}")
    db.create_database(dsn)
    db.upgrade(dsn)
    try:
        yield dsn
    finally:
        db.drop_database(dsn)


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """The session database, emptied of rows before the test, its sequences back at 1.

    DELETE with triggers off (foreign keys included) instead of TRUNCATE: a test leaves a few rows, and
    TRUNCATE of every table costs ~90 ms a test in file operations, DELETE ~2 ms."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
            )
        ]
        conn.execute(
            "SET session_replication_role = replica; "
            + "".join(f'DELETE FROM "{table}"; ' for table in tables)
            + "SET session_replication_role = DEFAULT; "
            "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'S' AND n.nspname = 'public'"
        )
    yield database_url


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue name no one else uses; its Redis keys and its spool folder are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    shutil.rmtree(spool_dir_for(name), ignore_errors=True)
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(f"*{name}*"))
    if keys:
        r.delete(*keys)
