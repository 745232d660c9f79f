"""The reply ledger: everything the sidecar posts to Chatwoot, at most once per purpose.

This module owns the `bot_replies` table; nothing else reads or writes its rows. Each post has a reply
key ("answer:9120", "handoff-note:9120", "aircall:123:outcome", "guesty:<id>:status:…"). The states:

- pending  claimed (or planned ahead, see `plan`) and not posted yet: posting it is allowed;
- posted   Chatwoot accepted it; it is never posted again, whatever retries or redeliveries come;
- failed   the post raised; a later run may try again;
- skipped  there was nowhere to post it (e.g. a booking note without a conversation), for good.

One post may settle several keys at once (an Aircall note covering the events it summarises): it runs
unless every key is posted already, and marks them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

# What a post returns: Chatwoot's created message, its id, or nothing (an action such as a status change).
Post = Callable[[], Awaitable[Mapping[str, Any] | int | None]]


async def posted(db: AsyncConnectionPool, keys: Iterable[str]) -> set[str]:
    """The keys among `keys` posted already."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    async with db.connection() as conn:
        cur = await conn.execute("SELECT reply_key FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'",
                                 (wanted,))
        return {row[0] for row in await cur.fetchall()}


async def any_posted(db: AsyncConnectionPool, keys: Iterable[str]) -> bool:
    """Whether any of these replies was posted already."""
    return bool(await posted(db, keys))


async def posted_contents(db: AsyncConnectionPool, keys: Iterable[str]) -> dict[str, str | None]:
    """The text of each posted reply among `keys` (None once purged)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, content FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'",
            (list(keys),))
        return {key: content for key, content in await cur.fetchall()}


async def post_once(db: AsyncConnectionPool, keys: str | Sequence[str], *, conversation_id: int | None, kind: str,
                    content: str | None, post: Post) -> bool:
    """Run `post` unless every key is posted already; return True when it posted now.

    On failure the keys not yet posted are marked failed (a retry may post them) and the error propagates.
    """
    wanted = [keys] if isinstance(keys, str) else list(dict.fromkeys(keys))
    async with db.connection() as conn:
        for key in wanted:
            await conn.execute(
                """
                INSERT INTO bot_replies (reply_key, conversation_id, kind, content, status)
                VALUES (%s, %s, %s, %s, 'pending')
                ON CONFLICT (reply_key) DO UPDATE
                   SET conversation_id = coalesce(EXCLUDED.conversation_id, bot_replies.conversation_id),
                       kind = EXCLUDED.kind, content = EXCLUDED.content, status = 'pending'
                 WHERE bot_replies.status <> 'posted'
                """,
                (key, conversation_id, kind, content),
            )
        cur = await conn.execute("SELECT count(*) FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'",
                                 (wanted,))
        row = await cur.fetchone()
    if row is not None and row[0] == len(wanted):
        return False
    try:
        created = await post()
    except BaseException:
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE bot_replies SET status = 'failed' WHERE reply_key = ANY(%s) AND status <> 'posted'", (wanted,))
        raise
    message_id = created.get("id") if isinstance(created, Mapping) else created
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE bot_replies SET status = 'posted', posted_at = now(), chatwoot_message_id = %s"
            " WHERE reply_key = ANY(%s) AND status <> 'posted'",
            (message_id if isinstance(message_id, int) else None, wanted),
        )
    return True


async def plan(conn: psycopg.AsyncConnection[Any], key: str, *, kind: str, content: str) -> None:
    """Record a post to make later, inside the caller's transaction (so it exists iff the change does)."""
    await conn.execute("INSERT INTO bot_replies (reply_key, kind, content) VALUES (%s, %s, %s)"
                       " ON CONFLICT (reply_key) DO NOTHING", (key, kind, content))


async def planned(db: AsyncConnectionPool, prefix: str) -> list[tuple[str, str]]:
    """(key, content) of the posts planned under `prefix` and still to make: pending, or failed on a
    known conversation (a retry), oldest first."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, content FROM bot_replies WHERE starts_with(reply_key, %s)"
            " AND (status = 'pending' OR (status = 'failed' AND conversation_id IS NOT NULL)) ORDER BY id",
            (prefix,))
        return [(key, content) for key, content in await cur.fetchall()]


async def attach(db: AsyncConnectionPool, keys: Sequence[str], conversation_id: int) -> None:
    """Say where planned posts go."""
    async with db.connection() as conn:
        await conn.execute("UPDATE bot_replies SET conversation_id = %s WHERE reply_key = ANY(%s)"
                           " AND status <> 'posted'", (conversation_id, list(keys)))


async def skip(db: AsyncConnectionPool, keys: Sequence[str]) -> None:
    """Give up planned posts that have nowhere to go."""
    async with db.connection() as conn:
        await conn.execute("UPDATE bot_replies SET status = 'skipped' WHERE reply_key = ANY(%s)"
                           " AND status <> 'posted'", (list(keys),))


def forget_contents(conn: psycopg.Connection[Any], *, before: datetime, kinds: Sequence[str],
                    keys: Sequence[str]) -> int:
    """Drop the text of replies older than `before` that are of `kinds` or among `keys` (retention), keeping
    the rows, which are what stops a re-post."""
    cur = conn.execute("UPDATE bot_replies SET content = NULL WHERE content IS NOT NULL AND created_at < %s"
                       " AND (kind = ANY(%s) OR reply_key = ANY(%s))", (before, list(kinds), list(keys)))
    return cur.rowcount
