"""Reading a conversation back for a post of ours whose outcome was lost, for the reply ledger.

Every message the sidecar posts carries its reply key in `content_attributes.sidecar_reply_key`
(ChatwootClient.post_message's `marker`). When a post timed out or got a 5xx after Chatwoot may have saved
it, bot.core.replies calls the finder made here before posting again: found, the key is recorded as
posted; not found, the message is posted.
"""

from __future__ import annotations

import logging
from datetime import datetime

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
