"""The answering layer's error tree: what callers catch and what each means for the guest.

    AnswerError                 anything this package raises on purpose
    └── LLMUnavailable          the model could not give an answer (after the SDK's own retries):
                                rate limit, 5xx, timeout, connection, bad key, rejected request.
                                The caller hands the conversation off with a note saying the AI is
                                unavailable.

`kind` says which of those it was, `hint` tells the operator what to check, so the private note can
name the fix (e.g. "check GROQ_API_KEY") instead of a stack trace.
"""

from __future__ import annotations

from typing import Literal

from bot.errors import SidecarError, UpstreamTransient

UnavailableKind = Literal["rate_limit", "server", "timeout", "connection", "auth", "rejected", "stream"]

HINTS: dict[str, str] = {
    "rate_limit": "Groq rate limit reached; it clears by itself, or raise the plan's limits",
    "server": "Groq answered with a server error; it is usually temporary",
    "timeout": "Groq did not answer in time (GROQ_TIMEOUT_S)",
    "connection": "Groq could not be reached; check GROQ_BASE_URL and the network",
    "auth": "Groq refused the key; check GROQ_API_KEY",
    "rejected": "Groq rejected the request; check GROQ_MODEL (the model may be decommissioned)",
    "stream": "the Groq stream broke off",
}


class AnswerError(SidecarError):
    """Base class for failures in bot.answer."""


class LLMUnavailable(AnswerError, UpstreamTransient):
    """The language model gave no usable answer; hand the conversation to a person."""

    def __init__(self, kind: UnavailableKind, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind: UnavailableKind = kind
        self.status = status
        self.hint = HINTS[kind]
