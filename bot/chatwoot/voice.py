"""Voice notes: hear the guest (Azure, Whisper, or Chatwoot's own transcript), show agents what was said,
answer through the text pipeline, and speak the answer back.

Order of work for one voice note, under the conversation's lock (bot.jobs):
1. the transcript: Chatwoot's own when the payload (or a stored message_updated) carries one, else
   download the attachment and transcribe it. It is saved in voice_transcripts before anything is posted,
   so a retried job or a late message_updated never pays for it twice;
2. a private note with the transcript (`transcript:<id>`), in every mode but off;
3. the answer, as the text bot gives it (retrieval, Groq or offline, the handoff rules). In autopilot the
   text reply goes first (`answer:<id>`), then the same answer as audio (`audio:<id>`): OGG/Opus voice
   message on WhatsApp, MP3 elsewhere. With Groq the answer is streamed and each finished sentence is
   synthesized (as WAV, several at once) while the rest is generated, then fed in order to one encoder;
   the audio is dropped when the final text becomes a handoff;
4. the voice note is marked handled: nothing about it is ever done again.

Audio stays in memory (the speech layer's temporary files are private and removed at once); transcripts
are personal data and `sidecar purge` removes them after VOICE_RETENTION_DAYS.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
import wave
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from bot.answer.llm import LLMResult
from bot.answer.offline import OFFLINE_PREFIX
from bot.answer.pipeline import AnswerOutcome, answer_question, parse_llm_answer
from bot.answer.sentences import sentences, split_sentences
from bot.answer.types import ChatMessage, Handoff
from bot.chatwoot import state
from bot.chatwoot.answering import (
    NO_SUGGESTION_NOTE,
    Batch,
    GuestContext,
    act,
    guest_context,
    hand_off,
    history,
    inbox_table,
    llm,
    parse_message,
    quote,
    record_qa,
    retriever,
    still_ours,
)
from bot.chatwoot.client import ChatwootClient, ChatwootError, ChatwootRetryable
from bot.chatwoot.models import MessageEvent
from bot.chatwoot.policy import classify
from bot.jobs import Defer, JobContext, PermanentError
from bot.ledger import StoredEvent
from bot.replies import post_once
from config.inboxes import InboxPolicy
from speech import (
    CONTENT_TYPES,
    AudioDownloadError,
    AudioFormat,
    AudioFormatError,
    DownloadFailed,
    DownloadPolicy,
    RedirectRefused,
    RedisAudioCache,
    SpeechAuthError,
    SpeechBackend,
    SpeechError,
    SpeechRequestError,
    SpeechUnavailable,
    UnintelligibleAudio,
    download_attachment,
    open_speech,
    synthesized_filename,
)
from speech.audio import (  # encode_stream reuses the speech layer's encoder settings; it should move there
    _ENCODERS,
    TOOL_TIMEOUT_S,
    _ffmpeg,
    create_private,
    duration_ms,
    join_segments,
    private_workdir,
)
from speech.types import EXTENSIONS
from speech.voices import language_of, voice_locale

log = logging.getLogger("sidecar.voice")

WHATSAPP = "Channel::Whatsapp"
MAX_PARALLEL_SYNTHESIS = 8  # TTS requests at once per reply (Azure S0 allows 200 per second)

TRANSCRIPT_NOTE = "🎙️ Voice note transcript ({details}):\n\n{quote}"
UNHEARD_QUESTION = "(a voice note{length} that could not be transcribed; listen to it in the conversation)"
SOURCE_NAMES = {"azure": "Azure Speech", "local": "offline Whisper", "chatwoot": "Chatwoot's transcription"}
# Why a voice note went to a person, by error: (handoff reason, note for the agents).
FAILURES: list[tuple[type[SpeechError], str, str]] = [
    (UnintelligibleAudio, "voice_unintelligible",
     "The voice note holds no speech the bot could make out ({error}). Please listen to it."),
    (SpeechAuthError, "speech_auth", "The voice note was not transcribed: {error}"),
    (SpeechUnavailable, "speech_unavailable",
     "The speech service is unavailable ({error}), so the voice note was not transcribed. Please listen to it."),
    (SpeechRequestError, "speech_rejected",
     "The speech service rejected the voice note ({error}). Please listen to it."),
    (AudioFormatError, "voice_unreadable", "The voice note's audio could not be read ({error}). Please listen to it."),
    (AudioDownloadError, "voice_download_failed",
     "The voice note could not be downloaded ({error}). Please listen to it in the conversation."),
]
PURGED_QUESTION = "[voice note transcript removed after the retention period]"


@dataclass(frozen=True)
class Heard:
    """What the guest said in a voice note, and who transcribed it."""

    text: str
    language: str | None
    duration_ms: int | None
    backend: str
    confidence: float | None = None


@dataclass(frozen=True)
class VoiceRecord:
    """A voice_transcripts row."""

    heard: Heard | None  # None when the note could not be transcribed
    handled: bool


# ------------------------------------------------------------------------------------------- entry points


async def on_voice_message(ctx: JobContext, event: StoredEvent, msg: MessageEvent, policy: InboxPolicy) -> str:
    """Handle a guest's voice note (message_created, or a message_updated carrying Chatwoot's transcript).

    The caller has already decided that the bot answers this message in this inbox.
    """
    cw = ctx.chatwoot
    if cw is None:
        raise PermanentError("Chatwoot is not configured: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_BOT_TOKEN")
    record = await load_record(ctx, msg.id)
    if record is not None and record.handled:
        return "done"
    started = time.perf_counter()
    timings: dict[str, Any] = {"input": "voice"}
    heard = record.heard if record is not None else None
    if heard is None:
        heard = chatwoot_heard(msg) or await stored_chatwoot_heard(ctx, msg)
        if heard is None:
            _wait_for_chatwoot(ctx, event)
            try:
                heard = await transcribe(ctx, msg, timings)
            except SpeechError as exc:
                if exc.transient and event.attempts < ctx.settings.job_max_attempts:
                    raise  # the job layer tries again later; the last attempt hands off
                await _give_up(ctx, cw, event, msg, policy, exc, started, timings)
                return "done"
        await save_heard(ctx, event, msg, heard)
    timings.update(transcript_source=heard.backend, input_audio_ms=heard.duration_ms)
    note = TRANSCRIPT_NOTE.format(details=_details(heard), quote=quote(heard.text))
    # The note needs no answer: post it alongside the retrieval instead of before it.
    noting = asyncio.create_task(post_once(ctx.db, f"transcript:{msg.id}", conversation_id=msg.conversation_id,
                                           kind="transcript", content=note,
                                           post=lambda: cw.post_message(msg.conversation_id, note, private=True)))
    try:
        if not await _resume(ctx, cw, event, msg, policy, heard):
            question = "\n".join(part for part in (msg.text.strip(), heard.text) if part)
            await answer_voice(ctx, cw, event, msg, policy, question, heard, started, timings, noting)
    finally:
        await noting
    await mark_handled(ctx, msg.id)
    return "done"


async def on_message_updated(ctx: JobContext, event: StoredEvent) -> str:
    """Chatwoot's own transcription arrived: answer from it unless the voice note was handled already."""
    msg = parse_message(event.payload)
    if not msg.audio_attachments or chatwoot_heard(msg) is None:
        return "ignored"
    record = await load_record(ctx, msg.id)
    if (record is not None and record.handled) or await _replied(ctx, msg.id):
        return "ignored"
    as_new = msg.model_copy(update={"event": "message_created"})
    policy = inbox_table(ctx).for_inbox(msg.inbox_id)
    if classify(as_new, policy).action != "answer":
        return "ignored"
    if policy.mode == "autopilot" and await state.human_since(ctx.db, msg.conversation_id) is not None:
        return "ignored"
    return await on_voice_message(ctx, event, as_new, policy)


