"""Async client for the few Aircall Public API reads the mirror needs.

Used to get a fresh media URL (Aircall's direct mp3 links expire within the hour, so we never store
them and ask again just before downloading), to read a call an AI event refers to, and to read AI
transcripts and summaries when their webhook carried only ids. Basic auth with AIRCALL_API_ID and
AIRCALL_API_TOKEN; the company-wide rate limit (60-120 requests/min) answers 429 with Retry-After,
which is honoured. Facts: /work/shared/reference/externals.md §1.5-1.6.

Errors (what a caller catches):

    AircallError (status: int | None)
    ├── AircallConfigError   API id or token missing; raised before any request
    ├── AircallAuthError     401/403: wrong API id/token, or a plan without that API
    ├── AircallNotFound      404 (also: no transcript or summary for this call)
    └── AircallRetryable     429, 5xx, timeouts and transport errors (after our own retries)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from bot.errors import ConfigurationError, UpstreamError, UpstreamPermanent, UpstreamTransient
from integrations.aircall.models import AircallCall, AircallSummary, AircallTranscription
from integrations.chatwoot.client import parse_retry_after

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
ERROR_BODY_CHARS = 300


class AircallError(UpstreamError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AircallConfigError(AircallError, ConfigurationError):
    """AIRCALL_API_ID / AIRCALL_API_TOKEN missing."""


class AircallAuthError(AircallError, UpstreamPermanent):
    """401/403."""


class AircallNotFound(AircallError, UpstreamPermanent):
    """404."""


class AircallRetryable(AircallError, UpstreamTransient):
    """429, 5xx or transport failure; `retry_after` is the wait Aircall asked for, if any."""

    def __init__(self, message: str, status: int | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class AircallClient:
    """Aircall Public API for one company. Cheap to build; share the injected httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_id: str | None,
        api_token: str | None,
        *,
        max_attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not api_id or not api_token:
            raise AircallConfigError(
                "AIRCALL_API_ID and AIRCALL_API_TOKEN must both be set (Aircall Dashboard "
                "→ Integrations & API → API keys) to read calls from Aircall"
            )
        self._http = http
        self._root = f"{(base_url or 'https://api.aircall.io').rstrip('/')}/v1"
        self._auth = httpx.BasicAuth(api_id, api_token)
        self._secrets = (api_id, api_token)
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep

    async def get_call(self, call_id: int) -> AircallCall:
        """The call as it stands now, with fresh (short-lived) recording/voicemail URLs."""
        body = await self._get(f"/calls/{call_id}")
        call = body.get("call") if isinstance(body, dict) else None
        if not isinstance(call, dict):
            raise AircallError(f"Aircall GET /calls/{call_id} answered without a 'call' object")
        return AircallCall.model_validate(call)

    async def fresh_media_url(self, call_id: int, kind: Literal["recording", "voicemail"]) -> str | None:
        """A download URL for the call's recording or voicemail, valid for about an hour; None if absent."""
        call = await self.get_call(call_id)
        return call.voicemail if kind == "voicemail" else call.recording

    async def get_transcription(self, call_id: int) -> AircallTranscription | None:
        """The AI transcript of a call, or None when Aircall has none (404)."""
        try:
            body = await self._get(f"/calls/{call_id}/transcription")
        except AircallNotFound:
            return None
        data = body.get("transcription") if isinstance(body, dict) else None
        return AircallTranscription.model_validate(data) if isinstance(data, dict) else None

    async def get_summary(self, call_id: int) -> AircallSummary | None:
        """The AI summary of a call, or None when Aircall has none (404)."""
        try:
            body = await self._get(f"/calls/{call_id}/summary")
        except AircallNotFound:
            return None
        data = body.get("summary") if isinstance(body, dict) else None
        return AircallSummary.model_validate(data) if isinstance(data, dict) else None

    # ------------------------------------------------------------------ plumbing

    async def _get(self, path: str) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(AircallRetryable),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _get_once(self, path: str) -> Any:
        what = f"Aircall GET {path}"
        try:
            response = await self._http.get(self._root + path, auth=self._auth, headers={"Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise AircallRetryable(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise AircallRetryable(f"{what}: transport error ({type(exc).__name__}); check AIRCALL_API_URL") from exc
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                raise AircallError(f"{what} answered {status} with a body that is not JSON", status) from None
        detail = self._scrub(response.text[:ERROR_BODY_CHARS].strip())
        message = f"{what} answered {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            raise AircallAuthError(
                f"{message} (check AIRCALL_API_ID and AIRCALL_API_TOKEN, and that the plan includes this API)", status
            )
        if status == 404:
            raise AircallNotFound(message, status)
        if status == 429 or status >= 500:
            raise AircallRetryable(message, status, retry_after=_retry_after(response))
        raise AircallError(message, status)

    def _wait(self, state: RetryCallState) -> float:
        """Aircall's Retry-After (capped) when given, else exponential backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, AircallRetryable) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_retry_after)
        return float(min(self._backoff * 2 ** (state.attempt_number - 1), self._max_backoff))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After, else the rate-limit reset time (X-AircallApi-Reset, UNIX seconds)."""
    wait = parse_retry_after(response.headers.get("Retry-After"))
    if wait is not None:
        return wait
    reset = response.headers.get("X-AircallApi-Reset")
    if reset and reset.strip().isdigit():
        return max(int(reset) - time.time(), 0.0)
    return None


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("Aircall call failed (attempt %d), retrying: %s", state.attempt_number, exc)
