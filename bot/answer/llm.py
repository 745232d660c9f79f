"""The model interface the pipeline depends on, so it can run with Groq, a fake, or no model at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.answer.types import ChatMessage


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the provider (reasoning tokens are part of completion_tokens)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class LLMResult:
    """One completed answer, reasoning already removed."""

    text: str
    model: str
    usage: Usage | None
    latency_ms: int
    finish_reason: str | None = None


class LLM(Protocol):
    """A chat model. Implementations raise bot.answer.errors.LLMUnavailable when they cannot answer."""

    @property
    def model(self) -> str: ...

    async def complete(self, messages: Sequence[ChatMessage]) -> LLMResult: ...


class StreamingLLM(LLM, Protocol):
    """A chat model that can also hand out its answer as text deltas (voice replies)."""

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]: ...
