"""The identity check's memory in Postgres: attempts, the lock they lead to, and proven conversations.

This module owns the tables `identity_checks` and `conversation_identity`. A conversation proven for a
booking stays proven (the booking's own windows still decide what it unlocks). Failures count per contact
and per booking over a sliding window; at VERIFY_MAX_ATTEMPTS either is locked, and while it is, even a
right answer proves nothing: a guesser gets no signal from trying on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg_pool import AsyncConnectionPool


@dataclass(frozen=True)
class Pending:
    """The gated question the bot answered with a request for the check."""

    question: str
    facts: tuple[str, ...]


async def proven_booking(db: AsyncConnectionPool, conversation_id: int) -> str | None:
    """The Guesty id of the booking this conversation was proven for, if any."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT guesty_id FROM conversation_identity WHERE conversation_id = %s", (conversation_id,)
        )
        row = await cur.fetchone()
    return str(row[0]) if row and row[0] else None


async def pending(db: AsyncConnectionPool, conversation_id: int) -> Pending | None:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT pending_question, pending_facts FROM conversation_identity"
            " WHERE conversation_id = %s AND pending_since IS NOT NULL",
            (conversation_id,),
        )
        row = await cur.fetchone()
    return Pending(row[0] or "", tuple(row[1] or ())) if row else None


async def ask(
    db: AsyncConnectionPool, conversation_id: int, contact_id: int | None, question: str, facts: Sequence[str]
) -> None:
    """Remember that the bot asked for the check, and the question to answer once it passes."""
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO conversation_identity (conversation_id, contact_id, pending_question, pending_facts,
                                               pending_since)
            VALUES (%s, %s, %s, %s, now())
            ON CONFLICT (conversation_id) DO UPDATE
               SET pending_question = EXCLUDED.pending_question, pending_facts = EXCLUDED.pending_facts,
                   pending_since = now(), updated_at = now()
            """,
            (conversation_id, contact_id, question, sorted(facts)),
        )


async def prove(
    db: AsyncConnectionPool, conversation_id: int, contact_id: int | None, guesty_id: str, message_id: int
) -> None:
    """The conversation passed the check for this booking: keep it, and drop the waiting question."""
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO conversation_identity (conversation_id, guesty_id, contact_id, verified_message_id,
                                               verified_at)
            VALUES (%s, %s, %s, %s, now())
            ON CONFLICT (conversation_id) DO UPDATE
               SET guesty_id = EXCLUDED.guesty_id, contact_id = EXCLUDED.contact_id,
                   verified_message_id = EXCLUDED.verified_message_id, verified_at = now(),
                   pending_question = NULL, pending_facts = '{}', pending_since = NULL, updated_at = now()
            """,
            (conversation_id, guesty_id, contact_id, message_id),
        )


async def record_check(
    db: AsyncConnectionPool,
    *,
    message_id: int,
    conversation_id: int,
    contact_id: int | None,
    guesty_id: str | None,
    succeeded: bool,
) -> None:
    """One attempt (once per message, so a retried job does not count twice)."""
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO identity_checks (message_id, conversation_id, contact_id, guesty_id, succeeded)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING",
            (message_id, conversation_id, contact_id, guesty_id, succeeded),
        )


async def locked(
    db: AsyncConnectionPool,
    *,
    contact_id: int | None,
    conversation_id: int,
    guesty_ids: Sequence[str],
    max_attempts: int,
    window: timedelta,
    now: datetime,
) -> bool:
    """Whether this contact (else this conversation) or any of these bookings used up its attempts."""
    since = now - window
    async with db.connection() as conn:
        if contact_id is not None:
            cur = await conn.execute(
                "SELECT count(*) FROM identity_checks WHERE NOT succeeded AND created_at > %s AND contact_id = %s",
                (since, contact_id),
            )
        else:
            cur = await conn.execute(
                "SELECT count(*) FROM identity_checks WHERE NOT succeeded AND created_at > %s AND conversation_id = %s",
                (since, conversation_id),
            )
        row = await cur.fetchone()
        if row is not None and int(row[0]) >= max_attempts:
            return True
        if not guesty_ids:
            return False
        cur = await conn.execute(
            "SELECT count(*) FROM identity_checks WHERE NOT succeeded AND created_at > %s"
            " AND guesty_id = ANY(%s) GROUP BY guesty_id ORDER BY 1 DESC LIMIT 1",
            (since, list(guesty_ids)),
        )
        row = await cur.fetchone()
    return row is not None and int(row[0]) >= max_attempts
