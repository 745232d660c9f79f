"""The spoken reply to a voice note: what of the answer is said aloud, in which voice and format, and how
it is synthesized (sentence by sentence while a streamed answer is still being written), joined and posted.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

from bot.agent.voice_store import Heard
from bot.answer.llm import LLMResult
from bot.answer.offline import OFFLINE_PREFIX
from bot.answer.pipeline import parse_llm_answer
from bot.answer.sentences import sentences, split_sentences
from bot.answer.types import ChatMessage, Handoff
from bot.context import JobContext
from bot.core.replies import post_once
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.models import MessageEvent
from integrations.chatwoot.readback import reply_finder
from speech import CONTENT_TYPES, AudioFormat, AudioFormatError, SpeechBackend, synthesized_filename
from speech.audio import duration_ms, encode_pcm_stream, join_segments, wav_to_pcm
from speech.voices import language_of, voice_locale

WHATSAPP = "Channel::Whatsapp"
MAX_PARALLEL_SYNTHESIS = 8  # TTS requests at once per reply (Azure S0 allows 200 per second)

_CITATION = re.compile(r"[ \t]*\[\d{1,2}(?:\s*[,–-]\s*\d{1,2})*\]")
_CLAUSE_BREAK = re.compile(r"[,;:]\s")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]»]*$")
LONG_SENTENCE = 90  # characters: longer sentences are synthesized in two pieces
SENTENCE_PAUSE_MS = 150
_MARKUP = re.compile(r"\*\*|__|`|^\s*(?:#+|[-*•]|\d+[.)])\s+", re.MULTILINE)


def speakable(text: str) -> str:
    """What a reply sounds like: no offline banner, no source list, citations or markdown."""
    lines = [
        line
        for line in text.splitlines()
        if line.strip() and line.strip() != OFFLINE_PREFIX and not line.startswith("Sources:")
    ]
    return " ".join(_MARKUP.sub("", _CITATION.sub("", "\n".join(lines))).split())


def pieces(sentence: str) -> list[str]:
    """A long sentence is spoken in two requests, cut at the clause break nearest its middle: the reply's
    audio is ready when its slowest request is, and synthesis time grows with length."""
    if len(sentence) <= LONG_SENTENCE:
        return [sentence]
    breaks = [m.end() for m in _CLAUSE_BREAK.finditer(sentence) if 25 <= m.end() <= len(sentence) - 25]
    if not breaks:
        return [sentence]
    cut = min(breaks, key=lambda at: abs(at - len(sentence) / 2))
    return [sentence[:cut].strip(), sentence[cut:].strip()]


def segments(text: str) -> list[str]:
    """What is synthesized of a reply, in order: its sentences (long ones in two pieces), made speakable."""
    kept = "\n".join(line for line in text.splitlines() if speakable(line))
    return [piece for sentence in split_sentences(kept) if (spoken := speakable(sentence)) for piece in pieces(spoken)]


def reply_format(msg: MessageEvent) -> AudioFormat:
    """OGG/Opus, which WhatsApp plays as a voice message; MP3, which every other channel plays."""
    return "ogg" if msg.conversation.channel == WHATSAPP else "mp3"


def reply_voice(policy: InboxPolicy, locale: str) -> str | None:
    """The inbox's voice when it speaks the reply's language (or any: multilingual), else the default."""
    if not policy.voice:
        return None
    if "multilingual" in policy.voice.lower():
        return policy.voice
    return policy.voice if language_of(voice_locale(policy.voice) or policy.voice) == language_of(locale) else None


def make_speaker(backend: SpeechBackend, msg: MessageEvent, policy: InboxPolicy, heard: Heard) -> Speaker:
    """A speaker for the reply to `msg`: in the guest's language, the inbox's voice, the channel's format."""
    locale = heard.language or policy.language
    return Speaker(backend, locale=locale, voice=reply_voice(policy, locale), fmt=reply_format(msg))


class _NotPcm(Exception):
    """A piece is not mono 16-bit PCM WAV at the first piece's rate (e.g. cached by another setup)."""


