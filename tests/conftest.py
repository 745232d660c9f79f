"""Shared test helpers: where the fixtures and services are, and settings for a test.

The fixtures themselves (a private database, private Redis keys) are in the repository's root conftest.py,
so every test folder sees them."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

SERVER_URL = os.environ.get("TEST_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
INTEGRATIONS = Path(__file__).resolve().parents[1] / "integrations"


def load_fixture(relative: str) -> Any:
    """A JSON payload from an integration's fixtures, e.g. load_fixture('aircall/call.ended.json') reads
    integrations/aircall/tests/fixtures/call.ended.json."""
    source, _, name = relative.partition("/")
    return json.loads((INTEGRATIONS / source / "tests" / "fixtures" / name).read_text())


def spool_dir_for(queue_name: str) -> Path:
    """Where a test's spool goes (written only when Postgres is unavailable); removed with its queue."""
    return Path(tempfile.gettempdir()) / f"sidecar-spool-{queue_name}"


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
        "REPLY_SETTLE_S": "0",
        "SPEECH_BACKEND": "local",
        "SPOOL_DIR": str(spool_dir_for(queue_name)),
    }
    env.update(overrides)
    return load_settings(env)


def end_sessions(dsn: str, where: str, params: tuple[Any, ...] = ()) -> list[int]:
    """Terminate the sessions of our database that `where` picks (a condition on pg_stat_activity) and wait
    until they have ended. pg_terminate_backend only signals: until a session has ended and said so on its
    socket, a query on it still succeeds, which is not what a test of a killed connection means."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        # Pick first, terminate second: the planner may not evaluate a WHERE clause in the written order,
        # and a test must not end another test's sessions.
        picked = admin.execute(
            "WITH ours AS MATERIALIZED (SELECT pid FROM pg_stat_activity"
            f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({where}))"
            " SELECT pid FROM ours WHERE pg_terminate_backend(pid)",
            params,
        )
        pids = [pid for (pid,) in picked]
        for _ in range(1000):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone():
                return pids
            time.sleep(0.01)
    raise AssertionError(f"sessions {pids} did not end within 10 s of pg_terminate_backend")
