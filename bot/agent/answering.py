"""Answering a guest in Chatwoot: gather the burst, retrieve, answer, then reply, suggest or hand off.

Runs in a worker under the conversation's lock (bot.service.jobs), so one conversation is never answered by two
jobs at once. Every post goes through bot.core.replies.post_once, so a retried job never posts twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from bot.agent import hours, state, summary
from bot.agent.entitlement import Admission, admit, record_releases
from bot.agent.indicator import Typing
from bot.agent.language import guest_language, pick_language
from bot.agent.policy import classify
from bot.agent.posting import post_text
from bot.answer.offline import OFFLINE_MODEL
from bot.answer.pipeline import HUMAN_REQUESTED, AnswerOutcome, answer_question
from bot.answer.types import GuestContext, Source, Turn
from bot.context import JobContext
from bot.core import replies
from bot.core.ledger import StoredEvent
from bot.core.replies import any_posted, post_once
from bot.errors import Defer, PermanentError
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import (
    ChatwootAuthError,
    ChatwootClient,
    ChatwootError,
    ChatwootNotFound,
)
from integrations.chatwoot.models import MalformedPayload, MessageEvent, UnknownEvent, parse_event
from integrations.chatwoot.readback import reply_finder

log = logging.getLogger("sidecar.bot")

HISTORY_TURNS = 10

# What the guest reads when the bot hands over, in the guest's language (else the inbox's).
HANDOFF_REPLY = {
    "en": "I'm passing your message to a colleague, who will reply here shortly.",
    "pt": "Vou passar a sua mensagem a um colega, que lhe responderá aqui em breve.",
    "es": "Paso tu mensaje a un compañero, que te responderá aquí en breve.",
    "de": "Ich gebe Ihre Nachricht an eine Kollegin oder einen Kollegen weiter, die Ihnen hier gleich antworten.",
    "fr": "Je transmets votre message à un collègue, qui vous répondra ici sous peu.",
    "it": "Passo il tuo messaggio a un collega, che ti risponderà qui a breve.",
    "nl": "Ik geef je bericht door aan een collega, die je hier zo antwoordt.",
}
HANDOFF_NOTE = "🤖 Handed off to a person.\n{reason}\n\nGuest wrote:\n{quote}"
SUGGESTION_NOTE = "💡 Suggested reply (not sent to the guest):\n\n{answer}"
SOURCES_LINE = "\n\nSources: {sources}"
NO_SUGGESTION_NOTE = "💡 No suggestion for this message. {reason}\n\nGuest wrote:\n{quote}"
# A hand-off is a plan of four keyed steps, taken in this order; a retry takes only the missing ones.
HANDOFF_STEPS = ("note", "reply", "labels", "status")


@dataclass
class Batch:
    """The guest messages one answer covers (a burst typed in quick succession)."""

    messages: list[MessageEvent] = field(default_factory=list)

    @property
    def newest(self) -> MessageEvent:
        return self.messages[-1]

    @property
    def question(self) -> str:
        return "\n".join(m.text.strip() for m in self.messages if m.text.strip())

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.messages]


def parse_message(payload: dict[str, Any]) -> MessageEvent:
    try:
        event = parse_event(payload)
    except (MalformedPayload, UnknownEvent) as exc:
        raise PermanentError(f"unreadable Chatwoot payload: {exc}") from None
    if not isinstance(event, MessageEvent):
        raise PermanentError("expected a message event")
    return event


async def on_text_message(
    ctx: JobContext, event: StoredEvent, msg: MessageEvent, policy: InboxPolicy, known: state.Snapshot
) -> str:
    """Answer (autopilot) or suggest (copilot) for one typed guest message, or a burst of them."""
    waited = (datetime.now(UTC) - event.received_at).total_seconds()
    if waited < ctx.settings.debounce_seconds:
        raise Defer(ctx.settings.debounce_seconds - waited)  # let the guest finish typing
    batch = gather_batch(msg, policy, known)
    if batch is None or batch.newest.id != msg.id:
        return "done"  # a later message of the same burst answers this one too
    if await _answered(ctx, batch.newest):  # by an earlier run, perhaps finished only now (a hand-off)
        newest = batch.newest
        await state.set_last_answered(ctx.db, newest.conversation_id, newest.id, newest.inbox_id, newest.contact_id)
        return "done"
    await answer_batch(ctx, batch, policy, known=known)
    return "done"


def gather_batch(msg: MessageEvent, policy: InboxPolicy, known: state.Snapshot) -> Batch | None:
    """This message plus the not-yet-answered guest messages before and after it; None when an earlier
    answer already covered it (a later message of its burst got the lock first)."""
    after = known.last_answered
    if msg.id <= after:
        return None
    batch = Batch()
    for payload in known.messages:
        try:
            other = parse_message(payload)
        except PermanentError:
            continue
        if other.id <= after:
            continue
        # Voice notes are answered on their own (bot.agent.voice); a burst gathers typed messages only.
        if other.id == msg.id or (classify(other, policy).action == "answer" and not other.audio_attachments):
            batch.messages.append(other)
    if not any(m.id == msg.id for m in batch.messages):
        batch.messages.append(msg)
    batch.messages.sort(key=lambda m: m.id)
    return batch


async def _answered(ctx: JobContext, msg: MessageEvent) -> bool:
    """Whether this message got its answer or suggestion, or a hand-off that is now complete.

    An answer whose post has no known outcome is read back first (no new answer is written for it); a
    hand-off begun by an earlier run is finished here, never counted as done half-way."""
    cw, key = ctx.chatwoot, msg.id
    ours = [f"{kind}:{key}" for kind in ("answer", "suggestion", "check")] + handoff_keys(key)
    if not await replies.states(ctx.db, ours):
        return False  # the common case, a fresh message: nothing posted or planned for it, one query
    if cw is not None:
        for kind, private in (("answer", False), ("suggestion", True)):
            if await replies.settle(
                ctx.db,
                f"{kind}:{key}",
                reply_finder(cw, f"{kind}:{key}", msg.conversation_id, private=private),
                settle_s=ctx.settings.reply_settle_s,
            ):
                return True
        if await complete_hand_off(ctx, cw, msg):
            return True
    return await any_posted(ctx.db, [f"{kind}:{key}" for kind in ("answer", "suggestion", "check")])


def history_from_chatwoot(ctx: JobContext) -> bool:
    """Whether recent turns are read from Chatwoot (with a user token), not from our own ledger."""
    return ctx.chatwoot is not None and bool(ctx.settings.secret("chatwoot_api_token"))


async def history(
    ctx: JobContext, msg: MessageEvent, exclude: set[int], known: Sequence[dict[str, Any]] | None = None
) -> list[Turn]:
    """Recent turns: from Chatwoot when we have a user token, else from our own ledger (`known`: the
    conversation's newest payloads, when read already)."""
    turns: list[Turn] = []
    cw = ctx.chatwoot
    if cw is not None and history_from_chatwoot(ctx):
        try:
            for m in await cw.list_messages(msg.conversation_id):
                if m.get("id") in exclude or m.get("private") or m.get("message_type") not in (0, 1):
                    continue
                text = str(m.get("content") or "").strip()
                if text:
                    turns.append(Turn("guest" if m.get("message_type") == 0 else "host", text))
            return turns[-HISTORY_TURNS:]
        except ChatwootError as exc:
            log.info("history from Chatwoot unavailable, using the ledger", extra={"error": str(exc)[:200]})
    if known is None:
        known = await state.message_payloads(ctx.db, f"conversation:{msg.conversation_id}", limit=state.RECENT_TURNS)
    for payload in known[-state.RECENT_TURNS :]:
        if payload.get("id") in exclude or payload.get("private"):
            continue
        kind = payload.get("message_type")
        text = str(payload.get("content") or "").strip()
        if text and kind in ("incoming", "outgoing"):
            turns.append(Turn("guest" if kind == "incoming" else "host", text))
    return turns[-HISTORY_TURNS:]


def format_sources(sources: list[Source]) -> str:
    return "; ".join(f"{name} › {heading}" if heading else name for name, heading in sources) or "none"


def quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


async def still_ours(cw: ChatwootClient, conversation_id: int) -> bool:
    """Re-check just before posting that the conversation is still pending and unassigned.

    Chatwoot < 4.15 refuses this read to bot tokens; then the webhook's view has to do."""
    try:
        conv = await cw.get_conversation(conversation_id)
    except (ChatwootAuthError, ChatwootNotFound):
        return True
    meta = conv.get("meta") or {}
    return conv.get("status") == "pending" and meta.get("assignee_type") != "User"


async def answer_batch(
    ctx: JobContext,
    batch: Batch,
    policy: InboxPolicy,
    *,
    known: state.Snapshot,
) -> AnswerOutcome:
    """Retrieve, answer and act in Chatwoot for one batch; `known` is the conversation as read when the
    message came in (its newest messages serve as the history)."""
    cw = ctx.chatwoot
    if cw is None:
        raise PermanentError("Chatwoot is not configured: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_BOT_TOKEN")
    newest = batch.newest
    conv = newest.conversation_id
    text = batch_text = batch.question
    started = time.perf_counter()
    autopilot = policy.mode in ("autopilot", "shadow")  # shadow: as autopilot, its writes held back
    typing = Typing(cw, conv)
    marks: dict[str, Any] = {}
    # Neither the question's embedding nor the recent turns depend on who is asking: start both now and
    # work out the guest's scope meanwhile (embedding is CPU work, off the event loop).
    embedding = asyncio.create_task(asyncio.to_thread(ctx.retriever.embedder.embed_query, text))
    # From Chatwoot the turns are a request, started now; from the ledger they are in the snapshot already.
    turns_task = asyncio.create_task(history(ctx, newest, set(batch.ids))) if history_from_chatwoot(ctx) else None
    try:
        language = await guest_language(ctx, newest, text, policy)
        admission = await admit(ctx, newest, policy, text, language=language)
        guest = admission.guest
        marks["context_ms"] = round((time.perf_counter() - started) * 1000)
        retrieval_ms = 0
        if admission.stop is not None:
            outcome = stop_outcome(admission)
            result = await settle_admission(ctx, cw, newest, policy, admission, text)
        else:
            if admission.question != text:  # a question that waited (for the check, for "which one?")
                language = pick_language(admission.question, newest, policy)[0]
            text = admission.question
            await post_check_reply(ctx, cw, newest, admission)
            t0 = time.perf_counter()
            searched = admission.search or text
            found = await asyncio.to_thread(
                ctx.retriever.search,
                searched,
                property_code=guest.property_code,
                access_properties=guest.access_properties,
                private_properties=guest.private_properties,
                embedding=await embedding if searched == batch_text else None,
            )
            if turns_task is not None:
                turns = await turns_task
            else:
                turns = await history(ctx, newest, set(batch.ids), known.messages)
            chunks: list[Any] = found
            retrieval_ms = round((time.perf_counter() - t0) * 1000)
            # Offline answers match words: the property's name would only pull its guide's introduction.
            asked = text if ctx.llm is not None else (admission.search or text)
            if autopilot:
                typing.start()  # switched on while the model writes (bot.agent.indicator)
            outcome = await answer_question(
                asked, chunks=chunks, turns=turns, facts=guest.facts, llm=ctx.llm, language=language
            )
            t0 = time.perf_counter()
            if autopilot and not await still_ours(cw, conv):
                await state.mark_human(ctx.db, conv, "taken over while the bot was answering")
                await record_qa(ctx, batch, text, outcome, policy, guest, "stood_down", started, retrieval_ms)
                return outcome
            marks["recheck_ms"] = round((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            result = await act(ctx, cw, batch, text, outcome, policy, language=language)
            marks["post_ms"] = round((time.perf_counter() - t0) * 1000)
            if outcome.kind == "answer":
                await record_releases(ctx, cw, newest, admission, chunks, suggested=result == "suggested")
    finally:
        tasks = [task for task in (embedding, turns_task) if task is not None]
        for task in tasks:  # unused on a stop (the check, "which one?") or an error
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await typing.stop()
    await state.set_last_answered(ctx.db, conv, newest.id, newest.inbox_id, newest.contact_id)
    await record_qa(ctx, batch, text, outcome, policy, guest, result, started, retrieval_ms, marks)
    return outcome


def stop_outcome(admission: Admission) -> AnswerOutcome:
    """The Q&A record of a message the identity check (or "which property?") answered instead of the bot."""
    if admission.stop == "locked":
        return AnswerOutcome("handoff", admission.note or "identity check locked", "verification_locked")
    return AnswerOutcome(
        "answer", admission.reply or "", model="which-property" if admission.stop == "which" else "identity-check"
    )


async def settle_admission(
    ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, policy: InboxPolicy, admission: Admission, question: str
) -> str:
    """The identity check stops the answer: ask for it (or thank for it), or hand off once it is locked.
    A question that fits several properties stops it too: the guest is asked which one (copilot: the agent
    gets that question as the suggestion)."""
    if admission.stop == "locked":
        await hand_off(ctx, cw, msg, policy, admission.note or "identity check locked", question, tell_guest=True)
        return "handed_off"
    if admission.stop == "which" and policy.mode == "copilot":
        note, conv = SUGGESTION_NOTE.format(answer=admission.reply or ""), msg.conversation_id
        await post_text(ctx, cw, f"suggestion:{msg.id}", conv, "suggestion", note, private=True)
        return "suggested"
    await post_check_reply(ctx, cw, msg, admission)
    return {"verify": "verifying", "which": "clarifying"}.get(admission.stop or "", "answered")


async def post_check_reply(ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, admission: Admission) -> None:
    """The check's words to the guest (the request, the thanks before the answer, or "which property?"), once
    per message."""
    if admission.reply:  # marked and read back like every reply, so a lost outcome is not sent twice
        await post_text(ctx, cw, f"check:{msg.id}", msg.conversation_id, "reply", admission.reply, private=False)


async def act(
    ctx: JobContext,
    cw: ChatwootClient,
    batch: Batch,
    question: str,
    outcome: AnswerOutcome,
    policy: InboxPolicy,
    *,
    language: str | None = None,
) -> str:
    """Post what the outcome calls for; return the Q&A outcome word."""
    newest = batch.newest
    conv, key = newest.conversation_id, newest.id
    if policy.mode == "copilot":
        if outcome.kind == "answer":
            note = SUGGESTION_NOTE.format(answer=outcome.text)
            if outcome.model != OFFLINE_MODEL:  # offline answers cite their sources themselves
                note += SOURCES_LINE.format(sources=format_sources(outcome.sources))
        else:
            note = NO_SUGGESTION_NOTE.format(reason=outcome.text, quote=quote(question))
        await post_text(ctx, cw, f"suggestion:{key}", conv, "suggestion", note, private=True)
        return "suggested"
    if outcome.kind == "answer":
        await post_text(ctx, cw, f"answer:{key}", conv, "reply", outcome.text, private=False)
        return "answered"
    await hand_off(ctx, cw, newest, policy, outcome.text, question, tell_guest=True, language=language)
    return "handed_off"


def handoff_keys(message_id: int) -> list[str]:
    return [f"handoff-{step}:{message_id}" for step in HANDOFF_STEPS]


async def hand_off(
    ctx: JobContext,
    cw: ChatwootClient,
    msg: MessageEvent,
    policy: InboxPolicy,
    reason: str,
    question: str,
    *,
    tell_guest: bool,
    language: str | None = None,
    status: str = "open",
) -> None:
    """Open the conversation for people: a note saying why, the guest told, a label, status open (or
    `status`, e.g. "snoozed:<unix time>" to wait for the morning: bot.agent.after_hours).

    The steps are planned in the reply ledger first, all at once, then taken; a retry (or the next run)
    takes the ones still missing (`complete_hand_off`)."""
    key = msg.id
    note = HANDOFF_NOTE.format(reason=reason, quote=quote(question))
    note += await summary.for_hand_off(ctx.db, msg.contact_id, question, reason)
    steps = [(f"handoff-note:{key}", "handoff", note)]
    if tell_guest:
        told = HANDOFF_REPLY.get(language or "", HANDOFF_REPLY.get(policy.language, HANDOFF_REPLY["en"]))
        told = hours.with_back_at(ctx, policy, told, language)  # closed now: say when people are back
        steps.append((f"handoff-reply:{key}", "reply", told))
    steps += [(f"handoff-labels:{key}", "action", policy.handoff_label), (f"handoff-status:{key}", "action", status)]
    await replies.plan_steps(ctx.db, steps, conversation_id=msg.conversation_id)
    await complete_hand_off(ctx, cw, msg, reason=reason)


async def complete_hand_off(
    ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, *, reason: str = "handed off"
) -> bool:
    """Take the steps of this message's planned hand-off that are not done; False when none was planned.

    Every missing step is tried even when one before it fails (the status change is what notifies the
    agents); the first failure is raised afterwards so the job retries the rest."""
    conv, keys = msg.conversation_id, handoff_keys(msg.id)
    planned = await replies.states(ctx.db, keys)
    if not planned:
        return False
    errors: list[Exception] = []
    for key in keys:
        step = planned.get(key)
        if step is None or step.status in ("posted", "skipped") or step.content is None:
            continue
        try:
            await _handoff_step(ctx, cw, key, conv, step.content)
        except Exception as exc:  # each step is independent: try the rest
            errors.append(exc)
    if errors:
        raise next((e for e in errors if not isinstance(e, Defer)), errors[0])
    await state.mark_human(ctx.db, conv, reason)
    return True


async def _handoff_step(ctx: JobContext, cw: ChatwootClient, key: str, conv: int, content: str) -> None:
    step = key.split(":", 1)[0].removeprefix("handoff-")
    if step == "note":
        await post_text(ctx, cw, key, conv, "handoff", content, private=True)
    elif step == "reply":
        await post_text(ctx, cw, key, conv, "reply", content, private=False)
    elif step == "labels":  # reads and merges: repeating it is harmless, so no read-back is needed

        async def label() -> None:
            await cw.add_labels(conv, [content])

        await post_once(ctx.db, key, conversation_id=conv, kind="action", content=content, post=label, settle_s=0)
    else:  # "open", or "snoozed:<unix time>"
        status, _, until = content.partition(":")
        await post_once(
            ctx.db,
            key,
            conversation_id=conv,
            kind="action",
            content=content,
            settle_s=0,
            post=lambda: cw.toggle_status(conv, status, snoozed_until=int(until) if until else None),
        )


async def record_qa(
    ctx: JobContext,
    batch: Batch,
    question: str,
    outcome: AnswerOutcome,
    policy: InboxPolicy,
    guest: GuestContext,
    result: str,
    started: float,
    retrieval_ms: int,
    extra_timings: dict[str, Any] | None = None,
) -> None:
    """Keep the question, the answer and how it went, for review and for learning later."""
    newest = batch.newest
    timings = {"retrieval_ms": retrieval_ms, "answer_ms": outcome.latency_ms, **(extra_timings or {})}
    async with ctx.db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO qa_records (conversation_id, message_ids, inbox_id, contact_id, property_code, question,
                                    answer, sources, mode, model, outcome, handoff_reason, latency_ms, timings)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                newest.conversation_id,
                batch.ids,
                newest.inbox_id,
                newest.contact_id,
                guest.property_code,
                question,
                outcome.text if outcome.kind == "answer" else None,
                Jsonb([{"source": s, "heading": h} for s, h in outcome.sources]),
                policy.mode,
                outcome.model,
                result,
                outcome.reason,
                round((time.perf_counter() - started) * 1000),
                Jsonb(timings),
            ),
        )


async def on_conversation_status(ctx: JobContext, event: StoredEvent) -> str:
    """Opened by a person: stand down. Pending again, or resolved: the bot may answer the next message."""
    status = event.payload.get("status")
    conv = event.payload.get("id")
    if not isinstance(conv, int):
        return "ignored"
    if status == "open":
        await state.mark_human(ctx.db, conv, "conversation opened")
    elif status in ("pending", "resolved"):
        await state.clear_human(ctx.db, conv)
    else:
        return "ignored"
    return "done"


__all__ = ["HUMAN_REQUESTED", "GuestContext", "on_conversation_status", "on_text_message"]
