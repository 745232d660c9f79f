"""What the team taught the bot: question-and-answer pairs, and the agents' approvals of its suggestions.

This module owns `learned_answers` and `suggestion_approvals`. A pair is taught by an agent's `/teach`
note or an edited `/send`; once approved (by default the act of sending is the approval, see
LEARN_REQUIRE_APPROVAL) the worker indexes it as the property's knowledge, or as shared knowledge.
`indexed` keeps the knowledge store in step: a removed pair is unindexed by the same sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

SOURCE_PREFIX = "learned:"  # the knowledge source of pair N is "learned:N"


@dataclass(frozen=True)
class LearnedAnswer:
    id: int
    conversation_id: int | None
    question: str
    answer: str
    property_code: str | None
    shared: bool
    status: str
    indexed: bool
    created_at: datetime

    @property
    def source(self) -> str:
        return f"{SOURCE_PREFIX}{self.id}"


_COLUMNS = "id, conversation_id, question, answer, property_code, shared, status, indexed, created_at"


@dataclass(frozen=True)
class Suggestion:
    """The bot's latest copilot suggestion in a conversation (a qa_records row)."""

    qa_id: int
    question: str
    answer: str
    property_code: str | None
    created_at: datetime


async def teach(
    db: AsyncConnectionPool,
    *,
    source_message_id: int,
    conversation_id: int | None,
    question: str,
    answer: str,
    property_code: str | None,
    shared: bool,
    taught_by: int | None,
    approved: bool,
) -> LearnedAnswer | None:
    """Store a pair once per teaching note; None when that note taught already (a redelivery)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            f"""
            INSERT INTO learned_answers (source_message_id, conversation_id, question, answer, property_code, shared,
                                         status, taught_by, approved_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)
            ON CONFLICT (source_message_id) DO NOTHING
            RETURNING {_COLUMNS}
            """,
            (
                source_message_id,
                conversation_id,
                question,
                answer,
                None if shared else property_code,
                shared,
                "approved" if approved else "pending",
                taught_by,
                approved,
            ),
        )
        row = await cur.fetchone()
    return LearnedAnswer(*row) if row else None


async def approve_pending(db: AsyncConnectionPool, conversation_id: int) -> list[LearnedAnswer]:
    """Approve the conversation's pending pairs (an agent's /approve)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            f"UPDATE learned_answers SET status = 'approved', approved_at = now(), indexed = false"
            f" WHERE conversation_id = %s AND status = 'pending' RETURNING {_COLUMNS}",
            (conversation_id,),
        )
        return [LearnedAnswer(*row) for row in await cur.fetchall()]


def remove(conn: psycopg.Connection[Any], learned_id: int) -> bool:
    """Take a pair out of the knowledge (the next sync unindexes it); False when there is no such pair."""
    cur = conn.execute(
        "UPDATE learned_answers SET status = 'removed', removed_at = now(), indexed = false"
        " WHERE id = %s AND status <> 'removed'",
        (learned_id,),
    )
    return cur.rowcount == 1


def list_all(conn: psycopg.Connection[Any], *, include_removed: bool = False) -> list[LearnedAnswer]:
    where = "" if include_removed else "WHERE status <> 'removed'"
    rows = conn.execute(f"SELECT {_COLUMNS} FROM learned_answers {where} ORDER BY id").fetchall()
    return [LearnedAnswer(*row) for row in rows]


async def out_of_step(db: AsyncConnectionPool) -> list[LearnedAnswer]:
    """Pairs the knowledge store does not reflect yet: approved and not indexed, or removed and indexed once."""
    async with db.connection() as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM learned_answers WHERE NOT indexed AND status IN ('approved', 'removed')"
            " ORDER BY id"
        )
        return [LearnedAnswer(*row) for row in await cur.fetchall()]


async def mark_indexed(db: AsyncConnectionPool, learned_id: int) -> None:
    async with db.connection() as conn:
        await conn.execute("UPDATE learned_answers SET indexed = true WHERE id = %s", (learned_id,))


async def latest_suggestion(db: AsyncConnectionPool, conversation_id: int) -> Suggestion | None:
    """The bot's last copilot suggestion with an answer in this conversation."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT id, question, answer, property_code, created_at FROM qa_records"
            " WHERE conversation_id = %s AND outcome = 'suggested' AND answer IS NOT NULL ORDER BY id DESC LIMIT 1",
            (conversation_id,),
        )
        row = await cur.fetchone()
    return Suggestion(*row) if row else None


async def conversation_property(db: AsyncConnectionPool, conversation_id: int) -> str | None:
    """The property the bot last answered about in this conversation (what a /teach there is about)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT property_code FROM qa_records WHERE conversation_id = %s AND property_code IS NOT NULL"
            " ORDER BY id DESC LIMIT 1",
            (conversation_id,),
        )
        row = await cur.fetchone()
    return str(row[0]) if row else None


async def record_approval(
    db: AsyncConnectionPool,
    suggestion: Suggestion,
    *,
    conversation_id: int,
    note_message_id: int,
    approved_by: int | None,
    sent_text: str,
    at: datetime,
) -> None:
    """Remember that an agent sent this suggestion, edited or not, and how long it had waited."""
    wait_ms = max(0, round((at - suggestion.created_at).total_seconds() * 1000))
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO suggestion_approvals (qa_id, conversation_id, note_message_id, approved_by, edited,"
            " sent_text, wait_ms) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (qa_id) DO NOTHING",
            (
                suggestion.qa_id,
                conversation_id,
                note_message_id,
                approved_by,
                sent_text.strip() != suggestion.answer.strip(),
                sent_text,
                wait_ms,
            ),
        )
