"""Fixtures for the Aircall mirror's tests: payloads, a private database, a fake Chatwoot, a job context."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import respx
from psycopg_pool import AsyncConnectionPool

from bot.context import JobContext
from bot.core.ledger import StoredEvent
from config.settings import Settings, load_settings
from integrations.aircall import verify
from integrations.aircall.tests.chatwoot_fake import FakeChatwoot
from integrations.chatwoot.client import ChatwootClient
from tests.conftest import REDIS_URL

FIXTURES = Path(__file__).parent / "fixtures"
CHATWOOT_URL = "https://chat.example.com"
AIRCALL_API = "https://api.aircall.test"
CALLS_INBOX = 7
BOT_TOKEN = "bot-token-123"
USER_TOKEN = "user-token-456"


def payload(name: str, **data: Any) -> dict[str, Any]:
    """An Aircall delivery from fixtures/ (`name` without .json), with data fields overridden."""
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    body["data"].update(copy.deepcopy(data))
    return body


def stored(body: dict[str, Any], event_id: int = 1) -> StoredEvent:
    """The row the intake would store for this delivery (without the token)."""
    return StoredEvent(
        id=event_id,
        source="aircall",
        event_type=body["event"],
        dedupe_key=verify.dedupe_key(body),
        subject=verify.subject(body),
        payload={k: v for k, v in body.items() if k != "token"},
        received_at=datetime.now(UTC),
        attempts=1,
    )


def settings_for(dsn: str, **overrides: str) -> Settings:
    env = {
        "DATABASE_URL": dsn,
        "CHATWOOT_URL": CHATWOOT_URL,
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_BOT_TOKEN": BOT_TOKEN,
        "CHATWOOT_API_TOKEN": USER_TOKEN,
        "CHATWOOT_CALLS_INBOX_ID": str(CALLS_INBOX),
        "AIRCALL_API_URL": AIRCALL_API,
        "AIRCALL_API_ID": "api-id",
        "AIRCALL_API_TOKEN": "api-secret",
        "SPEECH_BACKEND": "local",
    }
    env.update(overrides)
    return load_settings({k: v for k, v in env.items() if v})


async def no_sleep(_: float) -> None:
    return None


@dataclass
class World:
    """Everything a handler test touches: the context, the fake Chatwoot and the HTTP router."""

    ctx: JobContext
    chatwoot: FakeChatwoot
    router: respx.MockRouter
    dsn: str


MY_TABLES = ("call_records", "bot_replies", "contact_links")


@pytest.fixture
def aircall_db(database_url: str) -> str:
    """The session database with the mirror's tables emptied (DELETE: much faster than clean_db's TRUNCATE
    of every table, and these tests touch no other table)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in MY_TABLES:
            conn.execute(f"DELETE FROM {table}")
    return database_url


@pytest.fixture
async def pool(aircall_db: str) -> AsyncIterator[AsyncConnectionPool]:
    db = AsyncConnectionPool(aircall_db, min_size=1, max_size=12, open=False, kwargs={"autocommit": True})
    await db.open(wait=True, timeout=10)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    yield respx.MockRouter(assert_all_called=False)


@pytest.fixture
async def world(aircall_db: str, pool: AsyncConnectionPool, router: respx.MockRouter) -> AsyncIterator[World]:
    fake = FakeChatwoot(base_url=CHATWOOT_URL)
    fake.install(router)
    settings = settings_for(aircall_db)
    async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http:
        chatwoot = ChatwootClient(http, CHATWOOT_URL, 1, bot_token=BOT_TOKEN, api_token=USER_TOKEN, sleep=no_sleep)
        ctx = JobContext(
            settings=settings, db=pool, http=http, redis=redis.Redis.from_url(REDIS_URL), chatwoot=chatwoot
        )
        yield World(ctx=ctx, chatwoot=fake, router=router, dsn=aircall_db)