def _wait_for_chatwoot(ctx: JobContext, event: StoredEvent) -> None:
    """Give Chatwoot's own transcription VOICE_TRANSCRIPT_WAIT_S to arrive (message_updated) before paying."""
    wait = ctx.settings.voice_transcript_wait_s
    if wait <= 0 or event.event_type != "message_created":
        return
    waited = (datetime.now(UTC) - event.received_at).total_seconds()
    if waited < wait:
        raise Defer(wait - waited)


# ------------------------------------------------------------------------------------------- hearing


def chatwoot_heard(msg: MessageEvent) -> Heard | None:
    """Chatwoot's transcript of every audio attachment, when it has them all."""
    texts = [(a.transcribed_text or "").strip() for a in msg.audio_attachments]
    if not texts or not all(texts):
        return None
    return Heard(" ".join(texts), None, None, "chatwoot")


async def stored_chatwoot_heard(ctx: JobContext, msg: MessageEvent) -> Heard | None:
    """Chatwoot's transcript from a message_updated we stored but have not processed yet."""
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            """
            SELECT payload FROM operational_events
             WHERE subject = %s AND source = 'chatwoot' AND event_type = 'message_updated' AND payload->>'id' = %s
             ORDER BY id DESC LIMIT 20
            """,
            (f"conversation:{msg.conversation_id}", str(msg.id)),
        )
        rows = await cur.fetchall()
    for (payload,) in rows:
        try:
            heard = chatwoot_heard(parse_message(payload))
        except PermanentError:
            continue
        if heard is not None:
            return heard
    return None


