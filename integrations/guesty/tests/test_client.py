"""The Guesty client: one shared OAuth token (and a hard daily budget), 401 refresh, 429 retry, rate limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from integrations.guesty.client import (
    REQUESTS_KEY,
    TOKEN_KEY,
    GuestyAuthError,
    GuestyConfigError,
    GuestyNotFound,
    GuestyRetryable,
    GuestyTokenBudgetExceeded,
    RateLimiter,
    TokenStore,
)
from integrations.guesty.tests.conftest import GUESTY_URL, guesty_client, load, open_pool

RID = "6941c3a7e2b1f40012d8a5c3"
RESERVATION_URL = f"{GUESTY_URL}/v1/reservations/{RID}"
TOKEN_URL = f"{GUESTY_URL}/oauth2/token"


def token_route(router: respx.MockRouter, *tokens: str, expires_in: int = 86400) -> respx.Route:
    responses = [
        httpx.Response(
            200, json={"token_type": "Bearer", "expires_in": expires_in, "access_token": t, "scope": "open-api"}
        )
        for t in tokens
    ]
    return router.post(TOKEN_URL).mock(side_effect=responses)


async def kv(pool: AsyncConnectionPool, key: str) -> tuple[Any, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT value, expires_at FROM kv_state WHERE key = %s", (key,))
        row = await cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


async def test_token_is_requested_with_client_credentials_and_stored(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-1")
        reads = router.get(RESERVATION_URL).mock(
            return_value=httpx.Response(200, json=load("reservation.new")["reservation"])
        )
        async with httpx.AsyncClient() as http:
            body = await guesty_client(http, pool).get_reservation(RID)
    assert body["confirmationCode"] == "HM4KQZ8X2T"
    request = tokens.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["open-api"],
        "client_id": ["cid-123"],
        "client_secret": ["csecret-456"],
    }
    assert reads.calls.last.request.headers["authorization"] == "Bearer tok-1"
    value, expires_at = await kv(pool, TOKEN_KEY)
    assert value == {"access_token": "tok-1"}
    assert timedelta(hours=23, minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=24)
    requests, _ = await kv(pool, REQUESTS_KEY)
    assert len(requests["requested_at"]) == 1


async def test_token_is_reused_across_many_requests_and_clients(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-1")
        reads = router.get(RESERVATION_URL).mock(return_value=httpx.Response(200, json={"_id": RID}))
        async with httpx.AsyncClient() as http:
            first = guesty_client(http, pool)
            for _ in range(5):
                await first.get_reservation(RID)
            await guesty_client(http, pool).get_reservation(RID)  # a new process reads the shared token
    assert (tokens.call_count, reads.call_count) == (1, 6)


async def test_burst_of_100_events_across_processes_makes_one_token_request(clean_db: str) -> None:
    """Four 'processes' (own pools and clients, one database) fetch 100 reservations at once."""
    pools = [await open_pool(clean_db, size=3) for _ in range(4)]
    try:
        with respx.mock(assert_all_called=False) as router:
            tokens = token_route(router, *(f"tok-{i}" for i in range(5)))
            reads = router.get(url__regex=rf"^{GUESTY_URL}/v1/reservations/r\d+$").mock(
                side_effect=lambda request: httpx.Response(200, json={"_id": request.url.path.rsplit("/", 1)[1]})
            )
            async with httpx.AsyncClient() as http:
                clients = [guesty_client(http, p) for p in pools]
                results = await asyncio.gather(*(clients[i % 4].get_reservation(f"r{i}") for i in range(100)))
        assert [r["_id"] for r in results] == [f"r{i}" for i in range(100)]
        assert (tokens.call_count, reads.call_count) == (1, 100)
        assert {c.request.headers["authorization"] for c in reads.calls} == {"Bearer tok-0"}
        requests, _ = await kv(pools[0], REQUESTS_KEY)
        assert len(requests["requested_at"]) == 1
    finally:
        for p in pools:
            await p.close()


async def test_rate_limited_read_is_retried_after_retry_after(pool: AsyncConnectionPool) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with respx.mock(assert_all_called=False) as router:
        token_route(router, "tok-1")
        reads = router.get(RESERVATION_URL).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "Too Many Requests"}),
                httpx.Response(200, json={"_id": RID, "status": "confirmed"}),
            ]
        )
        async with httpx.AsyncClient() as http:
            body = await guesty_client(http, pool, sleep=sleep).get_reservation(RID)
    assert body == {"_id": RID, "status": "confirmed"}
    assert reads.call_count == 2
    assert waits == [7.0]


async def test_long_retry_after_is_handed_to_the_job_layer(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        token_route(router, "tok-1")
        reads = router.get(RESERVATION_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyRetryable) as caught:
                await guesty_client(http, pool).get_reservation(RID)
    assert (caught.value.status, caught.value.retry_after, reads.call_count) == (429, 3600.0, 1)


async def test_server_errors_are_retried_then_raised(pool: AsyncConnectionPool) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with respx.mock(assert_all_called=False) as router:
        token_route(router, "tok-1")
        reads = router.get(RESERVATION_URL).mock(return_value=httpx.Response(502, text="bad gateway"))
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyRetryable, match="answered 502: bad gateway"):
                await guesty_client(http, pool, sleep=sleep, max_attempts=3).get_reservation(RID)
    assert (reads.call_count, waits) == (3, [1.0, 2.0])


async def test_401_refreshes_the_token_once(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-1", "tok-2")
        reads = router.get(RESERVATION_URL).mock(
            side_effect=[
                httpx.Response(200, json={"_id": RID}),
                httpx.Response(401, json={"message": "Unauthorized"}),
                httpx.Response(200, json={"_id": RID}),
            ]
        )
        async with httpx.AsyncClient() as http:
            client = guesty_client(http, pool)
            await client.get_reservation(RID)
            await client.get_reservation(RID)
    assert tokens.call_count == 2
    assert [c.request.headers["authorization"] for c in reads.calls] == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert (await kv(pool, TOKEN_KEY))[0] == {"access_token": "tok-2"}


async def test_401_after_refresh_is_an_auth_error(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-1", "tok-2")
        router.get(RESERVATION_URL).mock(return_value=httpx.Response(401, text="nope"))
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyAuthError, match="answered 401: nope"):
                await guesty_client(http, pool).get_reservation(RID)
    assert tokens.call_count == 2


async def test_401_uses_a_token_another_process_refreshed_meanwhile(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO kv_state (key, value, expires_at) VALUES (%s, %s, now() + interval '20 hours')",
            (TOKEN_KEY, Jsonb({"access_token": "tok-old"})),
        )
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-never")
        reads = router.get(RESERVATION_URL).mock(
            side_effect=[
                httpx.Response(200, json={"_id": RID}),
                httpx.Response(401),
                httpx.Response(200, json={"_id": RID}),
            ]
        )
        async with httpx.AsyncClient() as http:
            client = guesty_client(http, pool)
            await client.get_reservation(RID)  # caches tok-old in this process
            async with pool.connection() as conn:  # another process refreshed meanwhile
                await conn.execute(
                    "UPDATE kv_state SET value = %s WHERE key = %s", (Jsonb({"access_token": "tok-new"}), TOKEN_KEY)
                )
            await client.get_reservation(RID)
    assert tokens.call_count == 0
    assert [c.request.headers["authorization"] for c in reads.calls] == [
        "Bearer tok-old",
        "Bearer tok-old",
        "Bearer tok-new",
    ]


async def test_expiring_token_is_refreshed_before_it_expires(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO kv_state (key, value, expires_at) VALUES (%s, %s, now() + interval '5 minutes')",
            (TOKEN_KEY, Jsonb({"access_token": "tok-old"})),
        )
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-fresh")
        reads = router.get(RESERVATION_URL).mock(return_value=httpx.Response(200, json={"_id": RID}))
        async with httpx.AsyncClient() as http:
            await guesty_client(http, pool).get_reservation(RID)
    assert tokens.call_count == 1
    assert reads.calls.last.request.headers["authorization"] == "Bearer tok-fresh"


async def test_sixth_token_request_in_a_day_is_refused_without_asking_guesty(pool: AsyncConnectionPool) -> None:
    now = datetime.now(UTC)
    stamps = [now - timedelta(hours=h) for h in (23, 20, 10, 5, 1)] + [now - timedelta(hours=30)]
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO kv_state (key, value) VALUES (%s, %s)",
            (REQUESTS_KEY, Jsonb({"requested_at": [s.isoformat() for s in stamps]})),
        )
    with respx.mock(assert_all_called=False) as router:
        tokens = token_route(router, "tok-1")
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyTokenBudgetExceeded, match="5 token requests in the last 24 h") as caught:
                await guesty_client(http, pool).get_reservation(RID)
    assert tokens.call_count == 0
    assert caught.value.retry_at == stamps[0] + timedelta(hours=24)


async def test_token_request_after_the_oldest_left_the_window_is_allowed(pool: AsyncConnectionPool) -> None:
    now = datetime.now(UTC)
    stamps = [now - timedelta(hours=h) for h in (25, 20, 10, 5, 1)]
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO kv_state (key, value) VALUES (%s, %s)",
            (REQUESTS_KEY, Jsonb({"requested_at": [s.isoformat() for s in stamps]})),
        )
    with respx.mock(assert_all_called=False) as router:
        token_route(router, "tok-1")
        router.get(RESERVATION_URL).mock(return_value=httpx.Response(200, json={"_id": RID}))
        async with httpx.AsyncClient() as http:
            await guesty_client(http, pool).get_reservation(RID)
    requests, _ = await kv(pool, REQUESTS_KEY)
    assert len(requests["requested_at"]) == 5  # the 25-hour-old stamp is dropped, the new one added


async def test_refused_credentials_are_not_counted(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyAuthError, match="check GUESTY_CLIENT_ID and GUESTY_CLIENT_SECRET"):
                await guesty_client(http, pool).get_reservation(RID)
    assert (await kv(pool, REQUESTS_KEY)) == (None, None)


async def test_token_request_that_timed_out_is_counted(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(side_effect=httpx.ReadTimeout("slow"))
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyRetryable, match="token request failed"):
                await guesty_client(http, pool, max_attempts=1).get_reservation(RID)
    requests, _ = await kv(pool, REQUESTS_KEY)
    assert len(requests["requested_at"]) == 1  # Guesty may have issued a token we never saw
    assert (await kv(pool, TOKEN_KEY)) == (None, None)


async def test_missing_reservation_is_not_found(pool: AsyncConnectionPool) -> None:
    with respx.mock(assert_all_called=False) as router:
        token_route(router, "tok-1")
        router.get(RESERVATION_URL).mock(return_value=httpx.Response(404, json={"message": "not found"}))
        async with httpx.AsyncClient() as http:
            with pytest.raises(GuestyNotFound):
                await guesty_client(http, pool).get_reservation(RID)


async def test_missing_credentials_name_the_variable(pool: AsyncConnectionPool) -> None:
    async with httpx.AsyncClient() as http:
        from integrations.guesty.client import GuestyClient

        with pytest.raises(GuestyConfigError, match="GUESTY_CLIENT_SECRET is not set"):
            GuestyClient(http, GUESTY_URL, "cid", None, TokenStore(pool))


async def test_rate_limiter_holds_to_15_per_second_and_120_per_minute() -> None:
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        clock[0] += seconds

    limiter = RateLimiter(clock=lambda: clock[0], sleep=sleep)
    for _ in range(15):
        await limiter.acquire()
    assert waits == []
    await limiter.acquire()  # the 16th waits for the first to leave the 1-second window
    assert waits == [1.0]
    for _ in range(104):  # 120 sent by now
        await limiter.acquire()
    assert clock[0] < 60
    before = clock[0]
    await limiter.acquire()  # the 121st waits for the first to leave the minute
    assert clock[0] == pytest.approx(60.0)
    assert clock[0] > before
