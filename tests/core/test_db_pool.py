"""The pool's cheap liveness check: a round trip only for idle connections or ones the server spoke on."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.core.db import IdleCheck


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
            with psycopg.connect(clean_db, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                # pg_terminate_backend only signals: wait until the session has ended (and said so on its
                # socket), which is what the check looks for.
                for _ in range(500):
                    gone = admin.execute("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (pid,))
                    if (gone.fetchone() or (False,))[0]:
                        break
                    time.sleep(0.01)
            async with pool.connection() as conn:  # the killed session is replaced, not handed out
                assert (await (await conn.execute("SELECT 1")).fetchone()) == (1,)
            assert len(pings) >= 2
    finally:
        AsyncConnectionPool.check_connection = original  # type: ignore[method-assign]