def speech_backend(ctx: JobContext) -> SpeechBackend:
    """The configured backend of this worker, its synthesis cached in Redis (shared by the replicas)."""
    if "speech" not in ctx.extras:
        cache = RedisAudioCache(ctx.redis, prefix=f"{ctx.settings.queue_name}:")
        ctx.extras["speech"] = open_speech(ctx.settings, ctx.http, cache=cache)
    backend: SpeechBackend = ctx.extras["speech"]
    return backend


def _untrusted(host: str) -> RedirectRefused:
    return RedirectRefused(f"{host} is neither CHATWOOT_URL's host nor listed in ATTACHMENT_STORAGE_HOSTS; "
                           "add it there if Chatwoot serves its files from it")


async def _refuse_untrusted(host: str, port: int) -> list[str]:
    """The downloader asks us to resolve only the hosts it does not trust: voice notes come from ours alone."""
    raise _untrusted(host)


async def transcribe(ctx: JobContext, msg: MessageEvent, timings: dict[str, Any]) -> Heard:
    """Download each audio attachment (only from Chatwoot and its storage) and transcribe it."""
    backend = speech_backend(ctx)
    policy = DownloadPolicy.from_settings(ctx.settings)
    locales = [loc.strip() for loc in ctx.settings.voice_locales.split(",") if loc.strip()]
    texts: list[str] = []
    language: str | None = None
    total_ms, confidences = 0, []
    download_ms = transcription_ms = 0.0
    for attachment in msg.audio_attachments:
        url = attachment.data_url or ""
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL:
            host = ""
        if not host:
            raise DownloadFailed("the attachment has no usable data_url", transient=False)
        if not policy.is_trusted(host):
            raise _untrusted(host)
        t0 = time.perf_counter()
        audio = await download_attachment(ctx.http, url, policy, resolver=_refuse_untrusted)
        t1 = time.perf_counter()
        transcript = await backend.transcribe(audio.data, audio.filename, audio.content_type or attachment.content_type,
                                              locales)
        download_ms += t1 - t0
        transcription_ms += time.perf_counter() - t1
        texts.append(transcript.text)
        language = language or transcript.language
        total_ms += transcript.duration_ms or 0
        if transcript.confidence is not None:
            confidences.append(transcript.confidence)
    timings.update(download_ms=round(download_ms * 1000), transcription_ms=round(transcription_ms * 1000))
    return Heard(" ".join(texts), language, total_ms or None, backend.name,
                 min(confidences) if confidences else None)


