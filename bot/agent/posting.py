"""Posting a text message to Chatwoot once: keyed in the reply ledger, marked with its key, read back.

Every text the agent posts goes through `post_text`: the key is claimed in bot_replies, the message carries
the key in `content_attributes.sidecar_reply_key`, and a post whose outcome was lost (a timeout, a 5xx, a
worker killed mid-post) is looked for in the conversation before it is sent again.
"""

from __future__ import annotations

from bot.context import JobContext
from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.readback import post_marked


async def post_text(
    ctx: JobContext, cw: ChatwootClient, key: str, conversation_id: int, kind: str, content: str, *, private: bool
) -> bool:
    """Post a message once under `key`, marked with the key so a lost outcome can be read back."""
    return await post_marked(
        ctx.db, cw, key, conversation_id, kind, content, private=private, settle_s=ctx.settings.reply_settle_s
    )
