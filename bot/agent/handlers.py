"""Chatwoot agent-bot events and what the bot does with each: the event -> handler map for "chatwoot".

The map lives with the agent rather than in integrations/chatwoot because every handler here is the bot's
behaviour; the Chatwoot folder below knows the API and the payloads, not what to say.
"""

from __future__ import annotations

from bot.agent import state
from bot.agent.after_hours import hand_to_morning
from bot.agent.answering import on_conversation_status, on_text_message, parse_message
from bot.agent.commands import is_agent_command, on_agent_command
from bot.agent.policy import classify
from bot.agent.shadow import in_shadow
from bot.agent.urgent import raise_if_urgent
from bot.agent.voice import on_message_updated, on_voice_message
from bot.context import Handler, JobContext, record_only
from bot.core.ledger import StoredEvent


async def message_created(ctx: JobContext, event: StoredEvent) -> str:
    """A guest wrote or spoke: alert on emergencies, then answer, suggest or stand down (bot.agent.policy
    decides which). An agent's private note starting with a command goes to bot.agent.commands."""
    msg = parse_message(event.payload)
    policy = ctx.inboxes.for_inbox(msg.inbox_id)
    if is_agent_command(msg):
        return await on_agent_command(ctx, msg, policy)
    if msg.message_type == "incoming" and msg.is_from_contact and not msg.is_private:
        await raise_if_urgent(ctx, msg)  # in every mode, before anything may stand the bot down
    decision = classify(msg, policy)
    conv = msg.conversation_id
    if decision.action == "human_took_over":
        await state.mark_human(ctx.db, conv, decision.reason)
        return "done"
    if decision.action == "ignore":
        return "ignored"
    known = await state.snapshot(ctx.db, conv, event.subject or f"conversation:{conv}")
    if policy.mode in ("autopilot", "shadow") and known.human_since is not None:
        return "ignored"  # a person took over; silent until the conversation is pending again
    ctx = in_shadow(ctx, msg, policy)  # after the urgent alert: shadow mode writes nothing else to Chatwoot
    if await hand_to_morning(ctx, msg, policy):  # closed, and after_hours = "handoff"
        return "done"
    if msg.audio_attachments:
        return await on_voice_message(ctx, event, msg, policy)
    return await on_text_message(ctx, event, msg, policy, known)


HANDLERS: dict[str, Handler] = {
    "message_created": message_created,
    "message_updated": on_message_updated,  # Chatwoot's own transcript of a voice note
    "conversation_opened": on_conversation_status,
    "conversation_resolved": on_conversation_status,
    "conversation_status_changed": on_conversation_status,
    "conversation_updated": record_only,
    "webwidget_triggered": record_only,
}