def _details(heard: Heard) -> str:
    parts = [heard.language or "language not reported"]
    if heard.duration_ms:
        seconds = round(heard.duration_ms / 1000)
        parts.append(f"{seconds // 60}:{seconds % 60:02d}")
    parts.append(SOURCE_NAMES.get(heard.backend, heard.backend))
    return ", ".join(parts)


async def _give_up(ctx: JobContext, cw: ChatwootClient, event: StoredEvent, msg: MessageEvent, policy: InboxPolicy,
                   exc: SpeechError, started: float, timings: dict[str, Any]) -> None:
    """No transcript: a person listens. Autopilot hands off (the guest is told), copilot leaves a note."""
    reason, template = next(((r, t) for kind, r, t in FAILURES if isinstance(exc, kind)), ("speech_error", "{error}"))
    note = template.format(error=str(exc).rstrip("."))
    length = getattr(exc, "duration_ms", None)
    question = UNHEARD_QUESTION.format(length=f" of {round(length / 1000)} s" if length else "")
    if msg.text.strip():
        question = f"{msg.text.strip()}\n{question}"
    log.info("voice note handed to a person", extra={"message_id": msg.id, "reason": reason,
                                                       "error": str(exc)[:200]})
    async with ctx.db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO voice_transcripts (event_id, message_id, conversation_id, duration_ms, backend, failure)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING
            """,
            (event.id, msg.id, msg.conversation_id, length, speech_backend(ctx).name, reason),
        )
    if policy.mode == "autopilot":
        await hand_off(ctx, cw, msg, policy, note, question, tell_guest=True)
        result = "handed_off"
    else:
        content = NO_SUGGESTION_NOTE.format(reason=note, quote=quote(question))
        await post_once(ctx.db, f"suggestion:{msg.id}", conversation_id=msg.conversation_id, kind="suggestion",
                        content=content, post=lambda: cw.post_message(msg.conversation_id, content, private=True))
        result = "suggested"
    outcome = AnswerOutcome("handoff", note, reason)
    await record_qa(ctx, Batch([msg]), question, outcome, policy, GuestContext(property_code=policy.property), result,
                    started, 0, timings)
    await mark_handled(ctx, msg.id)


# ------------------------------------------------------------------------------------------- answering


async def answer_voice(ctx: JobContext, cw: ChatwootClient, event: StoredEvent, msg: MessageEvent,
                       policy: InboxPolicy, question: str, heard: Heard, started: float, timings: dict[str, Any],
                       noting: asyncio.Task[bool]) -> None:
    """The text bot's answer to the transcript, then (autopilot) the same answer spoken."""
    conv = msg.conversation_id
    batch = Batch([msg])
    autopilot = policy.mode == "autopilot"
    speaker = make_speaker(ctx, msg, policy, heard) if autopilot and policy.voice_replies else None
    typing = asyncio.create_task(_typing(cw, conv, True)) if autopilot else None
    audio_error: Exception | None = None
    try:
        t0 = time.perf_counter()
        guest = await guest_context(ctx, msg, policy)
        timings["context_ms"] = _since(t0)
        t0 = time.perf_counter()
        found, turns = await asyncio.gather(  # embedding is CPU work: off the loop, the history meanwhile
            asyncio.to_thread(retriever(ctx).search, question, property_code=guest.property_code,
                              access_properties=guest.access_properties),
            history(ctx, msg, {msg.id}),
        )
        chunks: list[Any] = found
        retrieval_ms = _since(t0)
        model = llm(ctx)
        t1 = time.perf_counter()
        if speaker is not None and model is not None and hasattr(model, "stream"):
            speaking = SpeakingLLM(model, speaker.say)
            outcome = await answer_question(question, chunks=chunks, turns=turns, facts=guest.facts, llm=speaking)
            timings.update(streamed=True, first_token_ms=speaking.first_token_ms)
        else:
            outcome = await answer_question(question, chunks=chunks, turns=turns, facts=guest.facts, llm=model)
        timings["generation_ms"] = round((time.perf_counter() - t1) * 1000)
        await noting  # agents read the transcript above the reply
        t0 = time.perf_counter()
        if autopilot and not await still_ours(cw, conv):
            if speaker is not None:
                await speaker.discard()
            await state.mark_human(ctx.db, conv, "taken over while the bot was answering")
            await record_qa(ctx, batch, question, outcome, policy, guest, "stood_down", started, retrieval_ms, timings)
            return
        timings["recheck_ms"] = _since(t0)
        t0 = time.perf_counter()
        result = await act(ctx, cw, batch, question, outcome, policy)
        timings.update(post_ms=_since(t0), text_reply_ms=_since(started))
        if speaker is not None:
            if result == "answered":
                try:
                    await post_audio(ctx, cw, msg, speaker, outcome.text, started, timings)
                except (SpeechError, ChatwootError) as exc:
                    audio_error = exc
                    timings["audio_error"] = f"{type(exc).__name__}: {exc}"[:300]
            else:
                await speaker.discard()  # a handoff: the guest must not hear the discarded draft
    finally:
        if speaker is not None:
            await speaker.discard()  # whatever is still being synthesized after a failure
        if typing is not None:
            await typing
            await _typing(cw, conv, False)
    await state.set_last_answered(ctx.db, conv, msg.id, msg.inbox_id, msg.contact_id)
    await record_qa(ctx, batch, question, outcome, policy, guest, result, started, retrieval_ms, timings)
    if audio_error is not None:
        _retry_or_accept(ctx, event, msg, audio_error)


