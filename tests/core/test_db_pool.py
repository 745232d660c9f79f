"""Our database connections: the pool's cheap liveness check (a round trip only for idle connections or ones
the server spoke on), and prepared statements, which can be turned off for PgBouncer."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from bot.core.db import IdleCheck
from tests.conftest import end_sessions, make_settings


async def test_a_busy_connection_is_not_pinged_and_an_idle_or_killed_one_is(clean_db: str) -> None:
    pings: list[int] = []
    original = AsyncConnectionPool.check_connection

    async def counting(conn: psycopg.AsyncConnection[Any]) -> None:
        pings.append(1)
        await original(conn)

    check = IdleCheck(idle_s=3600)
    AsyncConnectionPool.check_connection = counting  # type: ignore[method-assign]
    try:
        async with AsyncConnectionPool(
            clean_db, min_size=1, max_size=1, check=check.check, reset=check.reset, kwargs={"autocommit": True}
        ) as pool:
            for _ in range(3):
                async with pool.connection() as conn:
                    pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone() or (0,))[0]
            assert len(pings) == 1  # the first checkout (never returned before) only
            assert end_sessions(clean_db, "pid = %s", (pid,)) == [pid]
            async with pool.connection() as conn:  # the killed session is replaced, not handed out
                assert (await (await conn.execute("SELECT 1")).fetchone()) == (1,)
            assert len(pings) >= 2
    finally:
        AsyncConnectionPool.check_connection = original  # type: ignore[method-assign]


PREPARED = "SELECT count(*) FROM pg_prepared_statements"  # in this session


@pytest.mark.parametrize(("setting", "prepared"), [("true", True), ("false", False)])
def test_every_connection_prepares_on_first_use_unless_turned_off_for_pgbouncer(
    clean_db: str, queue_name: str, setting: str, prepared: bool
) -> None:
    """PgBouncer in transaction mode (before 1.21) loses a session's prepared statements between
    transactions; DATABASE_PREPARED_STATEMENTS=false must reach the web's pool, the jobs' pool and the
    job threads' own connections."""
    from starlette.testclient import TestClient

    from bot.context import JobContext
    from bot.service import jobs
    from bot.service.app import create_app

    settings = make_settings(clean_db, queue_name, DATABASE_PREPARED_STATEMENTS=setting)

    async def in_pool(pool: AsyncConnectionPool) -> bool:
        async with pool.connection() as conn:
            await conn.execute("SELECT %s::int", (1,))
            return int((await (await conn.execute(PREPARED)).fetchone() or (0,))[0]) > 0

    async def jobs_pool() -> bool:
        ctx = await JobContext.open(settings)
        try:
            return await in_pool(ctx.db)
        finally:
            await ctx.close()

    assert asyncio.run(jobs_pool()) == prepared
    rt = jobs.Runtime(settings)
    try:
        rt.conn().execute("SELECT %s::int", (1,))
        assert ((rt.conn().execute(PREPARED).fetchone() or (0,))[0] > 0) == prepared
    finally:
        rt.close()
    with TestClient(create_app(settings)) as client:
        assert client.portal is not None
        assert client.portal.call(in_pool, client.app.state.pool) == prepared  # type: ignore[attr-defined]
