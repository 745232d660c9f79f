"""The pool's cheap liveness check: a round trip only for idle connections or ones the server spoke on."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.core.db import IdleCheck
from tests.conftest import end_sessions


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
