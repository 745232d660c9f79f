"""Small value types shared by the speech backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

AudioFormat = Literal["ogg", "mp3", "wav"]
"""Output containers we synthesize: OGG/Opus (voice notes), MP3 (widest support), WAV (PCM)."""

Sleep = Callable[[float], Awaitable[Any]]
"""asyncio.sleep, or a recorder in tests (so no test waits on the clock)."""

CONTENT_TYPES: dict[str, str] = {"ogg": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
EXTENSIONS: dict[str, str] = {"ogg": ".ogg", "mp3": ".mp3", "wav": ".wav"}


@dataclass(frozen=True)
class Transcript:
    """What a backend heard.

    `language` is the locale or language the backend reports (e.g. "pt-PT", "en"), `duration_ms` the
    length of the audio, `confidence` 0..1 when the backend gives one.
    """

    text: str
    language: str | None
    duration_ms: int | None
    confidence: float | None


def synthesized_filename(stem: str, fmt: AudioFormat) -> str:
    """A filename for an attachment we upload, e.g. ('reply', 'ogg') -> 'reply.ogg'."""
    return f"{stem}{EXTENSIONS[fmt]}"
