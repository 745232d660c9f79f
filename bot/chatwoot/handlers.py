"""Chatwoot agent-bot events and what the sidecar does with each."""

from __future__ import annotations

from bot.jobs import JobContext
from bot.ledger import StoredEvent
from bot.registry import Handler, record_only


async def message_created(ctx: JobContext, event: StoredEvent) -> str | None:
    from bot.chatwoot.answering import on_message_created  # heavy imports stay out of the web process

    return await on_message_created(ctx, event)


async def message_updated(ctx: JobContext, event: StoredEvent) -> str | None:
    from bot.chatwoot.voice import on_message_updated  # Chatwoot's own transcript of a voice note

    return await on_message_updated(ctx, event)


async def conversation_status(ctx: JobContext, event: StoredEvent) -> str | None:
    from bot.chatwoot.answering import on_conversation_status

    return await on_conversation_status(ctx, event)


HANDLERS: dict[str, Handler] = {
    "message_created": message_created,
    "message_updated": message_updated,
    "conversation_opened": conversation_status,
    "conversation_resolved": conversation_status,
    "conversation_status_changed": conversation_status,
    "conversation_updated": record_only,
    "webwidget_triggered": record_only,
}