def _retry_or_accept(ctx: JobContext, event: StoredEvent, msg: MessageEvent, exc: Exception) -> None:
    """The text reply is out; a transient audio failure is worth a retry (which only posts the audio)."""
    transient = isinstance(exc, ChatwootRetryable) or (isinstance(exc, SpeechError) and exc.transient)
    if transient and event.attempts < ctx.settings.job_max_attempts:
        raise exc
    log.warning("voice reply not sent; the text reply stands",
                extra={"message_id": msg.id, "error": f"{type(exc).__name__}: {exc}"[:300]})


async def _resume(ctx: JobContext, cw: ChatwootClient, event: StoredEvent, msg: MessageEvent, policy: InboxPolicy,
                  heard: Heard) -> bool:
    """An earlier run answered already (and then failed): post only what it left, the audio. True if so."""
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, content FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'",
            ([f"{kind}:{msg.id}" for kind in ("answer", "audio", "suggestion", "handoff-note")],))
        posted = {key: content for key, content in await cur.fetchall()}
    answer = posted.get(f"answer:{msg.id}")
    if answer is None:
        return bool(posted)
    if policy.mode == "autopilot" and policy.voice_replies and f"audio:{msg.id}" not in posted:
        try:
            await post_audio(ctx, cw, msg, make_speaker(ctx, msg, policy, heard), answer, time.perf_counter(), {})
        except (SpeechError, ChatwootError) as exc:
            _retry_or_accept(ctx, event, msg, exc)
    return True


async def _replied(ctx: JobContext, message_id: int) -> bool:
    """Anything posted about this message (still known after its transcript was purged)."""
    async with ctx.db.connection() as conn:
        keys = [f"{kind}:{message_id}" for kind in ("transcript", "answer", "suggestion", "handoff-note")]
        cur = await conn.execute("SELECT 1 FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'", (keys,))
        return await cur.fetchone() is not None


async def _typing(cw: ChatwootClient, conversation_id: int, on: bool) -> None:
    try:
        await cw.toggle_typing(conversation_id, on)
    except ChatwootError as exc:  # cosmetic
        log.info("typing indicator failed", extra={"conversation_id": conversation_id, "error": str(exc)[:200]})


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# ------------------------------------------------------------------------------------------- speaking

