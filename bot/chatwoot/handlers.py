"""Chatwoot agent-bot events and what the sidecar does with each."""

from __future__ import annotations

from bot.registry import Handler, record_only

HANDLERS: dict[str, Handler] = {
    "message_created": record_only,
    "message_updated": record_only,
    "conversation_opened": record_only,
    "conversation_resolved": record_only,
    "conversation_status_changed": record_only,
    "conversation_updated": record_only,
    "webwidget_triggered": record_only,
}
