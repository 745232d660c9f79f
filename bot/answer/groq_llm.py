"""Groq chat completions over the official `groq` SDK, with our shared httpx client.

Retries: the SDK retries by itself (connection errors, 408, 409, 429, 5xx; `max_retries` times) and waits
what `retry-after-ms` / `retry-after` asks when that is within (0, 60] s, else 0.5 s·2^n (max 8 s) with
jitter. We only set `max_retries`; once the SDK gives up, every failure becomes LLMUnavailable so the
caller hands off. Worst case per call: (max_retries + 1) × timeout plus those waits.

Base URL: GROQ_BASE_URL is the service root (https://api.groq.com); the SDK's routes carry the
`/openai/v1/...` prefix themselves (groq/resources/chat/completions.py posts "/openai/v1/chat/completions").
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import groq
import httpx
from groq import AsyncStream
from groq.types.chat import ChatCompletion, ChatCompletionChunk

from bot.answer.errors import LLMUnavailable, UnavailableKind
from bot.answer.llm import LLMResult, Usage
from bot.answer.sentences import sentences
from bot.answer.think import ThinkFilter, strip_think
from bot.answer.types import ChatMessage
from config.settings import Settings

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "GroqLLM", "llm_from_settings", "sdk_base_url", "sentences"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/gpt-oss-120b"
DEFAULT_BASE_URL = "https://api.groq.com"
SDK_PATH_PREFIX = "/openai/v1"
AUTO = "auto"

ReasoningFormat = Literal["hidden", "raw", "parsed"]


def sdk_base_url(url: str) -> str:
    """The root the SDK wants: a URL copied from OpenAI-style docs (…/openai/v1) would double the prefix."""
    url = (url or DEFAULT_BASE_URL).rstrip("/")
    if url.endswith(SDK_PATH_PREFIX):
        url = url[: -len(SDK_PATH_PREFIX)]
    return url


def default_reasoning_effort(model: str) -> str | None:
    """gpt-oss reasons at "medium" unless told; "low" keeps chat latency and token use down.

    Other models take other values (qwen3: "none"/"default") or none at all, so we send nothing for them.
    """
    return "low" if model.startswith("openai/gpt-oss") else None


def _unavailable(exc: Exception) -> LLMUnavailable:
    """Map an SDK or transport failure (after the SDK's retries) onto our error tree."""
    kind: UnavailableKind
    status = getattr(exc, "status_code", None)
    if isinstance(exc, groq.APITimeoutError | httpx.TimeoutException):
        kind = "timeout"
    elif isinstance(exc, groq.APIConnectionError):
        kind = "connection"
    elif isinstance(exc, groq.RateLimitError):
        kind = "rate_limit"
    elif isinstance(exc, groq.AuthenticationError | groq.PermissionDeniedError):
        kind = "auth"
    elif isinstance(exc, groq.APIStatusError):
        kind = "server" if exc.status_code >= 500 else "rejected"
    else:
        kind = "stream"
    return LLMUnavailable(kind, str(exc) or type(exc).__name__, status=status)


class GroqLLM:
    """An LLM (see bot.answer.llm) backed by Groq. Never closes the injected httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 20.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        temperature: float = 0.2,
        max_completion_tokens: int = 1024,
        reasoning_format: ReasoningFormat | None = "hidden",
        reasoning_effort: str | None = AUTO,
    ) -> None:
        """`reasoning_format=None` omits it (non-reasoning models may reject it); `reasoning_effort`
        "auto" picks per model (default_reasoning_effort), None omits it.

        max_completion_tokens also pays for hidden reasoning, so it is kept well above a 4-sentence answer.
        """
        self._model = model
        self._temperature = temperature
        self._max_completion_tokens = max_completion_tokens
        self._reasoning_format = reasoning_format
        if reasoning_effort == AUTO:
            reasoning_effort = default_reasoning_effort(model)
        self._reasoning_effort = reasoning_effort
        self._client = groq.AsyncGroq(
            api_key=api_key,
            base_url=sdk_base_url(base_url),
            http_client=http,
            max_retries=max_retries,
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
        )

    @property
    def model(self) -> str:
        return self._model

    def _create(self, messages: Sequence[ChatMessage], *, stream: bool) -> Any:
        """Start the request (a coroutine); omitted options are left out of the JSON body entirely."""
        return self._client.chat.completions.create(
            messages=list(messages),  # type: ignore[arg-type]  # our TypedDict has the SDK's shape
            model=self._model,
            temperature=self._temperature,
            max_completion_tokens=self._max_completion_tokens,
            reasoning_format=self._reasoning_format if self._reasoning_format is not None else groq.omit,
            reasoning_effort=(
                self._reasoning_effort if self._reasoning_effort is not None else groq.omit  # type: ignore[arg-type]
            ),
            stream=stream,
        )

    async def complete(self, messages: Sequence[ChatMessage]) -> LLMResult:
        """One answer, reasoning stripped. Raises LLMUnavailable once the SDK's retries are spent."""
        started = time.perf_counter()
        try:
            response: ChatCompletion = await self._create(messages, stream=False)
        except (groq.APIError, httpx.HTTPError) as exc:
            raise _unavailable(exc) from exc
        latency_ms = round((time.perf_counter() - started) * 1000)
        choice = response.choices[0] if response.choices else None
        content = (choice.message.content or "") if choice else ""
        usage = None
        if (counts := response.usage) is not None:
            usage = Usage(counts.prompt_tokens, counts.completion_tokens, counts.total_tokens)
        log.debug("groq answer model=%s latency_ms=%d usage=%s", response.model, latency_ms, usage)
        return LLMResult(
            text=strip_think(content),
            model=response.model or self._model,
            usage=usage,
            latency_ms=latency_ms,
            finish_reason=choice.finish_reason if choice else None,
        )

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        """Content deltas as they arrive, reasoning stripped even when a tag is split across deltas.

        Retries cover only opening the stream; a break mid-stream raises LLMUnavailable("stream"/"timeout").
        """
        try:
            response: AsyncStream[ChatCompletionChunk] = await self._create(messages, stream=True)
        except (groq.APIError, httpx.HTTPError) as exc:
            raise _unavailable(exc) from exc
        think = ThinkFilter()
        try:
            async with response:
                async for chunk in response:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta.content
                    if delta and (text := think.feed(delta)):
                        yield text
        except (groq.APIError, httpx.HTTPError) as exc:
            raise _unavailable(exc) from exc
        if tail := think.flush():
            yield tail


def llm_from_settings(settings: Settings, http: httpx.AsyncClient, **options: Any) -> GroqLLM | None:
    """A GroqLLM when GROQ_API_KEY is set, else None (the caller then answers offline)."""
    api_key = settings.secret("groq_api_key")
    if not api_key:
        return None
    return GroqLLM(
        http,
        api_key=api_key,
        base_url=settings.groq_base_url or DEFAULT_BASE_URL,
        model=settings.groq_model,
        timeout_s=settings.groq_timeout_s,
        **options,
    )
