"""Async client for the few Guesty Open API reads we need, with one OAuth token shared by every process.

Guesty issues at most 5 access tokens per API key per 24 hours (each valid 24 h), so the token lives in
Postgres (`kv_state`), not in a process: whoever needs a new one takes an advisory lock, looks again,
and only then asks Guesty, so a burst of workers makes one request. Every request we send to the token
endpoint that may have produced a token is counted there too, and a sixth in 24 h is refused here with
GuestyTokenBudgetExceeded instead of being sent. Reads are limited per process to Guesty's 15/s and
120/min; a 429 is retried after its Retry-After. Facts: /work/shared/reference/externals.md §2.5.

Errors (what a caller catches):

    GuestyError (status: int | None)
    ├── GuestyConfigError          GUESTY_CLIENT_ID / GUESTY_CLIENT_SECRET missing; raised before any request
    ├── GuestyAuthError            the token endpoint refused the credentials, or 401/403 after one refresh
    ├── GuestyTokenBudgetExceeded  5 token requests already made in 24 h; `retry_at` says when one frees up
    ├── GuestyNotFound             404
    ├── GuestyBadRequest           other 4xx
    └── GuestyRetryable            429 (after retries, or Retry-After too long), 5xx, timeouts, transport
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, RetryCallState, retry_base, retry_if_exception_type, stop_after_attempt

from bot.errors import ConfigurationError, UpstreamError, UpstreamPermanent, UpstreamTransient
from integrations.chatwoot.client import parse_retry_after

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]

TOKEN_KEY = "guesty:oauth_token"
REQUESTS_KEY = "guesty:oauth_token_requests"
TOKEN_LOCK_ID = 727_201  # pg advisory lock held while one process refreshes the token
DAILY_TOKEN_BUDGET = 5
BUDGET_WINDOW = timedelta(hours=24)
ERROR_BODY_CHARS = 300


class GuestyError(UpstreamError):
    """Any failure talking to Guesty; `status` is the HTTP status when there was a response."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GuestyConfigError(GuestyError, ConfigurationError):
    """Credentials are not configured; the message names the variable."""


class GuestyAuthError(GuestyError, UpstreamPermanent):
    """Guesty refused our credentials or token (after one refresh)."""


