"""Voice notes: hear the guest (Azure, Whisper, or Chatwoot's own transcript), show agents what was said,
answer through the text pipeline, and speak the answer back (bot.agent.speaking).

Order of work for one voice note, under the conversation's lock (bot.service.jobs):
1. the transcript: Chatwoot's own when the payload (or a stored message_updated) carries one, else
   download the attachment and transcribe it. It is saved in voice_transcripts (bot.agent.voice_store)
   before anything is posted, so a retried job or a late message_updated never pays for it twice;
2. a private note with the transcript (`transcript:<id>`), in every mode but off;
3. the answer, as the text bot gives it (retrieval, Groq or offline, the handoff rules). In autopilot the
   text reply goes first (`answer:<id>`), then the same answer as audio (`audio:<id>`); with Groq the
   answer is streamed and spoken sentence by sentence while the rest is generated, and the audio is
   dropped when the final text becomes a handoff;
4. the voice note is marked handled: nothing about it is ever done again.

Audio stays in memory; transcripts are personal data and `sidecar purge` removes them after
VOICE_RETENTION_DAYS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.agent import state
from bot.agent.answering import (
    NO_SUGGESTION_NOTE,
    Batch,
    GuestContext,
    act,
    complete_hand_off,
    hand_off,
    history,
    parse_message,
    post_check_reply,
    quote,
    record_qa,
    settle_admission,
    still_ours,
    stop_outcome,
)
from bot.agent.entitlement import admit, record_releases
from bot.agent.indicator import Typing
from bot.agent.language import guest_language
from bot.agent.policy import classify
from bot.agent.posting import post_text
from bot.agent.shadow import in_shadow
from bot.agent.speaking import SpeakingLLM, make_speaker, post_audio
from bot.agent.urgent import raise_if_urgent
from bot.agent.voice_store import Heard, load_record, mark_handled, save_failure, save_heard
from bot.answer.pipeline import AnswerOutcome, answer_question
from bot.context import JobContext
from bot.core import replies
from bot.core.ledger import StoredEvent
from bot.core.replies import any_posted
from bot.errors import Defer, PermanentError
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import ChatwootClient, ChatwootError, ChatwootRetryable
from integrations.chatwoot.models import MessageEvent
from speech import (
    AudioDownloadError,
    AudioFormatError,
    AudioTooLong,
    DownloadFailed,
    DownloadPolicy,
    RedirectRefused,
    SpeechAuthError,
    SpeechError,
    SpeechRequestError,
    SpeechUnavailable,
    UnintelligibleAudio,
    download_attachment,
)

log = logging.getLogger("sidecar.voice")

TRANSCRIPT_NOTE = "🎙️ Voice note transcript ({details}):\n\n{quote}"
UNHEARD_QUESTION = "(a voice note{length} that could not be transcribed; listen to it in the conversation)"
SOURCE_NAMES = {"azure": "Azure Speech", "local": "offline Whisper", "chatwoot": "Chatwoot's transcription"}
# Why a voice note went to a person, by error: (handoff reason, note for the agents).
FAILURES: list[tuple[type[SpeechError], str, str]] = [
    (
        UnintelligibleAudio,
        "voice_unintelligible",
        "The voice note holds no speech the bot could make out ({error}). Please listen to it.",
    ),
    (SpeechAuthError, "speech_auth", "The voice note was not transcribed: {error}"),
    (
        SpeechUnavailable,
        "speech_unavailable",
        "The speech service is unavailable ({error}), so the voice note was not transcribed. Please listen to it.",
    ),
    (
        SpeechRequestError,
        "speech_rejected",
        "The speech service rejected the voice note ({error}). Please listen to it.",
    ),
    (
        AudioTooLong,
        "voice_too_long",
        "The voice note is too long for the bot to transcribe ({error}). Please listen to it.",
    ),
    (AudioFormatError, "voice_unreadable", "The voice note's audio could not be read ({error}). Please listen to it."),
    (
        AudioDownloadError,
        "voice_download_failed",
        "The voice note could not be downloaded ({error}). Please listen to it in the conversation.",
    ),
]


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
    await raise_if_urgent(ctx, msg, heard.text)  # an emergency said aloud alerts like a typed one
    note = TRANSCRIPT_NOTE.format(details=_details(heard), quote=quote(heard.text))
    # The note needs no answer: post it alongside the retrieval instead of before it.
    noting = asyncio.create_task(
        post_text(ctx, cw, f"transcript:{msg.id}", msg.conversation_id, "transcript", note, private=True)
    )
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
    policy = ctx.inboxes.for_inbox(msg.inbox_id)
    if classify(as_new, policy).action != "answer":
        return "ignored"
    if policy.mode in ("autopilot", "shadow") and await state.human_since(ctx.db, msg.conversation_id) is not None:
        return "ignored"
    return await on_voice_message(in_shadow(ctx, as_new, policy), event, as_new, policy)


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


def _untrusted(host: str) -> RedirectRefused:
    return RedirectRefused(
        f"{host} is neither CHATWOOT_URL's host nor listed in ATTACHMENT_STORAGE_HOSTS; "
        "add it there if Chatwoot serves its files from it"
    )


async def _refuse_untrusted(host: str, port: int) -> list[str]:
    """The downloader asks us to resolve only the hosts it does not trust: voice notes come from ours alone."""
    raise _untrusted(host)


async def transcribe(ctx: JobContext, msg: MessageEvent, timings: dict[str, Any]) -> Heard:
    """Download each audio attachment (only from Chatwoot and its storage) and transcribe it."""
    backend = ctx.speech
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
        transcript = await backend.transcribe(
            audio.data, audio.filename, audio.content_type or attachment.content_type, locales
        )
        download_ms += t1 - t0
        transcription_ms += time.perf_counter() - t1
        texts.append(transcript.text)
        language = language or transcript.language
        total_ms += transcript.duration_ms or 0
        if transcript.confidence is not None:
            confidences.append(transcript.confidence)
    timings.update(download_ms=round(download_ms * 1000), transcription_ms=round(transcription_ms * 1000))
    return Heard(" ".join(texts), language, total_ms or None, backend.name, min(confidences) if confidences else None)


def _details(heard: Heard) -> str:
    parts = [heard.language or "language not reported"]
    if heard.duration_ms:
        seconds = round(heard.duration_ms / 1000)
        parts.append(f"{seconds // 60}:{seconds % 60:02d}")
    parts.append(SOURCE_NAMES.get(heard.backend, heard.backend))
    return ", ".join(parts)


async def _give_up(
    ctx: JobContext,
    cw: ChatwootClient,
    event: StoredEvent,
    msg: MessageEvent,
    policy: InboxPolicy,
    exc: SpeechError,
    started: float,
    timings: dict[str, Any],
) -> None:
    """No transcript: a person listens. Autopilot hands off (the guest is told), copilot leaves a note."""
    reason, template = next(((r, t) for kind, r, t in FAILURES if isinstance(exc, kind)), ("speech_error", "{error}"))
    note = template.format(error=str(exc).rstrip("."))
    length = getattr(exc, "duration_ms", None)
    question = UNHEARD_QUESTION.format(length=f" of {round(length / 1000)} s" if length else "")
    if msg.text.strip():
        question = f"{msg.text.strip()}\n{question}"
    log.info("voice note handed to a person", extra={"message_id": msg.id, "reason": reason, "error": str(exc)[:200]})
    await save_failure(ctx, event, msg, duration_ms=length, backend=ctx.speech.name, reason=reason)
    if policy.mode in ("autopilot", "shadow"):
        await hand_off(ctx, cw, msg, policy, note, question, tell_guest=True)
        result = "handed_off"
    else:
        content = NO_SUGGESTION_NOTE.format(reason=note, quote=quote(question))
        await post_text(ctx, cw, f"suggestion:{msg.id}", msg.conversation_id, "suggestion", content, private=True)
        result = "suggested"
    outcome = AnswerOutcome("handoff", note, reason)
    await record_qa(
        ctx,
        Batch([msg]),
        question,
        outcome,
        policy,
        GuestContext(property_code=policy.property),
        result,
        started,
        0,
        timings,
    )
    await mark_handled(ctx, msg.id)


# ------------------------------------------------------------------------------------------- answering


async def answer_voice(
    ctx: JobContext,
    cw: ChatwootClient,
    event: StoredEvent,
    msg: MessageEvent,
    policy: InboxPolicy,
    question: str,
    heard: Heard,
    started: float,
    timings: dict[str, Any],
    noting: asyncio.Task[bool],
) -> None:
    """The text bot's answer to the transcript, then (autopilot) the same answer spoken."""
    conv = msg.conversation_id
    batch = Batch([msg])
    autopilot = policy.mode in ("autopilot", "shadow")  # shadow answers as autopilot, in text only
    speaker = (
        make_speaker(ctx.speech, msg, policy, heard) if policy.mode == "autopilot" and policy.voice_replies else None
    )
    typing = Typing(cw, conv, after_s=0)  # on at once: transcription and speech take seconds
    if autopilot:
        typing.start()
    audio_error: Exception | None = None
    try:
        t0 = time.perf_counter()
        # The same gate as typed messages: identity, the check, and what the booking unlocks (bot.agent.entitlement).
        language = await guest_language(ctx, msg, question, policy, heard=heard.language)
        admission = await admit(ctx, msg, policy, question, language=language)
        guest = admission.guest
        timings["context_ms"] = _since(t0)
        retrieval_ms = 0
        if admission.stop is not None:
            await noting  # agents read the transcript above the request
            outcome = stop_outcome(admission)
            result = await settle_admission(ctx, cw, msg, policy, admission, question)
        else:
            question = admission.question
            t0 = time.perf_counter()
            found, turns = await asyncio.gather(  # embedding is CPU work: off the loop, the history meanwhile
                asyncio.to_thread(
                    ctx.retriever.search,
                    admission.search or question,
                    property_code=guest.property_code,
                    access_properties=guest.access_properties,
                    private_properties=guest.private_properties,
                ),
                history(ctx, msg, {msg.id}),
            )
            chunks: list[Any] = found
            retrieval_ms = _since(t0)
            model = ctx.llm
            t1 = time.perf_counter()
            if speaker is not None and model is not None and hasattr(model, "stream"):
                speaking = SpeakingLLM(model, speaker.say)
                outcome = await answer_question(
                    question, chunks=chunks, turns=turns, facts=guest.facts, llm=speaking, language=language
                )
                timings.update(streamed=True, first_token_ms=speaking.first_token_ms)
            else:
                outcome = await answer_question(
                    question, chunks=chunks, turns=turns, facts=guest.facts, llm=model, language=language
                )
            timings["generation_ms"] = round((time.perf_counter() - t1) * 1000)
            await noting  # agents read the transcript above the reply
            t0 = time.perf_counter()
            if autopilot and not await still_ours(cw, conv):
                if speaker is not None:
                    await speaker.discard()
                await state.mark_human(ctx.db, conv, "taken over while the bot was answering")
                await record_qa(
                    ctx, batch, question, outcome, policy, guest, "stood_down", started, retrieval_ms, timings
                )
                return
            timings["recheck_ms"] = _since(t0)
            await post_check_reply(ctx, cw, msg, admission)  # the thanks for a check passed in this voice note
            t0 = time.perf_counter()
            result = await act(ctx, cw, batch, question, outcome, policy, language=language)
            timings.update(post_ms=_since(t0), text_reply_ms=_since(started))
            if outcome.kind == "answer":
                await record_releases(ctx, cw, msg, admission, chunks, suggested=result == "suggested")
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
        await typing.stop()
    await state.set_last_answered(ctx.db, conv, msg.id, msg.inbox_id, msg.contact_id)
    await record_qa(ctx, batch, question, outcome, policy, guest, result, started, retrieval_ms, timings)
    if audio_error is not None:
        _retry_or_accept(ctx, event, msg, audio_error)


