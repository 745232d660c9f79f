"""Azure Speech over REST: fast transcription (speech to text) and the TTS endpoint.

REST rather than the SDK (see externals.md §3.4): voice notes are files, fast transcription takes
OGG/Opus and MP3 as they are, and httpx keeps it async and testable with respx.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from speech.audio import DEFAULT_MAX_SECONDS, join_segments, prepare_for_azure
from speech.errors import (
    SpeechAuthError,
    SpeechRequestError,
    SpeechUnavailable,
    UnintelligibleAudio,
)
from speech.text import MAX_CHUNK_CHARS, build_ssml, chunk_text
from speech.types import AudioFormat, Sleep, Transcript
from speech.voices import DEFAULT_AZURE_VOICES, VoiceMap, normalize_locale, voice_locale

DEFAULT_API_VERSION = "2025-10-15"
OUTPUT_FORMATS: dict[str, str] = {
    "ogg": "ogg-48khz-16bit-mono-opus",
    "mp3": "audio-24khz-48kbitrate-mono-mp3",
    "wav": "riff-24khz-16bit-mono-pcm",
}
USER_AGENT = "chatwoot-str-sidecar-speech/0.1"
MIN_SPEECH_MS = 300  # shorter than this holds no words; do not pay for a request
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def speech_roots(*, region: str = "", endpoint: str = "") -> tuple[str, str]:
    """(speech-to-text root, text-to-speech root): the custom endpoint for both, else the regional hosts."""
    if endpoint:
        root = endpoint.rstrip("/")
        return root, root
    if not region:
        raise ValueError("AZURE_SPEECH_REGION: set a region (e.g. westeurope) or AZURE_SPEECH_ENDPOINT")
    region = region.strip().lower()
    return f"https://{region}.api.cognitive.microsoft.com", f"https://{region}.tts.speech.microsoft.com"


def ssml_lang(voice: str, locale: str | None) -> str:
    """xml:lang for the SSML: a single-language voice keeps its own locale; a multilingual voice gets
    the requested locale (when it names a region), so it reads the text in that language."""
    own = voice_locale(voice)
    requested = normalize_locale(locale) if locale else ""
    if own and "multilingual" not in voice.lower():
        return own
    return requested if "-" in requested else (own or "en-US")


class AzureSpeech:
    """Transcribe voice notes and synthesize replies with Azure Speech."""

    name = "azure"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        key: str,
        region: str = "",
        endpoint: str = "",
        api_version: str = DEFAULT_API_VERSION,
        voices: VoiceMap = DEFAULT_AZURE_VOICES,
        max_attempts: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        retry_after_cap_s: float = 10.0,
        timeout_s: float = 60.0,
        min_confidence: float = 0.3,
        max_chunk_chars: int = MAX_CHUNK_CHARS,
        sleep: Sleep = asyncio.sleep,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        if not key:
            raise ValueError("AZURE_SPEECH_KEY: the Azure backend needs a key")
        self._http = http
        self._key = key
        self.stt_root, self.tts_root = speech_roots(region=region, endpoint=endpoint)
        self.api_version = api_version
        self.voices = voices
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._retry_after_cap_s = retry_after_cap_s
        self._timeout_s = timeout_s
        self._min_confidence = min_confidence
        self._max_chunk_chars = max_chunk_chars
        self._sleep = sleep
        self._max_seconds = max_seconds  # longer voice notes raise AudioTooLong before being decoded whole

    def voice_for(self, locale: str | None) -> str:
        """The voice `synthesize` uses for `locale` when none is given."""
        return self.voices.voice_for(locale)

    async def transcribe(
        self, audio: bytes, filename: str, content_type: str | None, locales: Sequence[str] = ()
    ) -> Transcript:
        """Fast transcription of one file.

        One locale fixes the language, several ask Azure to identify it among them, none uses its
        multilingual model. Raises UnintelligibleAudio for silence or unrecognisable speech.
        """
        prepared = await prepare_for_azure(audio, filename, content_type, max_seconds=self._max_seconds)
        if prepared.info.duration_ms < MIN_SPEECH_MS:
            raise UnintelligibleAudio(
                "the voice note is too short to hold speech", duration_ms=prepared.info.duration_ms
            )
        definition: dict[str, Any] = {"profanityFilterMode": "None"}
        wanted = [normalize_locale(loc) for loc in locales if loc]
        if wanted:
            definition["locales"] = wanted
        response = await self._send(
            "POST",
            f"{self.stt_root}/speechtotext/transcriptions:transcribe",
            params={"api-version": self.api_version},
            headers={"Ocp-Apim-Subscription-Key": self._key, "Accept": "application/json"},
            files={"audio": (prepared.filename, prepared.data, prepared.content_type)},
            data={"definition": json.dumps(definition)},
        )
        try:
            body = response.json()
        except ValueError:
            raise SpeechUnavailable(
                "Azure fast transcription returned a body that is not JSON", status=response.status_code
            ) from None
        return self._transcript(body, wanted, prepared.info.duration_ms)

    def _transcript(self, body: dict[str, Any], locales: list[str], probed_ms: int) -> Transcript:
        combined = body.get("combinedPhrases") or []
        text = " ".join(str(p.get("text") or "").strip() for p in combined).strip()
        phrases = [p for p in body.get("phrases") or [] if isinstance(p, dict)]
        duration_ms = body.get("durationMilliseconds")
        duration = int(duration_ms) if isinstance(duration_ms, int | float) else probed_ms
        confidence = _weighted_confidence(phrases)
        if not text:
            raise UnintelligibleAudio(duration_ms=duration, confidence=confidence)
        if confidence is not None and confidence < self._min_confidence:
            raise UnintelligibleAudio(
                f"recognition confidence {confidence:.2f} is too low", duration_ms=duration, confidence=confidence
            )
        return Transcript(
            text=text,
            language=_main_locale(phrases) or (locales[0] if len(locales) == 1 else None),
            duration_ms=duration,
            confidence=confidence,
        )

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None, fmt: AudioFormat = "ogg") -> bytes:
        """Speak `text`; long text goes in sentence chunks (one request each) joined into one file."""
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"unsupported output format {fmt!r}")
        chunks = chunk_text(text, self._max_chunk_chars)
        if not chunks:
            raise ValueError("nothing to synthesize: the text is empty")
        voice = voice or self.voice_for(locale)
        lang = ssml_lang(voice, locale)
        parts = [await self._synthesize_chunk(chunk, voice, lang, fmt) for chunk in chunks]
        return parts[0] if len(parts) == 1 else await join_segments(parts, fmt)

    async def _synthesize_chunk(self, text: str, voice: str, lang: str, fmt: AudioFormat) -> bytes:
        response = await self._send(
            "POST",
            f"{self.tts_root}/cognitiveservices/v1",
            headers={
                "Ocp-Apim-Subscription-Key": self._key,
                "Content-Type": "application/ssml+xml",
                "X-Microsoft-OutputFormat": OUTPUT_FORMATS[fmt],
                "User-Agent": USER_AGENT,
            },
            content=build_ssml(text, voice=voice, lang=lang).encode("utf-8"),
        )
        if not response.content:
            raise SpeechUnavailable("Azure text to speech returned no audio", status=response.status_code)
        return response.content

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call with bounded retries on 429 (honouring Retry-After, capped), 5xx and transport errors."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(SpeechUnavailable),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(method, url, **kwargs)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, SpeechUnavailable) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self._retry_after_cap_s)
        return float(min(self._backoff_base_s * 2 ** (state.attempt_number - 1), self._backoff_max_s))

    async def _send_once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, timeout=self._timeout_s, **kwargs)
        except httpx.TransportError as exc:
            raise SpeechUnavailable(f"Azure Speech unreachable: {type(exc).__name__}") from exc
        status = response.status_code
        if status < 300:
            return response
        detail = _error_detail(response)
        if status in (401, 403):
            raise SpeechAuthError(
                f"Azure Speech refused the key ({status}): check AZURE_SPEECH_KEY and that "
                f"AZURE_SPEECH_REGION/AZURE_SPEECH_ENDPOINT match the resource. {detail}".strip(),
                status=status,
            )
        if status in RETRY_STATUSES or status >= 500:
            raise SpeechUnavailable(
                f"Azure Speech answered {status}. {detail}".strip(), status=status, retry_after=_retry_after(response)
            )
        raise SpeechRequestError(f"Azure Speech rejected the request ({status}). {detail}".strip(), status=status)


def _weighted_confidence(phrases: list[dict[str, Any]]) -> float | None:
    """Mean phrase confidence weighted by phrase duration (plain mean when durations are missing)."""
    pairs = [
        (float(p["confidence"]), float(p.get("durationMilliseconds") or 0))
        for p in phrases
        if isinstance(p.get("confidence"), int | float)
    ]
    if not pairs:
        return None
    total = sum(d for _, d in pairs)
    if total <= 0:
        return sum(c for c, _ in pairs) / len(pairs)
    return sum(c * d for c, d in pairs) / total


def _main_locale(phrases: list[dict[str, Any]]) -> str | None:
    """The locale spoken longest (Azure identifies one per phrase)."""
    spoken: defaultdict[str, float] = defaultdict(float)
    for phrase in phrases:
        if phrase.get("locale"):
            spoken[str(phrase["locale"])] += float(phrase.get("durationMilliseconds") or 1)
    return max(spoken, key=lambda loc: spoken[loc]) if spoken else None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from Retry-After (seconds or HTTP date) or retry-after-ms."""
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _error_detail(response: httpx.Response) -> str:
    """Azure's error message, short; never the request (which may hold the guest's audio)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error.get(k)) for k in ("code", "message") if error.get(k)]
            return ": ".join(parts)[:300]
    return str(body)[:200]