_CITATION = re.compile(r"[ \t]*\[\d{1,2}(?:\s*[,–-]\s*\d{1,2})*\]")
_CLAUSE_BREAK = re.compile(r"[,;:]\s")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]»]*$")
LONG_SENTENCE = 90  # characters: longer sentences are synthesized in two pieces
SENTENCE_PAUSE_MS = 150
_MARKUP = re.compile(r"\*\*|__|`|^\s*(?:#+|[-*•]|\d+[.)])\s+", re.MULTILINE)


def speakable(text: str) -> str:
    """What a reply sounds like: no offline banner, no source list, citations or markdown."""
    lines = [line for line in text.splitlines()
             if line.strip() and line.strip() != OFFLINE_PREFIX and not line.startswith("Sources:")]
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


def _pcm(data: bytes) -> tuple[int, bytes] | None:
    """(sample rate, frames) of a mono 16-bit PCM WAV; None for anything else."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getcomptype()) != (1, 2, "NONE"):
                return None
            return wav.getframerate(), wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None


class _NotPcm(Exception):
    """A piece is not mono 16-bit PCM WAV at the first piece's rate (e.g. cached by another setup)."""


async def encode_stream(pcm: AsyncIterator[bytes], *, sample_rate: int, fmt: AudioFormat) -> bytes:
    """Encode mono 16-bit PCM to `fmt` while it is still arriving: ffmpeg encodes the first pieces of a
    reply while the last are being synthesized, so little encoding is left once they are all in.

    The streaming twin of speech.audio.encode_pcm (same encoder settings, same private work folder);
    it belongs in speech.audio.
    """
    with private_workdir() as work:
        out = create_private(work, f"output{EXTENSIONS[fmt]}")  # a file, so MP3 gets its Xing header
        argv = _ffmpeg("-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", "-map_metadata", "-1",
                       "-ac", "1", *_ENCODERS[fmt], str(out))
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            raise AudioFormatError("ffmpeg is not installed; install it (apt-get install ffmpeg)") from None
        assert proc.stdin is not None and proc.stderr is not None
        try:
            try:
                async for chunk in pcm:
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # ffmpeg stopped reading: its exit status and message below say why
            err = await asyncio.wait_for(proc.stderr.read(), TOOL_TIMEOUT_S)
            await asyncio.wait_for(proc.wait(), TOOL_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise AudioFormatError(f"ffmpeg failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return out.read_bytes()


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


def make_speaker(ctx: JobContext, msg: MessageEvent, policy: InboxPolicy, heard: Heard) -> Speaker:
    locale = heard.language or policy.language
    return Speaker(speech_backend(ctx), locale=locale, voice=reply_voice(policy, locale), fmt=reply_format(msg))


class Speaker:
    """Synthesizes sentences as soon as they are known, several at once, and joins them into one reply."""

    def __init__(self, backend: SpeechBackend, *, locale: str, voice: str | None, fmt: AudioFormat,
                 parallel: int = MAX_PARALLEL_SYNTHESIS) -> None:
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
        first = _pcm(await self._tasks[parts[0]])
        if first is not None:
            try:
                return await encode_stream(self._pcm(parts, first[0]), sample_rate=first[0], fmt=self.fmt)
            except _NotPcm:
                pass
        audio = [await self._tasks[part] for part in parts]
        self.synthesized_at = time.perf_counter()
        return await join_segments(audio, self.fmt)

    async def _pcm(self, parts: list[str], rate: int) -> AsyncIterator[bytes]:
        for n, part in enumerate(parts):
            found = _pcm(await self._tasks[part])
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
        return LLMResult(text="".join(parts), model=self.model, usage=None, latency_ms=_since(started),
                         finish_reason="stop")


async def post_audio(ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, speaker: Speaker, text: str,
                     started: float, timings: dict[str, Any]) -> None:
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
    await post_once(ctx.db, f"audio:{msg.id}", conversation_id=conv, kind="audio", content=" ".join(parts),
                    post=lambda: cw.post_attachment(conv, None, [(filename, audio, CONTENT_TYPES[fmt])],
                                                    is_voice_message=fmt == "ogg"))
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


# ------------------------------------------------------------------------------------------- the record


async def load_record(ctx: JobContext, message_id: int) -> VoiceRecord | None:
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT text, language, duration_ms, backend, confidence, handled_at IS NOT NULL"
            " FROM voice_transcripts WHERE message_id = %s", (message_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    text, language, length, backend, confidence, handled = row
    heard = Heard(text, language, length, backend, confidence) if text else None
    return VoiceRecord(heard, bool(handled))


async def save_heard(ctx: JobContext, event: StoredEvent, msg: MessageEvent, heard: Heard) -> None:
    """Keep the transcript with the event; a later transcript only fills a row that has none."""
    async with ctx.db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO voice_transcripts (event_id, message_id, conversation_id, text, language, duration_ms, backend,
                                           confidence)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (message_id) DO UPDATE
               SET event_id = EXCLUDED.event_id, text = EXCLUDED.text, language = EXCLUDED.language,
                   duration_ms = EXCLUDED.duration_ms, backend = EXCLUDED.backend, confidence = EXCLUDED.confidence,
                   failure = NULL
             WHERE voice_transcripts.text IS NULL AND voice_transcripts.handled_at IS NULL
            """,
            (event.id, msg.id, msg.conversation_id, heard.text, heard.language, heard.duration_ms, heard.backend,
             heard.confidence),
        )


async def mark_handled(ctx: JobContext, message_id: int) -> None:
    async with ctx.db.connection() as conn:
        await conn.execute("UPDATE voice_transcripts SET handled_at = coalesce(handled_at, now())"
                           " WHERE message_id = %s", (message_id,))


@dataclass(frozen=True)
class PurgeReport:
    transcripts: int
    notes: int
    questions: int
    payloads: int


_HAS_TRANSCRIPT = 'strict $.**.transcribed_text ? (@.type() == "string" && @ != "")'


def _scrub(value: Any) -> Any:
    """The payload with every transcribed_text emptied (Chatwoot's own value for 'none')."""
    if isinstance(value, dict):
        return {k: "" if k == "transcribed_text" and isinstance(v, str) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def purge_voice_data(conn: psycopg.Connection[Any], days: int) -> PurgeReport:
    """Remove what was heard in voice notes older than `days`: transcript rows, the transcript notes (and the
    handoff notes quoting them) in bot_replies, voice questions in qa_records, and transcribed_text in stored
    Chatwoot payloads. One transaction; the audio itself was never stored."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with conn.transaction():
        ids = [row[0] for row in conn.execute("SELECT message_id FROM voice_transcripts WHERE created_at < %s",
                                              (cutoff,))]
        keys = [f"{kind}:{i}" for i in ids for kind in ("transcript", "handoff-note", "suggestion")]
        notes = conn.execute(
            "UPDATE bot_replies SET content = NULL WHERE content IS NOT NULL AND created_at < %s"
            " AND (kind = 'transcript' OR reply_key = ANY(%s))", (cutoff, keys)).rowcount
        questions = conn.execute(
            "UPDATE qa_records SET question = %s WHERE created_at < %s AND timings->>'input' = 'voice'"
            " AND question <> %s", (PURGED_QUESTION, cutoff, PURGED_QUESTION)).rowcount
        stored = conn.execute(
            "SELECT id, payload FROM operational_events WHERE source = 'chatwoot'"
            " AND event_type IN ('message_created', 'message_updated') AND received_at < %s"
            " AND jsonb_path_exists(payload, %s::jsonpath) FOR UPDATE", (cutoff, _HAS_TRANSCRIPT)).fetchall()
        for event_id, payload in stored:
            conn.execute("UPDATE operational_events SET payload = %s WHERE id = %s", (Jsonb(_scrub(payload)), event_id))
        transcripts = conn.execute("DELETE FROM voice_transcripts WHERE created_at < %s", (cutoff,)).rowcount
    return PurgeReport(transcripts=transcripts, notes=notes, questions=questions, payloads=len(stored))


# ------------------------------------------------------------------------------------------- the demo

DEMO_QUESTION = "What time is check-out?"


def demo_voice(settings: Any, retriever: Any, recorder: Any, *, webhook: str, secret: str,
               out: Callable[[str], Any] = print, inbox_id: int = 3) -> None:
    """`sidecar demo`'s voice step: a guest's spoken question (espeak-ng), uploaded through the web widget of
    the running Chatwoot stand-in (`recorder` is its bot.standins.Recorder, which serves the file), goes to
    the service's webhook and is answered offline, as text and as speech, by a burst worker."""
    import json

    from bot.chatwoot.samples import guest_message
    from bot.chatwoot.verify import sign
    from bot.jobs import Runtime
    from bot.worker import run_worker
    from speech.local import LocalSpeech

    settings = settings.model_copy(update={"speech_backend": "local"})
    # espeak-ng's British voice is the one tiny.en hears best ("checkout"; the US one gives "Kercout").
    clip = asyncio.run(LocalSpeech().synthesize(DEMO_QUESTION, locale="en-GB", fmt="ogg"))
    message_id = 50_009 + int(time.time()) % 10_000 * 10  # new each run: the ledger keeps earlier demos
    conversation_id = 105 + int(time.time()) % 10_000 * 10  # and a fresh conversation, not one handed off before
    signed = f"demo-voice-{message_id}"
    recorder.files[signed] = (clip, "audio/ogg")
    attachment = {"id": message_id, "message_id": message_id, "file_type": "audio", "account_id": 1,
                  "extension": "ogg", "content_type": "audio/ogg", "file_size": len(clip), "thumb_url": "",
                  "data_url": f"{settings.chatwoot_url}/rails/active_storage/blobs/redirect/{signed}/voice-note.ogg"
                              "?disposition=inline", "width": None, "height": None, "transcribed_text": ""}
    body = json.dumps(guest_message(conversation_id, message_id, None, inbox_id=inbox_id,
                                    contact_id=900 + conversation_id, attachments=[attachment])).encode()
    ts = int(time.time())
    response = httpx.post(webhook, content=body, headers={"content-type": "application/json",
                                                          "x-chatwoot-timestamp": str(ts),
                                                          "x-chatwoot-signature": sign(body, secret, ts)})
    out(f"\n== 4. a voice note\nguest in conversation {conversation_id} (inbox {inbox_id}) uploads a voice note "
        f"saying {DEMO_QUESTION!r} ({len(clip):,} bytes of OGG/Opus) -> webhook {response.status_code} "
        f"{response.json()}")
    seen = len(recorder.calls)
    rt = Runtime(settings)
    rt.ctx = rt.run(JobContext.open(settings))
    rt.ctx.extras["retriever"] = retriever
    close = rt.close

    def close_keeping_retriever() -> None:  # the retriever is the demo's: it stays open
        if rt.ctx is not None:
            rt.ctx.extras.pop("retriever", None)
        close()

    rt.close = close_keeping_retriever  # type: ignore[method-assign]
    run_worker(settings, burst=True, runtime=rt)
    out("\nwhat Chatwoot received (transcribed by offline Whisper, spoken by espeak-ng):")
    for _, method, path, sent in recorder.calls[seen:]:
        short = path.split("/accounts/1")[-1]
        if method != "POST" or not short.endswith("/messages") or not isinstance(sent, dict):
            continue
        for file in sent.get("attachments") or []:
            out(f"\n  {short}  [audio reply] {file['filename']}, {file['content_type']}, {file['size']:,} bytes")
        if sent.get("content"):
            kind = "private note" if sent.get("private") in (True, "true") else "public reply"
            out(f"\n  {short}  [{kind}]\n    " + str(sent["content"]).replace("\n", "\n    "))
