"""Posting a message to Chatwoot once, and reading a conversation back for a post whose outcome was lost.

Every message the sidecar posts carries its reply key in `content_attributes.sidecar_reply_key`
(ChatwootClient.post_message's `marker`). When a post timed out or got a 5xx after Chatwoot may have saved
it, bot.core.replies calls the finder made here before posting again: found, the key is recorded as
posted; not found, the message is posted. `post_marked` is that whole round for a text message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from bot.core import replies
from integrations.chatwoot.client import ChatwootAuthError, ChatwootClient, ChatwootConfigError, ChatwootNotFound

log = logging.getLogger("sidecar.chatwoot")


def reply_finder(
    cw: ChatwootClient, key: str, conversation_id: int, *, private: bool, by_text: bool = True
) -> replies.Find:
    """How the reply ledger looks for a message of ours whose post has no known outcome: by its marker, or
    (`by_text`, for a Chatwoot that drops the marker) by its exact text since the attempt."""

    async def find(since: datetime, sent: str | None) -> int | None:
        text = sent if by_text else None
        try:
            return await cw.find_reply(conversation_id, key, content=text, private=private, since=since)
        except (ChatwootConfigError, ChatwootAuthError, ChatwootNotFound) as exc:
            # This Chatwoot cannot be read back (no CHATWOOT_API_TOKEN, bot token before 4.15): at least once.
            log.warning(
                "cannot read the conversation back; posting again",
                extra={"conversation_id": conversation_id, "reply_key": key, "error": str(exc)[:200]},
            )
            return None

    return find


async def post_marked(
    db: AsyncConnectionPool,
    cw: ChatwootClient,
    keys: str | Sequence[str],
    conversation_id: int,
    kind: str,
    content: str,
    *,
    private: bool,
    settle_s: float = replies.SETTLE_SECONDS,
) -> bool:
    """Post a text message (or private note) once under `keys`, marked with the first key so that a lost
    outcome is read back instead of posted again; True when it posted now (bot.core.replies.post_once)."""
    marker = keys if isinstance(keys, str) else keys[0]
    return await replies.post_once(
        db,
        keys,
        conversation_id=conversation_id,
        kind=kind,
        content=content,
        post=lambda: cw.post_message(conversation_id, content, private=private, marker=marker),
        find=reply_finder(cw, marker, conversation_id, private=private),
        settle_s=settle_s,
    )
