"""The reply ledger: everything the sidecar posts to Chatwoot, at most once per purpose.

This module owns the `bot_replies` table; nothing else reads or writes its rows. Each post has a reply
key ("answer:9120", "handoff-note:9120", "aircall:123:outcome", "guesty:<id>:status:…"). The states:

- pending  claimed (or planned ahead, see `plan`) and not posted yet: posting it is allowed. A pending
           key with `attempted_at` set was being posted when its process died: it counts as unknown;
- posted   Chatwoot accepted it; it is never posted again, whatever retries or redeliveries come;
- failed   the post was refused or never reached Chatwoot; a later run may try again;
- unknown  the post was sent but its outcome was never learned (a timeout, a 5xx, a reset connection, a
           cancelled job): Chatwoot may have saved it. Before it is posted again the caller's `find` reads
           the conversation back for our own message (see integrations.chatwoot.client.REPLY_MARKER);
           found, the key becomes posted with that message's id; not found, it is posted;
- skipped  there was nowhere to post it (e.g. a booking note without a conversation), for good.

A key in doubt is read back only once its last attempt is `settle_s` old (the request timeout), so a
request still on its way cannot be missed; until then the job is deferred (bot.errors.Defer).

One post may settle several keys at once (an Aircall note covering the events it summarises): it runs
unless every key is posted already, and marks them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.errors import Defer, UpstreamTransient

log = logging.getLogger("sidecar.replies")

# What a post returns: Chatwoot's created message, its id, or nothing (an action such as a status change).
Post = Callable[[], Awaitable[Mapping[str, Any] | int | None]]
# Looks for a post whose outcome is unknown: given when the attempt started and the text sent then,
# the id of our message in Chatwoot, or None when it is not there.
Find = Callable[[datetime, str | None], Awaitable[int | None]]

SETTLE_SECONDS = 25.0  # the Chatwoot client's read timeout (20 s) and a margin: a request sent is over by then


_IN_DOUBT = (
    "(bot_replies.status = 'unknown' OR (bot_replies.status = 'pending' AND bot_replies.attempted_at IS NOT NULL))"
)


@dataclass(frozen=True)
class KeyState:
    """One key's row: its status, what was (or is to be) posted, when its last post began."""

    status: str
    content: str | None
    attempted_at: datetime | None

    @property
    def in_doubt(self) -> bool:
        """Sent with no known outcome: marked unknown, or pending with an attempt begun (the process died)."""
        return self.status == "unknown" or (self.status == "pending" and self.attempted_at is not None)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a post that raised `exc` may still have been saved by Chatwoot.

    Transient upstream failures (timeouts, 5xx, a connection reset after sending) and cancellation (a job
    timeout, a shutdown) leave it open; a refusal (4xx), or a transient failure that shows the request was
    not processed (connection refused, 429, 503: `not_processed`), means nothing was saved."""
    if isinstance(exc, UpstreamTransient):
        return not getattr(exc, "not_processed", False)
    return isinstance(exc, asyncio.CancelledError | TimeoutError) or not isinstance(exc, Exception)


async def states(db: AsyncConnectionPool, keys: Iterable[str]) -> dict[str, KeyState]:
    """The rows of `keys` that exist."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, status, content, attempted_at FROM bot_replies WHERE reply_key = ANY(%s)",
            (list(dict.fromkeys(keys)),),
        )
        return {key: KeyState(status, content, attempted) for key, status, content, attempted in await cur.fetchall()}


async def posted(db: AsyncConnectionPool, keys: Iterable[str]) -> set[str]:
    """The keys among `keys` posted already."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'", (wanted,)
        )
        return {row[0] for row in await cur.fetchall()}


async def any_posted(db: AsyncConnectionPool, keys: Iterable[str]) -> bool:
    """Whether any of these replies was posted already."""
    return bool(await posted(db, keys))


async def posted_contents(db: AsyncConnectionPool, keys: Iterable[str]) -> dict[str, str | None]:
    """The text of each posted reply among `keys` (None once purged)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, content FROM bot_replies WHERE reply_key = ANY(%s) AND status = 'posted'", (list(keys),)
        )
        return {key: content for key, content in await cur.fetchall()}


