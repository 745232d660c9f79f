"""Aircall events -> call_records and Chatwoot: the I/O edge of the Aircall mirror.

Every handler parses the payload, merges it into the call's record, asks transforms.py which notes and
follow-ups the event calls for, and carries them out under the bot_replies ledger, so a retried or
redelivered event posts nothing twice. Calls from a withheld number are recorded, never attached to a
contact. When Chatwoot or CHATWOOT_CALLS_INBOX_ID is not configured the calls are still recorded.

The job context provides settings, db (pool), http and chatwoot. A speech layer may add a voicemail
transcriber, `async (url) -> str | None`, as `ctx.extras["transcribe_voicemail"]` (or an attribute of
that name); it is given a fresh download URL from the Aircall API when AIRCALL_API_ID/TOKEN are set,
else the URL carried by the event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from bot.context import JobContext
from bot.core import replies
from bot.core.ledger import StoredEvent
from bot.errors import Defer, PermanentError
from integrations.aircall import store, transforms
from integrations.aircall.client import AircallClient, AircallError
from integrations.aircall.models import (
    AircallCall,
    AircallContact,
    AircallSummary,
    AircallTranscription,
    AircallWebhook,
)
from integrations.aircall.transforms import CallState, ContactStep, FollowUpStep, NoteStep, Step
from integrations.aircall.voicemail import transcriber_for
from integrations.chatwoot.client import ChatwootClient, ChatwootNotFound
from integrations.chatwoot.contacts import (
    display_phone,
    find_or_create_contact,
    find_or_create_conversation,
    forget_contact,
)
from integrations.chatwoot.readback import post_marked

log = logging.getLogger(__name__)

Transcriber = Callable[[str], Awaitable[str | None]]
AI_WAIT_FOR_CALL = timedelta(hours=1)  # how long an AI event waits for its call's events (no API keys)
AI_RETRY_S = 60.0


async def handle_call_event(ctx: JobContext, event: StoredEvent) -> str | None:
    """Any call.* event: merge it into the record, then post what it newly tells."""
    envelope = _envelope(event.payload)
    try:
        call = AircallCall.model_validate(envelope.data)
    except ValidationError as exc:
        raise _permanent(f"Aircall {envelope.event}: data is not a call object ({exc.error_count()} errors)") from None
    state = await store.merge_call(ctx.db, transforms.snapshot(call, envelope.event, envelope.timestamp, envelope.data))
    steps = transforms.plan_call_event(envelope.event, state, call, envelope.timestamp)
    transcriber = _transcriber(ctx)
    if transcriber is not None and await _voicemail_untold(ctx, state, steps):
        text = await _transcribe(ctx, transcriber, state, call)
        if text:
            await store.save_voicemail_transcript(ctx.db, state.aircall_call_id, text)
            state = replace(state, voicemail_transcript=text)
            steps = transforms.plan_call_event(envelope.event, state, call, envelope.timestamp)
    return await carry_out(ctx, state, steps, call)


async def handle_transcription(ctx: JobContext, event: StoredEvent) -> str | None:
    """transcription.created: post Aircall AI's transcript on the call's conversation."""
    envelope = _envelope(event.payload)
    call_id = _ai_call_id(envelope)
    data = _model(AircallTranscription, envelope)
    state = await _call_for_ai(ctx, call_id, envelope.timestamp, event)
    client = _aircall(ctx)
    if (data.content is None or not data.content.utterances) and client is not None:
        data = await client.get_transcription(call_id) or data
    text = transforms.transcript_text(data, state.agent_name)
    if text is None:
        return "ignored"
    state = await store.save_ai(ctx.db, call_id, transcript=text)
    return await carry_out(ctx, state, transforms.plan_transcription(state))


async def handle_summary(ctx: JobContext, event: StoredEvent) -> str | None:
    """summary.created: post Aircall AI's summary on the call's conversation."""
    envelope = _envelope(event.payload)
    call_id = _ai_call_id(envelope)
    data = _model(AircallSummary, envelope)
    state = await _call_for_ai(ctx, call_id, envelope.timestamp, event)
    client = _aircall(ctx)
    if not data.content and client is not None:
        data = await client.get_summary(call_id) or data
    text = transforms.summary_text(data)
    if text is None:
        return "ignored"
    state = await store.save_ai(ctx.db, call_id, summary=text)
    return await carry_out(ctx, state, transforms.plan_summary(state))


HANDLERS: dict[str, Callable[[JobContext, StoredEvent], Awaitable[str | None]]] = {
    **dict.fromkeys(transforms.CALL_EVENTS, handle_call_event),
    "transcription.created": handle_transcription,
    "summary.created": handle_summary,
}
SUPPORTED_EVENTS = frozenset(HANDLERS)


# ------------------------------------------------------------------------------------ carrying out


async def carry_out(ctx: JobContext, state: CallState, steps: list[Step], call: AircallCall | None = None) -> str:
    """Perform the steps not yet in the ledger on the caller's contact and conversation."""
    if not steps:
        return "done"
    if state.caller_e164 is None:
        log.info("Aircall call %s from a withheld number: recorded, not attached to a contact", state.aircall_call_id)
        return "done"
    keys = [key for step in steps for key in step.keys]
    if not set(keys) - await replies.posted(ctx.db, keys):
        return "done"
    chatwoot, inbox_id = ctx.chatwoot, ctx.settings.chatwoot_calls_inbox_id
    if chatwoot is None or inbox_id is None:
        log.warning(
            "Aircall call %s recorded but not mirrored to Chatwoot: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID, "
            "CHATWOOT_API_TOKEN and CHATWOOT_CALLS_INBOX_ID (the id of the 'Phone calls' API inbox)",
            state.aircall_call_id,
        )
        return "skipped"
    state = await _land(ctx, chatwoot, inbox_id, state, call)
    for step in steps:
        await _run(ctx, chatwoot, state, step)
    return "done"


