"""Test doubles for the answering layer: a chunk like bot.knowledge's, Groq response bodies, a fake LLM."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.answer.errors import LLMUnavailable
from bot.answer.llm import LLMResult, Usage
from bot.answer.types import ChatMessage

CHAT_URL = "https://api.groq.com/openai/v1/chat/completions"
MODEL = "openai/gpt-oss-120b"


@dataclass(frozen=True)
class Chunk:
    """The same fields as bot.knowledge's RetrievedChunk."""

    text: str
    source: str
    heading: str | None = None
    property_code: str | None = None
    language: str | None = "en"
    is_access: bool = False
    score: float = 0.6
    point_id: str = "p"


def completion(content: str | None, *, model: str = MODEL, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat.completion body as Groq returns it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_767_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366},
        "x_groq": {"id": "req_1"},
    }


def sse_body(deltas: Sequence[str], *, error: str | None = None) -> bytes:
    """A text/event-stream body: one chat.completion.chunk per delta, a final chunk, then [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        body = {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1_767_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return f"data: {json.dumps(body)}\n\n"

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": d}, None) for d in deltas]
    if error is not None:
        events.append(f"data: {json.dumps({'error': {'message': error, 'type': 'internal_server_error'}})}\n\n")
    events.append(chunk({}, "stop"))
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def sse_response(deltas: Sequence[str], **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse_body(deltas, **kwargs))


class FakeLLM:
    """Answers from a script and records what it was asked; raises when given an exception."""

    def __init__(self, reply: str | LLMUnavailable, model: str = "fake-model") -> None:
        self.reply = reply
        self._model = model
        self.calls: list[list[ChatMessage]] = []

    @property
    def model(self) -> str:
        return self._model

    async def complete(self, messages: Sequence[ChatMessage]) -> LLMResult:
        self.calls.append(list(messages))
        if isinstance(self.reply, LLMUnavailable):
            raise self.reply
        return LLMResult(self.reply, self._model, Usage(10, 5, 15), latency_ms=1)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:  # pragma: no cover
        yield (await self.complete(messages)).text
