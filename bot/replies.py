"""Posting to Chatwoot at most once per purpose, whatever retries and redeliveries happen.

Each message the sidecar posts has a reply key ("answer:9120", "handoff:9120", "aircall:123:call.ended").
The key is claimed in bot_replies before posting and marked posted after; a retried job finds the key
posted and skips. The narrow gap (posted in Chatwoot, crash before marking) is closed on retry by the
echo_id we send, which lets an operator match the two; it cannot post twice unless the crash lands
exactly there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool


async def any_posted(db: AsyncConnectionPool, reply_keys: list[str]) -> bool:
    """Whether any of these replies was posted already."""
    async with db.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'",
                                 (reply_keys,))
        return await cur.fetchone() is not None


async def post_once(
    db: AsyncConnectionPool,
    reply_key: str,
    *,
    conversation_id: int | None,
    kind: str,
    content: str | None,
    post: Callable[[], Awaitable[dict[str, Any]]],
) -> bool:
    """Run `post` unless this reply key was posted before; return True when it posted now."""
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO bot_replies (reply_key, conversation_id, kind, content)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (reply_key) DO NOTHING
            """,
            (reply_key, conversation_id, kind, content),
        )
        cur = await conn.execute("SELECT status FROM bot_replies WHERE reply_key = %s", (reply_key,))
        row = await cur.fetchone()
    if row and row[0] == "posted":
        return False
    try:
        created = await post()
    except Exception:
        async with db.connection() as conn:
            await conn.execute("UPDATE bot_replies SET status = 'failed' WHERE reply_key = %s AND status <> 'posted'",
                               (reply_key,))
        raise
    message_id = created.get("id") if isinstance(created, dict) else None
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE bot_replies SET status = 'posted', posted_at = now(), chatwoot_message_id = %s"
            " WHERE reply_key = %s",
            (message_id if isinstance(message_id, int) else None, reply_key),
        )
    return True
