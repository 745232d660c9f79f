"""Remove model reasoning (`<think>…</think>`) from answers, whole or streamed.

We ask Groq for reasoning_format="hidden", but a model or proxy that ignores it puts its reasoning inline.
Reasoning must never reach a guest, so this is a safety net on every answer.
"""

from __future__ import annotations

import re

OPEN = "<think>"
CLOSE = "</think>"
_SPAN = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)


def strip_think(text: str) -> str:
    """Return `text` without reasoning spans.

    Handles closed spans anywhere, an unclosed `<think>` (the answer was cut off while reasoning: drop
    to the end) and an orphan `</think>` (the opening tag lived in the chat template: drop everything
    before it).
    """
    text = _SPAN.sub("", text)
    lower = text.lower()
    close = lower.rfind(CLOSE)
    if close != -1:
        text = text[close + len(CLOSE) :]
        lower = text.lower()
    opening = lower.find(OPEN)
    if opening != -1:
        text = text[:opening]
    return text.strip()


def _held_suffix(buffer: str, tags: tuple[str, ...]) -> int:
    """Length of the longest end of `buffer` that could be the start of one of `tags`."""
    lower = buffer.lower()
    longest = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(lower)), 0, -1):
            if lower.endswith(tag[:size]):
                longest = max(longest, size)
                break
    return longest


class ThinkFilter:
    """Incremental strip_think for streamed deltas: a tag may be split across chunks.

    Text that might be the beginning of a tag is held back until the next delta decides it.
    Leading whitespace of the answer is dropped. An orphan `</think>` is removed, but text already
    passed on before it cannot be recalled (with reasoning_format="hidden" this does not happen).
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._inside = False
        self._started = False

    def feed(self, delta: str) -> str:
        """Take one delta, return the answer text that is now certain."""
        self._buffer += delta
        out: list[str] = []
        while self._buffer:
            lower = self._buffer.lower()
            if self._inside:
                end = lower.find(CLOSE)
                if end == -1:
                    keep = _held_suffix(self._buffer, (CLOSE,))
                    self._buffer = self._buffer[len(self._buffer) - keep :] if keep else ""
                    break
                self._buffer = self._buffer[end + len(CLOSE) :]
                self._inside = False
                continue
            starts = [(i, tag) for tag in (OPEN, CLOSE) if (i := lower.find(tag)) != -1]
            if not starts:
                keep = _held_suffix(self._buffer, (OPEN, CLOSE))
                cut = len(self._buffer) - keep
                out.append(self._buffer[:cut])
                self._buffer = self._buffer[cut:]
                break
            index, tag = min(starts)
            out.append(self._buffer[:index])
            self._buffer = self._buffer[index + len(tag) :]
            self._inside = tag == OPEN
        return self._emit("".join(out))

    def flush(self) -> str:
        """End of stream: release held text unless we are inside an unclosed reasoning span."""
        rest = "" if self._inside else self._buffer
        self._buffer = ""
        return self._emit(rest)

    def _emit(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text