async def _land(
    ctx: JobContext, chatwoot: ChatwootClient, inbox_id: int, state: CallState, call: AircallCall | None
) -> CallState:
    """The call's contact and conversation: remembered on the record, else found or created."""
    contact_id, conversation_id = state.chatwoot_contact_id, state.chatwoot_conversation_id
    if contact_id is None:
        known = _aircall_contact(state, call)
        contact_id = await find_or_create_contact(
            ctx.db,
            chatwoot,
            phone=state.caller_e164,
            email=known.email if known else None,
            name=(known.full_name if known else None) or display_phone(state.caller_e164 or ""),
            inbox_id=inbox_id,
        )
        conversation_id = None
        if contact_id is None:  # cannot happen with a normalised caller; kept for the type checker
            raise _permanent(f"no usable phone number on Aircall call {state.aircall_call_id}")
    if conversation_id is None:
        try:
            conversation_id = await find_or_create_conversation(
                ctx.db, chatwoot, contact_id=contact_id, inbox_id=inbox_id
            )
        except ChatwootNotFound:
            await _forget_contact(ctx, state, contact_id)
            raise
    if (contact_id, conversation_id) != (state.chatwoot_contact_id, state.chatwoot_conversation_id):
        await store.save_links(ctx.db, state.aircall_call_id, contact_id=contact_id, conversation_id=conversation_id)
    return replace(state, chatwoot_contact_id=contact_id, chatwoot_conversation_id=conversation_id)


async def _run(ctx: JobContext, chatwoot: ChatwootClient, state: CallState, step: Step) -> None:
    conversation_id, contact_id = state.chatwoot_conversation_id, state.chatwoot_contact_id
    assert conversation_id is not None and contact_id is not None
    open_keys = set(step.keys) - await replies.posted(ctx.db, step.keys)
    try:
        if isinstance(step, NoteStep):
            note = step.render(open_keys)
            if note is not None:
                content, covered = note  # marked with its own (first) key, read back after a lost outcome
                settle_s = ctx.settings.reply_settle_s
                await post_marked(
                    ctx.db, chatwoot, covered, conversation_id, "note", content, private=True, settle_s=settle_s
                )
        elif isinstance(step, FollowUpStep):
            todo = step.render(open_keys)
            if todo is not None:
                labels, priority, covered = todo

                async def follow_up() -> None:
                    await chatwoot.toggle_status(conversation_id, "open")
                    await chatwoot.add_labels(conversation_id, list(labels))
                    if priority:
                        await chatwoot.toggle_priority(conversation_id, priority)

                description = f"status open; labels {', '.join(labels)}"
                if priority:
                    description += f"; priority {priority}"
                await replies.post_once(
                    ctx.db, covered, conversation_id=conversation_id, kind="action", content=description, post=follow_up
                )
        elif step.key in open_keys:
            await _update_contact(ctx, chatwoot, state, step, contact_id)
    except ChatwootNotFound:
        if isinstance(step, ContactStep):
            await _forget_contact(ctx, state, contact_id)
        else:  # the conversation was deleted: the retry opens a new one
            await store.save_links(ctx.db, state.aircall_call_id, contact_id=contact_id, conversation_id=None)
        raise


async def _update_contact(
    ctx: JobContext, chatwoot: ChatwootClient, state: CallState, step: ContactStep, contact_id: int
) -> None:
    """last_call_at / last_call_outcome on the contact, unless a later call of theirs is already there."""
    latest = await store.is_latest_call(ctx.db, contact_id, state.aircall_call_id, state.started_at)
    description = json.dumps(step.custom_attributes, sort_keys=True)

    async def update() -> None:
        await chatwoot.update_contact(contact_id, custom_attributes=step.custom_attributes)

    async def nothing() -> None:
        return None

    await replies.post_once(
        ctx.db,
        step.keys,
        conversation_id=state.chatwoot_conversation_id,
        kind="action",
        content=description if latest else f"not applied, a later call is on the contact: {description}",
        post=update if latest else nothing,
    )