class Speaker:
    """Synthesizes sentences as soon as they are known, several at once, and joins them into one reply."""

    def __init__(
        self,
        backend: SpeechBackend,
        *,
        locale: str,
        voice: str | None,
        fmt: AudioFormat,
        parallel: int = MAX_PARALLEL_SYNTHESIS,
    ) -> None:
        self.backend = backend
        self.locale = locale
        self.voice = voice
        self.fmt = fmt
        self._slots = asyncio.Semaphore(parallel)
        self._tasks: dict[str, asyncio.Task[bytes]] = {}
        self._stopped = False
        self.started_at: float | None = None
        self.first_audio_at: float | None = None
        self.synthesized_at: float | None = None  # every piece is in; joining and encoding follow

    def say(self, sentence: str) -> None:
        """Start synthesizing a sentence of the reply (a HANDOFF line stops the speaker instead)."""
        if self._stopped:
            return
        if isinstance(parse_llm_answer(sentence), Handoff):
            self._stopped = True  # the answer turns into a handoff: speak nothing more of it
            return
        for piece in pieces(speakable(sentence)) if speakable(sentence) else []:
            self._start(piece, "wav")

    def _start(self, text: str, fmt: AudioFormat) -> None:
        if text not in self._tasks:
            self._tasks[text] = asyncio.create_task(self._synthesize(text, fmt))

    async def _synthesize(self, text: str, fmt: AudioFormat) -> bytes:
        async with self._slots:
            if self.started_at is None:
                self.started_at = time.perf_counter()
            audio = await self.backend.synthesize(text, locale=self.locale, voice=self.voice, fmt=fmt)
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        return audio

    async def finish(self, text: str) -> tuple[bytes, list[str]]:
        """The final reply's audio and its pieces; pieces the stream already started are reused.

        Pieces are synthesized as WAV and encoded once when joined; a reply of one piece that was not
        started yet is asked for in the final format directly.
        """
        parts = segments(text)
        if not parts:
            raise ValueError("the reply has nothing to say aloud")
        self._stopped = False
        direct = len(parts) == 1 and parts[0] not in self._tasks
        for part in parts:
            self._start(part, self.fmt if direct else "wav")
        try:
            audio = await self._tasks[parts[0]] if direct else await self._join(parts)
        except BaseException:
            await self.discard()
            raise
        self.synthesized_at = self.synthesized_at or time.perf_counter()
        await self.discard(keep=parts)  # what the stream started but the final text dropped
        return audio, parts

    async def _join(self, parts: list[str]) -> bytes:
        """The pieces' PCM fed to one encoder in order as they arrive, with a pause after each sentence (none
        inside one); pieces that are not PCM WAV go through speech.audio.join_segments instead."""
        first = wav_to_pcm(await self._tasks[parts[0]])
        if first is not None:
            try:
                return await encode_pcm_stream(self._pcm(parts, first[0]), sample_rate=first[0], fmt=self.fmt)
            except _NotPcm:
                pass
        audio = [await self._tasks[part] for part in parts]
        self.synthesized_at = time.perf_counter()
        return await join_segments(audio, self.fmt)

    async def _pcm(self, parts: list[str], rate: int) -> AsyncIterator[bytes]:
        for n, part in enumerate(parts):
            found = wav_to_pcm(await self._tasks[part])
            if found is None or found[0] != rate:
                raise _NotPcm(part)
            yield found[1]
            if n < len(parts) - 1 and _SENTENCE_END.search(part):
                yield bytes(2 * rate * SENTENCE_PAUSE_MS // 1000)
        self.synthesized_at = time.perf_counter()

    async def discard(self, keep: Collection[str] = ()) -> None:
        """Cancel (and reap) synthesis that is no longer wanted."""
        self._stopped = True
        dropped = [task for text, task in self._tasks.items() if text not in keep]
        for task in dropped:
            task.cancel()
        await asyncio.gather(*dropped, return_exceptions=True)


class SpeakingLLM:
    """The configured model, streamed: each finished sentence goes to `on_sentence` (the speaker) while
    the answer is still being generated; answer_question gets the whole text and checks it as usual."""

    def __init__(self, model: Any, on_sentence: Callable[[str], None]) -> None:
        self._model = model
        self._on_sentence = on_sentence
        self.first_token_ms: int | None = None

    @property
    def model(self) -> str:
        return str(self._model.model)

    async def complete(self, messages: Sequence[ChatMessage]) -> LLMResult:
        started = time.perf_counter()
        parts: list[str] = []

        async def deltas() -> AsyncIterator[str]:
            async for delta in self._model.stream(messages):
                if self.first_token_ms is None:
                    self.first_token_ms = _since(started)
                parts.append(delta)
                yield delta

        async for sentence in sentences(deltas()):  # LLMUnavailable passes to answer_question: a handoff
            self._on_sentence(sentence)
        return LLMResult(
            text="".join(parts), model=self.model, usage=None, latency_ms=_since(started), finish_reason="stop"
        )


async def post_audio(
    ctx: JobContext,
    cw: ChatwootClient,
    msg: MessageEvent,
    speaker: Speaker,
    text: str,
    started: float,
    timings: dict[str, Any],
) -> None:
    """Post the spoken reply (`audio:<id>`) once: a voice message on WhatsApp, an MP3 file elsewhere."""
    conv = msg.conversation_id
    if not segments(text):
        timings["audio_error"] = "nothing in the reply to say aloud"
        return
    ready_from = time.perf_counter()
    audio, parts = await speaker.finish(text)
    ready = time.perf_counter()
    fmt = speaker.fmt
    filename = synthesized_filename(f"reply-{msg.id}", fmt)
    key = f"audio:{msg.id}"
    await post_once(
        ctx.db,
        key,
        conversation_id=conv,
        kind="audio",
        content=" ".join(parts),
        post=lambda: cw.post_attachment(
            conv, None, [(filename, audio, CONTENT_TYPES[fmt])], is_voice_message=fmt == "ogg", marker=key
        ),
        # By its marker only: the audio message has no text, and the text reply says the same words.
        find=reply_finder(cw, key, conv, private=False, by_text=False),
        settle_s=ctx.settings.reply_settle_s,
    )
    first = speaker.started_at or ready_from
    timings.update(
        audio_reply_ms=_since(started),
        synthesis_first_byte_ms=round(((speaker.first_audio_at or ready) - first) * 1000),
        synthesis_ms=round((ready - first) * 1000),
        join_ms=round((ready - (speaker.synthesized_at or ready)) * 1000),
        synthesis_lag_ms=round((ready - ready_from) * 1000),  # how long the audio trailed the text reply
        synthesized_chars=sum(len(p) for p in parts),
        audio_segments=len(parts),
        audio_format=fmt,
    )
    try:
        timings["output_audio_ms"] = await duration_ms(audio)
    except AudioFormatError:
        timings["output_audio_ms"] = None


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
