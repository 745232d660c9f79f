"""Postgres side of the Aircall mirror: the call_records row of each call (posts go through bot.core.replies).

Merging is the pure transforms.merge run under a row lock (INSERT ... ON CONFLICT DO NOTHING, then
SELECT ... FOR UPDATE), so concurrent events of one call cannot lose each other's updates even outside
the job layer's per-subject lock.

Ledger protocol for anything posted to Chatwoot: insert the key(s) as 'pending' (ON CONFLICT keeps an
existing row), perform the side effect, mark them 'posted' with the message id. A key already 'posted'
is skipped. A crash between posting and marking makes the retry post again: at least once, as duplicates
cannot be ruled out without reading Chatwoot back. One job per call at a time (the job layer locks the
event subject "call:<id>") keeps two workers from posting the same key concurrently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from integrations.aircall.transforms import CallSnapshot, CallState, merge

STATE_COLUMNS = (
    "aircall_call_id",
    "direction",
    "status",
    "missed_call_reason",
    "caller_e164",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_s",
    "agent_name",
    "recording_asset_url",
    "voicemail_asset_url",
    "voicemail_transcript",
    "tags",
    "chatwoot_contact_id",
    "chatwoot_conversation_id",
    "last_event",
    "last_event_at",
    "raw",
    "ai_transcript",
    "ai_summary",
)
MERGED_COLUMNS = (
    "direction",
    "status",
    "missed_call_reason",
    "caller_e164",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_s",
    "agent_name",
    "recording_asset_url",
    "voicemail_asset_url",
    "tags",
    "last_event",
    "last_event_at",
    "raw",
)
SELECT_SQL = f"SELECT {', '.join(STATE_COLUMNS)} FROM call_records WHERE aircall_call_id = %s"


def state_from_row(row: dict[str, Any]) -> CallState:
    values: dict[str, Any] = {name: row.get(name) for name in STATE_COLUMNS}
    values["tags"] = tuple(values["tags"] or ())
    values["raw"] = dict(values["raw"] or {})
    return CallState(**values)


async def load_call(db: AsyncConnectionPool, call_id: int) -> CallState | None:
    async with db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_SQL, (call_id,))
        row = await cur.fetchone()
    return state_from_row(row) if row else None


async def merge_call(db: AsyncConnectionPool, snap: CallSnapshot) -> CallState:
    """Fold one call event into its record and return the merged record."""
    async with db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO call_records (aircall_call_id) VALUES (%s) ON CONFLICT DO NOTHING", (snap.aircall_call_id,)
        )
        await cur.execute(SELECT_SQL + " FOR UPDATE", (snap.aircall_call_id,))
        row = await cur.fetchone()
        assert row is not None  # inserted just above, and call records are never deleted
        merged = merge(state_from_row(row), snap)
        assignments = ", ".join(f"{name} = %({name})s" for name in MERGED_COLUMNS)
        values: dict[str, Any] = {name: getattr(merged, name) for name in MERGED_COLUMNS}
        values["tags"] = list(merged.tags)
        values["raw"] = Jsonb(merged.raw)
        await cur.execute(
            f"UPDATE call_records SET {assignments}, updated_at = now() WHERE aircall_call_id = %(id)s",
            {**values, "id": merged.aircall_call_id},
        )
    return merged


async def save_ai(
    db: AsyncConnectionPool, call_id: int, *, transcript: str | None = None, summary: str | None = None
) -> CallState:
    """Store Aircall AI output on the call (the first one kept: Aircall sends each once)."""
    async with db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            INSERT INTO call_records AS r (aircall_call_id, ai_transcript, ai_summary) VALUES (%s, %s, %s)
            ON CONFLICT (aircall_call_id) DO UPDATE
               SET ai_transcript = COALESCE(r.ai_transcript, EXCLUDED.ai_transcript),
                   ai_summary = COALESCE(r.ai_summary, EXCLUDED.ai_summary), updated_at = now()
            """,
            (call_id, transcript, summary),
        )
        await cur.execute(SELECT_SQL, (call_id,))
        row = await cur.fetchone()
    assert row is not None
    return state_from_row(row)


async def save_voicemail_transcript(db: AsyncConnectionPool, call_id: int, text: str) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE call_records SET voicemail_transcript = COALESCE(voicemail_transcript, %s), updated_at = now()"
            " WHERE aircall_call_id = %s",
            (text, call_id),
        )


async def save_links(
    db: AsyncConnectionPool, call_id: int, *, contact_id: int | None, conversation_id: int | None
) -> None:
    """Remember (or, with None, forget) the Chatwoot contact and conversation a call lands on."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE call_records SET chatwoot_contact_id = %s, chatwoot_conversation_id = %s, updated_at = now()"
            " WHERE aircall_call_id = %s",
            (contact_id, conversation_id, call_id),
        )


async def is_latest_call(db: AsyncConnectionPool, contact_id: int, call_id: int, started_at: datetime | None) -> bool:
    """Whether no other call of this contact started later (so its outcome may go on the contact)."""
    if started_at is None:
        return True
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM call_records WHERE chatwoot_contact_id = %s"
            " AND aircall_call_id <> %s AND started_at > %s)",
            (contact_id, call_id, started_at),
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def recent_calls(db: AsyncConnectionPool, contact_id: int, limit: int = 3) -> list[CallState]:
    """The contact's latest calls, newest first (for the hand-off summary agents read)."""
    async with db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {', '.join(STATE_COLUMNS)} FROM call_records WHERE chatwoot_contact_id = %s"
            " ORDER BY started_at DESC NULLS LAST, aircall_call_id DESC LIMIT %s",
            (contact_id, limit),
        )
        return [state_from_row(row) for row in await cur.fetchall()]