async def _forget_contact(ctx: JobContext, state: CallState, contact_id: int) -> None:
    """The contact is gone from Chatwoot (deleted or merged): drop every link so the retry finds anew."""
    log.warning("Chatwoot contact %s no longer exists; looking the caller up again", contact_id)
    await forget_contact(ctx.db, contact_id)
    await store.save_links(ctx.db, state.aircall_call_id, contact_id=None, conversation_id=None)


# ----------------------------------------------------------------------------------- voicemail, AI


async def _voicemail_untold(ctx: JobContext, state: CallState, steps: list[Step]) -> bool:
    """Whether a voicemail note is about to be posted without a transcript."""
    if not state.voicemail_asset_url or state.voicemail_transcript or state.caller_e164 is None:
        return False
    key = transforms.reply_key(state.aircall_call_id, "voicemail")
    if not any(key in step.keys for step in steps):
        return False
    return key not in await replies.posted(ctx.db, [key])


async def _transcribe(ctx: JobContext, transcriber: Transcriber, state: CallState, call: AircallCall) -> str | None:
    """Transcribe the voicemail from a fresh URL; a failure leaves the note without a transcript."""
    url = call.voicemail
    client = _aircall(ctx)
    if client is not None:
        try:
            url = await client.fresh_media_url(state.aircall_call_id, "voicemail") or url
        except AircallError as exc:
            log.warning("could not get a fresh voicemail URL for call %s: %s", state.aircall_call_id, exc)
    if not url:
        return None
    try:
        text = await transcriber(url)
    except Exception as exc:  # the note is worth more than the transcript: post it anyway
        log.warning("voicemail transcription failed for call %s: %s", state.aircall_call_id, exc)
        return None
    return text.strip() if text and text.strip() else None


async def _call_for_ai(ctx: JobContext, call_id: int, timestamp: int, event: StoredEvent) -> CallState:
    """The record of the call an AI event is about, read from the Aircall API if no call event came yet."""
    state = await store.load_call(ctx.db, call_id)
    if state is not None and state.has_call:
        return state
    client = _aircall(ctx)
    if client is not None:
        call = await client.get_call(call_id)
        snap = transforms.snapshot(call, transforms.API_SNAPSHOT, timestamp)
        return await store.merge_call(ctx.db, snap)

    received = event.received_at if event.received_at.tzinfo else event.received_at.replace(tzinfo=UTC)
    if datetime.now(UTC) - received < AI_WAIT_FOR_CALL:
        raise Defer(AI_RETRY_S)
    raise _permanent(
        f"no call event ever came for Aircall call {call_id}; set AIRCALL_API_ID and "
        "AIRCALL_API_TOKEN so the call can be read from the API"
    )


# ------------------------------------------------------------------------------------------ helpers


def _envelope(payload: dict[str, Any]) -> AircallWebhook:
    try:
        return AircallWebhook.model_validate(payload)
    except ValidationError as exc:
        raise _permanent(f"not an Aircall webhook envelope ({exc.error_count()} errors)") from None


def _model(model: type[Any], envelope: AircallWebhook) -> Any:
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise _permanent(f"Aircall {envelope.event}: unexpected data ({exc.error_count()} errors)") from None


def _ai_call_id(envelope: AircallWebhook) -> int:
    call_id = transforms.ai_call_id(envelope.data)
    if call_id is None:
        raise _permanent(f"Aircall {envelope.event} without a call id")
    return call_id


def _aircall_contact(state: CallState, call: AircallCall | None) -> AircallContact | None:
    if call is not None and call.contact is not None:
        return call.contact
    raw = state.raw.get("contact")
    try:
        return AircallContact.model_validate(raw) if isinstance(raw, dict) else None
    except ValidationError:
        return None


def _aircall(ctx: JobContext) -> AircallClient | None:
    settings = ctx.settings
    api_id, token = settings.secret("aircall_api_id"), settings.secret("aircall_api_token")
    if not api_id or not token:
        return None
    return AircallClient(ctx.http, settings.aircall_api_url, api_id, token)


def _transcriber(ctx: JobContext) -> Transcriber | None:
    """A transcriber set on the context (tests, other backends), else the worker's speech backend."""
    hook = getattr(ctx, "transcribe_voicemail", None) or getattr(ctx, "extras", {}).get("transcribe_voicemail")
    if callable(hook):
        return hook
    if not getattr(ctx.settings, "voicemail_transcripts", False):
        return None
    return transcriber_for(ctx)


def _permanent(message: str) -> Exception:

    return PermanentError(message)