def _retry_or_accept(ctx: JobContext, event: StoredEvent, msg: MessageEvent, exc: Exception) -> None:
    """The text reply is out; a transient audio failure is worth a retry (which only posts the audio)."""
    transient = isinstance(exc, ChatwootRetryable) or (isinstance(exc, SpeechError) and exc.transient)
    if transient and event.attempts < ctx.settings.job_max_attempts:
        raise exc
    log.warning(
        "voice reply not sent; the text reply stands",
        extra={"message_id": msg.id, "error": f"{type(exc).__name__}: {exc}"[:300]},
    )


async def _resume(
    ctx: JobContext, cw: ChatwootClient, event: StoredEvent, msg: MessageEvent, policy: InboxPolicy, heard: Heard
) -> bool:
    """An earlier run answered already (and then failed): post only what it left (the audio, or the rest of a
    hand-off). True if so."""
    if await complete_hand_off(ctx, cw, msg):
        return True
    posted = await replies.posted_contents(
        ctx.db, [f"{kind}:{msg.id}" for kind in ("answer", "audio", "suggestion", "handoff-note")]
    )
    answer = posted.get(f"answer:{msg.id}")
    if answer is None:
        return bool(posted)
    if policy.mode == "autopilot" and policy.voice_replies and f"audio:{msg.id}" not in posted:
        try:
            speaker = make_speaker(ctx.speech, msg, policy, heard)
            await post_audio(ctx, cw, msg, speaker, answer, time.perf_counter(), {})
        except (SpeechError, ChatwootError) as exc:
            _retry_or_accept(ctx, event, msg, exc)
    return True


async def _replied(ctx: JobContext, message_id: int) -> bool:
    """Anything posted about this message (still known after its transcript was purged)."""
    kinds = ("transcript", "answer", "suggestion", "handoff-note")
    return await any_posted(ctx.db, [f"{kind}:{message_id}" for kind in kinds])


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