async def settle(
    db: AsyncConnectionPool, keys: str | Sequence[str], find: Find | None, *, settle_s: float = SETTLE_SECONDS
) -> bool:
    """Resolve keys whose post has no known outcome; True when they turned out posted (or were already).

    Raises Defer while the last attempt is younger than `settle_s`. Without `find` nothing can be read
    back: the next post sends again at once (at least once rather than never)."""
    wanted = [keys] if isinstance(keys, str) else list(dict.fromkeys(keys))
    found = await states(db, wanted)
    if found and all(s.status == "posted" for s in found.values()) and len(found) == len(wanted):
        return True
    doubtful = [s for s in found.values() if s.in_doubt]
    if not doubtful:
        return False
    if find is None:  # an idempotent action (labels, status), or a caller that cannot read back
        log.info("outcome unknown and not read back; doing it again", extra={"reply_keys": wanted})
        return False
    last = max(s.attempted_at or datetime.now(UTC) for s in doubtful)
    wait = settle_s - (datetime.now(UTC) - last).total_seconds()
    if wait > 0:
        raise Defer(wait)  # the earlier request may still be landing: read back once it cannot be
    sent = next((s.content for s in doubtful if s.content is not None), None)
    message_id = await find(last, sent)
    if message_id is None:
        log.info("reply in doubt was not saved by Chatwoot; posting it", extra={"reply_keys": wanted})
        return False
    await _mark_posted(db, wanted, message_id)
    log.info("reply in doubt was found in Chatwoot", extra={"reply_keys": wanted, "message_id": message_id})
    return True


# post_once's first step, in one round trip: record every key not posted yet as pending and, when none of
# them is in doubt (the common case: a fresh reply), begin the attempt at once (attempted_at). A key in
# doubt keeps its status, attempt time and sent text until it is read back. Returns whether any key was in
# doubt before, and how many keys are not posted (0: nothing to do).
_CLAIM_SQL = f"""
WITH prior AS (
    SELECT coalesce(bool_or({_IN_DOUBT}), false) AS in_doubt
      FROM bot_replies WHERE reply_key = ANY(%(keys)s)
), upsert AS (
    INSERT INTO bot_replies (reply_key, conversation_id, kind, content, status, attempted_at)
    SELECT key, %(conversation_id)s, %(kind)s, %(content)s, 'pending',
           CASE WHEN (SELECT in_doubt FROM prior) THEN NULL ELSE now() END
      FROM unnest(%(keys)s::text[]) AS key
    ON CONFLICT (reply_key) DO UPDATE
       SET conversation_id = coalesce(EXCLUDED.conversation_id, bot_replies.conversation_id),
           kind = EXCLUDED.kind,
           content = CASE WHEN {_IN_DOUBT} THEN bot_replies.content ELSE EXCLUDED.content END,
           status = CASE WHEN {_IN_DOUBT} THEN bot_replies.status ELSE 'pending' END,
           attempted_at = CASE WHEN {_IN_DOUBT} THEN bot_replies.attempted_at ELSE EXCLUDED.attempted_at END
     WHERE bot_replies.status <> 'posted'
    RETURNING reply_key
)
SELECT (SELECT in_doubt FROM prior), (SELECT count(*) FROM upsert)
"""


