"""The speech backend interface and the factory that picks one from settings.

Optional settings read here when the Settings model has them (defaults otherwise):
`azure_speech_api_version` (default 2025-10-15), `speech_cpu_threads` (2), `whisper_model_path`
(the packaged tiny.en model), `speech_voices` (a mapping or "locale=voice,locale=voice" string),
`voice_max_seconds` (600: longer audio raises AudioTooLong instead of being transcribed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import httpx

from speech.audio import DEFAULT_MAX_SECONDS
from speech.azure import DEFAULT_API_VERSION, AzureSpeech
from speech.cache import AudioCache, CachedSpeech
from speech.local import LocalSpeech
from speech.types import AudioFormat, Transcript
from speech.voices import DEFAULT_AZURE_VOICES, DEFAULT_ESPEAK_VOICES


@runtime_checkable
class SpeechBackend(Protocol):
    """What the bot pipeline needs from speech: hear a voice note, speak a reply."""

    name: str

    def voice_for(self, locale: str | None) -> str:
        """The voice used for `locale` when `synthesize` gets none."""
        ...

    async def transcribe(
        self, audio: bytes, filename: str, content_type: str | None, locales: Sequence[str] = ()
    ) -> Transcript:
        """Text of the voice note; raises UnintelligibleAudio, AudioFormatError or a service error."""
        ...

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None, fmt: AudioFormat = "ogg") -> bytes:
        """Audio bytes in `fmt` speaking `text`."""
        ...


def parse_voices(value: Mapping[str, str] | str | None) -> dict[str, str]:
    """'pt-PT=pt-PT-DuarteNeural, en=en-GB-RyanNeural' (or a mapping) -> {locale: voice}."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    pairs = {}
    for item in value.split(","):
        locale, sep, voice = item.partition("=")
        if not sep or not locale.strip() or not voice.strip():
            raise ValueError(f"SPEECH_VOICES: {item.strip()!r} is not locale=voice")
        pairs[locale.strip()] = voice.strip()
    return pairs


def open_speech(
    settings: Any, http: httpx.AsyncClient, *, voices: Mapping[str, str] | None = None, cache: AudioCache | None = None
) -> SpeechBackend:
    """The backend `settings.speech_backend` names ("azure" or "local"), with `voices` (locale -> voice)
    overriding the defaults and synthesis cached in `cache` when one is given."""
    overrides = {**parse_voices(getattr(settings, "speech_voices", None)), **(voices or {})}
    max_seconds = float(getattr(settings, "voice_max_seconds", None) or DEFAULT_MAX_SECONDS)
    backend: SpeechBackend
    if settings.speech_backend == "azure":
        backend = AzureSpeech(
            http,
            key=settings.secret("azure_speech_key") or "",
            region=settings.azure_speech_region,
            endpoint=settings.azure_speech_endpoint,
            api_version=getattr(settings, "azure_speech_api_version", None) or DEFAULT_API_VERSION,
            voices=DEFAULT_AZURE_VOICES.with_overrides(overrides),
            max_seconds=max_seconds,
        )
    elif settings.speech_backend == "local":
        backend = LocalSpeech(
            model_path=getattr(settings, "whisper_model_path", None),
            cpu_threads=int(getattr(settings, "speech_cpu_threads", None) or 2),
            voices=DEFAULT_ESPEAK_VOICES.with_overrides(overrides),
            max_seconds=max_seconds,
        )
    else:
        raise ValueError(f"SPEECH_BACKEND: unknown backend {settings.speech_backend!r}; use 'azure' or 'local'")
    return CachedSpeech(backend, cache) if cache is not None else backend