class GuestyTokenBudgetExceeded(GuestyError, UpstreamTransient):
    """We already asked Guesty for DAILY_TOKEN_BUDGET tokens in 24 h; another request would be refused."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class GuestyNotFound(GuestyError, UpstreamPermanent):
    """404: no such reservation/listing/guest (or it was deleted)."""


class GuestyBadRequest(GuestyError, UpstreamPermanent):
    """Another 4xx: retrying will not help."""


class GuestyRetryable(GuestyError, UpstreamTransient):
    """429, 5xx or a transport failure; `retry_after` is Guesty's Retry-After in seconds, if any."""

    def __init__(
        self, message: str, status: int | None = None, *, retry_after: float | None = None, maybe_issued: bool = True
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after
        self.maybe_issued = maybe_issued  # for the token endpoint: could Guesty have issued a token?


# --------------------------------------------------------------------------- rate limiting


class RateLimiter:
    """Sliding-window limiter for one process: at most `n` requests in every `window` seconds, per limit."""

    def __init__(
        self,
        limits: tuple[tuple[int, float], ...] = ((15, 1.0), (120, 60.0)),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._horizon = max(window for _, window in limits)
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def delay(self) -> float:
        """Seconds to wait before the next request may go (0 when it may go now)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - self._horizon:
            self._sent.popleft()
        wait = 0.0
        for count, window in self._limits:
            recent = [t for t in self._sent if t > now - window]
            if len(recent) >= count:
                wait = max(wait, recent[-count] + window - now)
        return wait

    async def acquire(self) -> None:
        async with self._loop_lock():
            while (wait := self.delay()) > 0:
                await self._sleep(wait)
            self._sent.append(self._clock())


PROCESS_LIMITER = RateLimiter()  # shared by every client of this process (the limits are per API key)


# --------------------------------------------------------------------------- token store


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: float


class TokenStore:
    """The Guesty access token, cached in this process and shared with all others through kv_state."""

    def __init__(
        self,
        db: AsyncConnectionPool,
        *,
        daily_budget: int = DAILY_TOKEN_BUDGET,
        refresh_margin: timedelta = timedelta(minutes=10),
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._budget = daily_budget
        self._margin = refresh_margin
        self._clock = clock
        self._cached: tuple[str, datetime] | None = None
        self._lock = asyncio.Lock()

    def _usable(self, token: str | None, expires_at: datetime | None, rejected: str | None) -> bool:
        return (
            bool(token) and token != rejected and expires_at is not None and expires_at - self._margin > self._clock()
        )

    async def token(self, issue: Callable[[], Awaitable[IssuedToken]], *, rejected: str | None = None) -> str:
        """A valid token; `rejected` is one Guesty just answered 401 to, so it must not be returned again."""
        if self._cached and self._usable(*self._cached, rejected):
            return self._cached[0]
        async with self._lock:
            if self._cached and self._usable(*self._cached, rejected):
                return self._cached[0]
            async with self._db.connection() as conn:
                found = await self._read(conn)
                if found and self._usable(*found, rejected):
                    self._cached = found
                    return found[0]
                self._cached = await self._refresh(conn, issue, rejected)
                return self._cached[0]

    async def _read(self, conn: Any) -> tuple[str, datetime] | None:
        cur = await conn.execute("SELECT value, expires_at FROM kv_state WHERE key = %s", (TOKEN_KEY,))
        row = await cur.fetchone()
        if row is None or not isinstance(row[0], dict) or not row[0].get("access_token"):
            return None
        return str(row[0]["access_token"]), row[1]

    async def _refresh(
        self, conn: Any, issue: Callable[[], Awaitable[IssuedToken]], rejected: str | None
    ) -> tuple[str, datetime]:
        failure: GuestyError | None = None
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (TOKEN_LOCK_ID,))
            found = await self._read(conn)  # another process may have refreshed while we waited
            if found and self._usable(*found, rejected):
                return found
            now = self._clock()
            requests = await self._recent_requests(conn, now)
            if len(requests) >= self._budget:
                retry_at = min(requests) + BUDGET_WINDOW
                raise GuestyTokenBudgetExceeded(
                    f"Guesty token budget used up: {len(requests)} token requests in the last 24 h "
                    f"(Guesty allows {self._budget}); the next one is allowed after {retry_at.isoformat()}. "
                    "Check that every process shares this database and that GUESTY_CLIENT_ID is not used "
                    "by another application.",
                    retry_at,
                )
            try:
                issued = await issue()
            except GuestyError as exc:
                failure = exc
                if not (isinstance(exc, GuestyRetryable) and exc.maybe_issued):
                    raise  # refused or never sent: Guesty issued nothing, nothing to count
                issued = None
            requests.append(now)
            await self._put(conn, REQUESTS_KEY, {"requested_at": [r.isoformat() for r in requests]}, None)
            if issued is not None:
                expires_at = now + timedelta(seconds=issued.expires_in)
                await self._put(conn, TOKEN_KEY, {"access_token": issued.access_token}, expires_at)
                log.info("Guesty token issued", extra={"requests_24h": len(requests), "expires_at": str(expires_at)})
                return issued.access_token, expires_at
        assert failure is not None
        raise failure  # counted: the request may have produced a token we never saw

    async def _recent_requests(self, conn: Any, now: datetime) -> list[datetime]:
        cur = await conn.execute("SELECT value FROM kv_state WHERE key = %s", (REQUESTS_KEY,))
        row = await cur.fetchone()
        stamps = row[0].get("requested_at", []) if row and isinstance(row[0], dict) else []
        parsed = [datetime.fromisoformat(s) for s in stamps if isinstance(s, str)]
        return sorted(s for s in parsed if s > now - BUDGET_WINDOW)

    async def _put(self, conn: Any, key: str, value: dict[str, Any], expires_at: datetime | None) -> None:
        await conn.execute(
            """
            INSERT INTO kv_state (key, value, expires_at, updated_at) VALUES (%s, %s, %s, now())
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at,
                                            updated_at = now()
            """,
            (key, Jsonb(value), expires_at),
        )


# --------------------------------------------------------------------------- client


class GuestyClient:
    """Guesty Open API reads. Build one per process (JobContext.extras) so its token cache is reused."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        client_id: str | None,
        client_secret: str | None,
        tokens: TokenStore,
        *,
        limiter: RateLimiter | None = None,
        max_attempts: int = 4,
        backoff: float = 1.0,
        max_retry_after: float = 60.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not client_id or not client_secret:
            missing = "GUESTY_CLIENT_ID" if not client_id else "GUESTY_CLIENT_SECRET"
            raise GuestyConfigError(
                f"{missing} is not set: create an OAuth application in Guesty "
                "(Integrations > Developer tools) and set GUESTY_CLIENT_ID and "
                "GUESTY_CLIENT_SECRET"
            )
        self._http = http
        self._root = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._tokens = tokens
        self._limiter = limiter or PROCESS_LIMITER
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep

    async def get_reservation(self, reservation_id: str) -> dict[str, Any]:
        return await self._get(f"/v1/reservations/{quote(reservation_id, safe='')}")

    async def get_listing(self, listing_id: str) -> dict[str, Any]:
        return await self._get(f"/v1/listings/{quote(listing_id, safe='')}")

    async def get_guest(self, guest_id: str) -> dict[str, Any]:
        return await self._get(f"/v1/guests/{quote(guest_id, safe='')}")

    # ------------------------------------------------------------------ plumbing

    async def _issue_token(self) -> IssuedToken:
        """POST /oauth2/token (client credentials). Called only by TokenStore, under its lock."""
        url = f"{self._root}/oauth2/token"
        data = {
            "grant_type": "client_credentials",
            "scope": "open-api",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        try:
            response = await self._http.post(url, data=data, headers={"Accept": "application/json"})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise GuestyRetryable(
                f"Guesty token request could not connect ({type(exc).__name__}); check GUESTY_API_URL",
                maybe_issued=False,
            ) from exc
        except httpx.TransportError as exc:
            raise GuestyRetryable(f"Guesty token request failed ({type(exc).__name__})") from exc
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
                return IssuedToken(str(body["access_token"]), float(body.get("expires_in") or 86400))
            except (ValueError, KeyError, TypeError):
                raise GuestyError(
                    "Guesty token endpoint answered 200 without an access_token; "
                    "does GUESTY_API_URL point at https://open-api.guesty.com?",
                    status,
                ) from None
        detail = self._scrub(response.text[:ERROR_BODY_CHARS].strip())
        if status in (400, 401, 403):
            raise GuestyAuthError(
                f"Guesty refused the client credentials ({status}: {detail}); check "
                "GUESTY_CLIENT_ID and GUESTY_CLIENT_SECRET",
                status,
            )
        if status == 429:
            raise GuestyRetryable(
                f"Guesty token endpoint answered 429 (token limit reached?): {detail}",
                status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                maybe_issued=False,
            )
        raise GuestyRetryable(f"Guesty token endpoint answered {status}: {detail}", status, maybe_issued=status >= 500)

    async def _get(self, path: str) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(GuestyRetryable) & _retry_after_fits(self),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _get_once(self, path: str) -> dict[str, Any]:
        token = await self._tokens.token(self._issue_token)
        response = await self._send(path, token)
        if response.status_code == 401:  # revoked or expired early: one fresh token, one more try
            token = await self._tokens.token(self._issue_token, rejected=token)
            response = await self._send(path, token)
        return self._decode(path, response)

    async def _send(self, path: str, token: str) -> httpx.Response:
        await self._limiter.acquire()
        what = f"Guesty GET {path}"
        try:
            return await self._http.get(
                self._root + path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise GuestyRetryable(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise GuestyRetryable(f"{what}: transport error ({type(exc).__name__}); check GUESTY_API_URL") from exc

    def _decode(self, path: str, response: httpx.Response) -> dict[str, Any]:
        what = f"Guesty GET {path}"
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                raise GuestyError(f"{what} answered 200 with a body that is not JSON", status) from None
            if not isinstance(body, dict):
                raise GuestyError(f"{what} answered {type(body).__name__} where an object was expected", status)
            return body
        detail = self._scrub(response.text[:ERROR_BODY_CHARS].strip())
        message = f"{what} answered {status}: {detail}" if detail else f"{what} answered {status}"
        if status in (401, 403):
            raise GuestyAuthError(
                f"{message} (after a token refresh; check the OAuth application's permissions)", status
            )
        if status == 404:
            raise GuestyNotFound(message, status)
        if status == 429 or status >= 500:
            raise GuestyRetryable(message, status, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        raise GuestyBadRequest(message, status)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, GuestyRetryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff * 2 ** (state.attempt_number - 1))

    def _scrub(self, text: str) -> str:
        return text.replace(self._client_secret, "***") if self._client_secret else text


class _retry_after_fits(retry_base):  # lower-case like tenacity's own predicates
    """Retry only when Guesty's Retry-After is short enough to wait for inside the job."""

    def __init__(self, client: GuestyClient) -> None:
        self._client = client

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        return not (
            isinstance(exc, GuestyRetryable)
            and exc.retry_after is not None
            and exc.retry_after > self._client._max_retry_after
        )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("Guesty call failed (attempt %d), retrying: %s", state.attempt_number, exc)