async def post_once(
    db: AsyncConnectionPool,
    keys: str | Sequence[str],
    *,
    conversation_id: int | None,
    kind: str,
    content: str | None,
    post: Post,
    find: Find | None = None,
    settle_s: float = SETTLE_SECONDS,
) -> bool:
    """Run `post` unless every key is posted already; return True when it posted now.

    A key in doubt (see `settle`) is read back with `find` first and posted only if Chatwoot does not have
    it. On failure the keys not yet posted are marked failed, or unknown when the request may have been
    saved (`outcome_unknown`), and the error propagates.
    """
    wanted = [keys] if isinstance(keys, str) else list(dict.fromkeys(keys))
    async with db.connection() as conn:
        cur = await conn.execute(
            _CLAIM_SQL, {"keys": wanted, "conversation_id": conversation_id, "kind": kind, "content": content}
        )
        row = await cur.fetchone()
    assert row is not None
    in_doubt, unposted = bool(row[0]), int(row[1])
    if not unposted:
        return False  # every key was posted already
    if in_doubt:  # read back first; the attempt begins only if Chatwoot does not have it
        if await settle(db, wanted, find, settle_s=settle_s):
            return False
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE bot_replies SET status = 'pending', attempted_at = now(), content = %s"
                " WHERE reply_key = ANY(%s) AND status <> 'posted'",
                (content, wanted),
            )
    try:
        created = await post()
    except BaseException as exc:
        status = "unknown" if outcome_unknown(exc) else "failed"
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE bot_replies SET status = %s WHERE reply_key = ANY(%s) AND status <> 'posted'", (status, wanted)
            )
        raise
    message_id = created.get("id") if isinstance(created, Mapping) else created
    await _mark_posted(db, wanted, message_id if isinstance(message_id, int) else None)
    return True


async def _mark_posted(db: AsyncConnectionPool, keys: Sequence[str], message_id: int | None) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE bot_replies SET status = 'posted', posted_at = now(), chatwoot_message_id = %s"
            " WHERE reply_key = ANY(%s) AND status <> 'posted'",
            (message_id, list(keys)),
        )


async def plan_steps(db: AsyncConnectionPool, steps: Sequence[tuple[str, str, str]], *, conversation_id: int) -> None:
    """Record (key, kind, content) steps to take, in one transaction: a plan that exists whole or not at all,
    so a retry can tell a half-done plan from one never begun. Existing keys are left as they are."""
    async with db.connection() as conn, conn.transaction():
        for key, kind, content in steps:
            await conn.execute(
                "INSERT INTO bot_replies (reply_key, conversation_id, kind, content)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (reply_key) DO NOTHING",
                (key, conversation_id, kind, content),
            )


async def plan(conn: psycopg.AsyncConnection[Any], key: str, *, kind: str, content: str) -> None:
    """Record a post to make later, inside the caller's transaction (so it exists iff the change does)."""
    await conn.execute(
        "INSERT INTO bot_replies (reply_key, kind, content) VALUES (%s, %s, %s) ON CONFLICT (reply_key) DO NOTHING",
        (key, kind, content),
    )


async def planned(db: AsyncConnectionPool, prefix: str) -> list[tuple[str, str]]:
    """(key, content) of the posts planned under `prefix` and still to make: pending, or failed or in doubt
    on a known conversation (a retry), oldest first."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, content FROM bot_replies WHERE starts_with(reply_key, %s)"
            " AND (status = 'pending' OR (status IN ('failed', 'unknown') AND conversation_id IS NOT NULL))"
            " ORDER BY id",
            (prefix,),
        )
        return [(key, content) for key, content in await cur.fetchall()]


async def attach(db: AsyncConnectionPool, keys: Sequence[str], conversation_id: int) -> None:
    """Say where planned posts go."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE bot_replies SET conversation_id = %s WHERE reply_key = ANY(%s) AND status <> 'posted'",
            (conversation_id, list(keys)),
        )


async def skip(db: AsyncConnectionPool, keys: Sequence[str]) -> None:
    """Give up planned posts that have nowhere to go."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE bot_replies SET status = 'skipped' WHERE reply_key = ANY(%s) AND status <> 'posted'", (list(keys),)
        )


def forget_contents(
    conn: psycopg.Connection[Any], *, before: datetime, kinds: Sequence[str], keys: Sequence[str]
) -> int:
    """Drop the text of replies older than `before` that are of `kinds` or among `keys` (retention), keeping
    the rows, which are what stops a re-post."""
    cur = conn.execute(
        "UPDATE bot_replies SET content = NULL WHERE content IS NOT NULL AND created_at < %s"
        " AND (kind = ANY(%s) OR reply_key = ANY(%s))",
        (before, list(kinds), list(keys)),
    )
    return cur.rowcount
