"""Shadow mode: the bot does everything but post, so an operator can judge it on real traffic first.

A shadow-mode inbox is answered exactly as autopilot would answer it (bot.agent.policy applies autopilot's
rules: pending conversations no person has taken over), but the job's Chatwoot client is swapped for
`ShadowChatwoot`: reads (the conversation re-check, labels, history) still go to Chatwoot, and every write
(replies, notes, labels, status changes; any other call as its method, path and body) is kept in bot.core.shadow_replies
instead. The typing indicator is dropped. The reply ledger still records the keys as posted, so a
redelivered message is not answered twice. Urgent alerts are raised before the swap (bot.agent.handlers)
and so still reach people in shadow mode, as in every other mode.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bot.context import JobContext
from bot.core.shadow_replies import Held, ShadowAnswer, hold
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import ChatwootClient, TokenKind
from integrations.chatwoot.models import MessageEvent


class ShadowChatwoot(ChatwootClient):
    """A Chatwoot client that reads from Chatwoot and writes into the shadow_replies table."""

    def __init__(self, real: ChatwootClient, ctx: JobContext, where: Held) -> None:
        # Same connection, tokens and retries as the real client, for the reads it passes through.
        self.__dict__.update(real.__dict__)
        self.real = real
        self._ctx = ctx
        self._where = where

    async def _hold(self, action: str, content: str | None) -> int:
        return await hold(self._ctx.db, self._where, action, content)

    async def post_message(
        self,
        conversation_id: int,
        content: str,
        *,
        private: bool = False,
        content_attributes: dict[str, Any] | None = None,
        echo_id: str | None = None,
        marker: str | None = None,
    ) -> dict[str, Any]:
        row = await self._hold("note" if private else "reply", content)
        return {"id": None, "shadow_id": row, "content": content, "private": private}

    async def post_attachment(
        self,
        conversation_id: int,
        content: str | None,
        files: list[tuple[str, bytes, str]],
        *,
        private: bool = False,
        is_voice_message: bool = False,
        marker: str | None = None,
    ) -> dict[str, Any]:
        names = ", ".join(name for name, _, _ in files)
        row = await self._hold("note-attachment" if private else "reply-attachment", f"{content or ''} [{names}]")
        return {"id": None, "shadow_id": row}

    async def toggle_status(
        self, conversation_id: int, status: str, *, snoozed_until: int | None = None
    ) -> dict[str, Any]:
        await self._hold("status", status if snoozed_until is None else f"{status} until {snoozed_until}")
        return {"success": True, "conversation_id": conversation_id, "current_status": status}

    async def toggle_typing(self, conversation_id: int, on: bool) -> None:
        return None  # cosmetic, and too noisy to keep

    async def add_labels(self, conversation_id: int, labels: list[str]) -> list[str]:
        await self._hold("labels", ", ".join(labels))  # no read first: nothing will be merged
        return labels

    async def _request(
        self, method: str, path: str, token: TokenKind, *, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        """Reads go to Chatwoot; any other write (priority, attributes, contacts...) is kept, never sent."""
        if method == "GET":
            return await super()._request(method, path, token, idempotent=idempotent, **kwargs)
        body = kwargs.get("json")
        await self._hold(f"{method} {path}", json.dumps(body, sort_keys=True, default=str) if body else None)
        return {}


def in_shadow(ctx: JobContext, msg: MessageEvent, policy: InboxPolicy) -> JobContext:
    """The job context to handle `msg` with: the same one, or for a shadow inbox one whose Chatwoot only reads."""
    if policy.mode != "shadow" or ctx.chatwoot is None or isinstance(ctx.chatwoot, ShadowChatwoot):
        return ctx
    where = Held(inbox_id=msg.inbox_id, conversation_id=msg.conversation_id, message_id=msg.id)
    return dataclasses.replace(ctx, chatwoot=ShadowChatwoot(ctx.chatwoot, ctx, where))


def unshadowed(cw: ChatwootClient | None) -> ChatwootClient | None:
    """The client that really posts: for what must reach people whatever the mode (urgent alerts)."""
    return cw.real if isinstance(cw, ShadowChatwoot) else cw


def render(found: list[ShadowAnswer]) -> str:
    """`sidecar replies list`: each question, what the bot decided and would have sent, its sources and latency."""
    if not found:
        return "No shadow-mode answers in this period."
    blocks = []
    for a in found:
        head = (
            f"{a.created_at:%Y-%m-%d %H:%M} inbox {a.inbox_id} conversation {a.conversation_id}"
            f" message {','.join(map(str, a.message_ids))}: {a.decision}"
        )
        head += (f" ({a.reason})" if a.reason else "") + (f", {a.latency_ms} ms" if a.latency_ms is not None else "")
        lines = [head, f"  Q: {a.question}"]
        if a.answer is not None:
            lines.append(f"  A: {a.answer}")
        lines.append(f"  Sources: {'; '.join(a.sources) or 'none'}")
        lines += [f"  would {action}: {content}" for action, content in a.would_send]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
