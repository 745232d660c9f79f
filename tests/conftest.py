"""Shared fixtures: a private PostgreSQL database and private Redis keys for this test run."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from bot import db

SERVER_URL = os.environ.get("TEST_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SHARED = Path(os.environ.get("SIDECAR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures"


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
    """The session database, emptied of rows before the test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )]
        conn.execute("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE")
    yield database_url


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue name no one else uses; its Redis keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(f"*{name}*"))
    if keys:
        r.delete(*keys)


def load_fixture(relative: str) -> Any:
    """A JSON payload from the shared fixtures folder, e.g. load_fixture('aircall/call.ended.json')."""
    return json.loads((FIXTURES / relative).read_text())


def make_settings(database_url: str, queue_name: str, **overrides: str) -> Any:
    """Settings for a test: our database and queue, signing secrets set, no external services."""
    from config.settings import load_settings

    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": queue_name,
        "CHATWOOT_BOT_SECRET": "bot-secret-for-tests",
        "AIRCALL_WEBHOOK_TOKEN": "4f6c2a9e81d34b7a9c05e2d1b8a7f310",
        "GUESTY_WEBHOOK_SECRET": "whsec_c2lkZWNhci1leGFtcGxlLXNpZ25pbmcta2V5LTAwMDE=",
        "JOB_BACKOFF_BASE_S": "0",
        "JOB_MAX_ATTEMPTS": "3",
        "SWEEP_GRACE_S": "0",
        "SPEECH_BACKEND": "local",
    }
    env.update(overrides)
    return load_settings(env)
