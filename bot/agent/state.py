"""Per-conversation memory in Postgres: has a person taken over, and what did the bot answer last."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

HISTORY_LIMIT = 200  # at most this many of a conversation's newest messages are read (a burst, recent turns)
RECENT_TURNS = 50  # the newest messages searched for the model's recent turns (notes and events among them)

# A conversation's newest message_created payloads (at most %(limit)s), each with its message id and its
# rank (1: the newest).
_NEWEST = """
SELECT payload, (payload->>'id')::bigint AS message_id,
       row_number() OVER (ORDER BY (payload->>'id')::bigint DESC) AS rank
  FROM operational_events
 WHERE subject = %(subject)s AND source = 'chatwoot' AND event_type = 'message_created'
 ORDER BY message_id DESC
 LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Snapshot:
    """What the ledger knows of a conversation as one of its messages is handled."""

    human_since: datetime | None  # a person took over at this time: the autopilot stays silent
    last_answered: int  # the newest guest message the bot answered (0: none yet)
    # Oldest first: the messages after last_answered (the burst) and the RECENT_TURNS newest (the history).
    messages: list[dict[str, Any]]


async def snapshot(db: AsyncConnectionPool, conversation_id: int, subject: str) -> Snapshot:
    """The conversation's state and the messages its answer needs, in one round trip: every guest message
    waits for this read before its answer begins."""
    async with db.connection() as conn:
        cur = await conn.execute(
            f"""
            SELECT s.human_since, s.last_answered_message_id,
                   ARRAY(SELECT payload FROM ({_NEWEST}) newest
                          WHERE rank <= %(recent)s OR message_id > coalesce(s.last_answered_message_id, 0)
                          ORDER BY message_id)
              FROM (SELECT 1) one LEFT JOIN conversation_state s ON s.conversation_id = %(conversation)s
            """,
            {"subject": subject, "limit": HISTORY_LIMIT, "recent": RECENT_TURNS, "conversation": conversation_id},
        )
        row = await cur.fetchone()
    assert row is not None
    return Snapshot(row[0], int(row[1] or 0), list(row[2]))


async def human_since(db: AsyncConnectionPool, conversation_id: int) -> Any | None:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT human_since FROM conversation_state WHERE conversation_id = %s", (conversation_id,)
        )
        row = await cur.fetchone()
    return row[0] if row else None


async def mark_human(db: AsyncConnectionPool, conversation_id: int, reason: str) -> None:
    """A person handles the conversation now: the bot stays silent until it is pending again."""
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO conversation_state (conversation_id, human_since, human_reason)
            VALUES (%s, now(), %s)
            ON CONFLICT (conversation_id) DO UPDATE
               SET human_since = coalesce(conversation_state.human_since, now()),
                   human_reason = EXCLUDED.human_reason, updated_at = now()
            """,
            (conversation_id, reason),
        )


async def clear_human(db: AsyncConnectionPool, conversation_id: int) -> None:
    """The conversation is back with the bot (pending again, or resolved and waiting for a new message)."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE conversation_state SET human_since = NULL, human_reason = NULL, updated_at = now()"
            " WHERE conversation_id = %s",
            (conversation_id,),
        )


async def set_last_answered(
    db: AsyncConnectionPool, conversation_id: int, message_id: int, inbox_id: int | None, contact_id: int | None
) -> None:
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO conversation_state (conversation_id, inbox_id, contact_id, last_answered_message_id)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (conversation_id) DO UPDATE
               SET last_answered_message_id = greatest(conversation_state.last_answered_message_id,
                                                       EXCLUDED.last_answered_message_id),
                   inbox_id = coalesce(EXCLUDED.inbox_id, conversation_state.inbox_id),
                   contact_id = coalesce(EXCLUDED.contact_id, conversation_state.contact_id),
                   updated_at = now()
            """,
            (conversation_id, inbox_id, contact_id, message_id),
        )


async def message_payloads(
    db: AsyncConnectionPool, subject: str, *, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """The newest `limit` message_created payloads of one conversation from our ledger, oldest first."""
    async with db.connection() as conn:
        cur = await conn.execute(
            f"SELECT payload FROM ({_NEWEST}) newest ORDER BY message_id", {"subject": subject, "limit": limit}
        )
        return [row[0] for row in await cur.fetchall()]
