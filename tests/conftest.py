"""Shared test helpers: where the fixtures and services are, and settings for a test.

The fixtures themselves (a private database, private Redis keys) are in the repository's root conftest.py,
so every test folder sees them."""

from __future__ import annotations

import json
import os
import tempfile
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
