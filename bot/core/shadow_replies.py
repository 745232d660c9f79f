"""What the bot would have sent in a shadow-mode inbox: kept here instead of being posted to Chatwoot.

This module owns the `shadow_replies` table: one row per call the bot held back (a public reply, a private
note, labels, a status change, the typing indicator, a custom attribute), keyed by the guest message being
handled. `answers` joins them to the Q&A records of shadow mode (question, answer, sources, decision,
reason, latency), so an operator can judge the bot on real traffic before letting it post.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


@dataclass(frozen=True)
class Held:
    """Where a held-back call belongs: the guest message the bot was handling."""

    inbox_id: int | None
    conversation_id: int
    message_id: int


@dataclass(frozen=True)
class ShadowAnswer:
    """One shadow answer: what the guest asked, what the bot decided, and what it would have sent."""

    created_at: datetime
    inbox_id: int | None
    conversation_id: int
    message_ids: list[int]
    question: str
    answer: str | None
    sources: list[str]
    decision: str
    reason: str | None
    latency_ms: int | None
    would_send: list[tuple[str, str | None]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "inbox_id": self.inbox_id,
            "conversation_id": self.conversation_id,
            "message_ids": self.message_ids,
            "question": self.question,
            "answer": self.answer,
            "sources": self.sources,
            "decision": self.decision,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "would_send": [{"action": a, "content": c} for a, c in self.would_send],
        }


async def hold(db: AsyncConnectionPool, where: Held, action: str, content: str | None) -> int:
    """Keep one call the bot would have made; returns the row id."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO shadow_replies (inbox_id, conversation_id, message_id, action, content)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (where.inbox_id, where.conversation_id, where.message_id, action, content),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def answers(
    db: AsyncConnectionPool, since: datetime, inbox_id: int | None = None, limit: int = 200
) -> list[ShadowAnswer]:
    """Shadow-mode answers since `since`, newest first, each with the calls it held back (oldest first).

    The Q&A records are written by bot.agent.answering (record_qa); this only reads the shadow ones."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT created_at, inbox_id, conversation_id, message_ids, question, answer, sources, outcome,"
            "       handoff_reason, latency_ms FROM qa_records"
            " WHERE mode = 'shadow' AND created_at >= %s AND (%s::bigint IS NULL OR inbox_id = %s)"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (since, inbox_id, inbox_id, limit),
        )
        records = await cur.fetchall()
        ids = sorted({m for r in records for m in r["message_ids"]})
        await cur.execute(
            "SELECT message_id, action, content FROM shadow_replies WHERE message_id = ANY(%s) ORDER BY id", (ids,)
        )
        held: dict[int, list[tuple[str, str | None]]] = {}
        for row in await cur.fetchall():
            held.setdefault(row["message_id"], []).append((row["action"], row["content"]))
    return [
        ShadowAnswer(
            created_at=r["created_at"],
            inbox_id=r["inbox_id"],
            conversation_id=r["conversation_id"],
            message_ids=list(r["message_ids"]),
            question=r["question"],
            answer=r["answer"],
            sources=[f"{s['source']} › {s['heading']}" if s.get("heading") else str(s["source"]) for s in r["sources"]],
            decision=r["outcome"],
            reason=r["handoff_reason"],
            latency_ms=r["latency_ms"],
            would_send=[h for m in r["message_ids"] for h in held.get(m, [])],
        )
        for r in records
    ]
