"""The properties a guest may name, and the question waiting for "which one?", in Postgres.

This module owns the table `property_questions`; it only reads `properties` (the Guesty mirror writes it).
A waiting question is taken by the guest's next message at most once; a retried job of that same message
takes it again, so a retry still answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

# A guest who does not answer "which one?" within this time has moved on; the question is dropped.
WAITS_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class PropertyRow:
    """How the Guesty mirror names one active property (no address: that is not ours to match on)."""

    code: str
    name: str | None
    nickname: str | None
    title: str | None


@dataclass(frozen=True)
class Parked:
    """The question that waits for the guest to say which property they mean."""

    question: str
    candidates: tuple[str, ...]


async def active_properties(db: AsyncConnectionPool) -> list[PropertyRow]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT code, name, nickname, raw->>'title' FROM properties WHERE active ORDER BY code"
        )
        return [PropertyRow(*row) for row in await cur.fetchall()]


async def park(
    db: AsyncConnectionPool,
    *,
    conversation_id: int,
    contact_id: int | None,
    message_id: int,
    question: str,
    candidates: Sequence[str],
) -> None:
    """Remember the question the bot answered with "which one?" (a newer one replaces it)."""
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO property_questions (conversation_id, contact_id, question, candidates, asked_message_id)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (conversation_id) DO UPDATE
               SET contact_id = EXCLUDED.contact_id, question = EXCLUDED.question,
                   candidates = EXCLUDED.candidates, asked_message_id = EXCLUDED.asked_message_id,
                   answered_by = NULL, created_at = now()
            """,
            (conversation_id, contact_id, question, list(candidates), message_id),
        )


async def take(db: AsyncConnectionPool, conversation_id: int, message_id: int) -> Parked | None:
    """The waiting question for a later guest message, marked as answered by it (idempotent per message)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE property_questions SET answered_by = %(mid)s
             WHERE conversation_id = %(conv)s AND asked_message_id < %(mid)s
               AND (answered_by IS NULL OR answered_by = %(mid)s) AND created_at > now() - %(waits)s
            RETURNING question, candidates
            """,
            {"conv": conversation_id, "mid": message_id, "waits": WAITS_FOR},
        )
        row = await cur.fetchone()
    return Parked(str(row[0]), tuple(row[1] or ())) if row else None
