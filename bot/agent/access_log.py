"""The access log: every release and every refusal of gated details, for agents and auditors.

This module owns the table `access_log`. A release is gated text (a door code, a Wi-Fi password, an
exact address) that went into an answer; a refusal is a guest asking for one and the gate holding it
back, with the reason. Each release also leaves a private note in the conversation, so agents see who
got what without opening the log. `sidecar access log` prints the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.agent.intent import Fact
from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.readback import post_marked

Action = Literal["release", "refusal"]

FACT_NAMES = {"access": "Door code and access details (key box, Wi-Fi)", "address": "Exact address"}
RELEASE_NOTE = "🔐 {fact} {verb} the {identity} guest of booking {booking} (verified by {how})."


@dataclass(frozen=True)
class Entry:
    """One row of the log: who asked (conversation, contact), about which booking, and what happened."""

    created_at: datetime
    action: Action
    fact: Fact
    conversation_id: int | None
    message_id: int | None
    contact_id: int | None
    booking: str | None
    identity: str
    reason: str


async def record(
    db: AsyncConnectionPool,
    *,
    action: Action,
    fact: Fact,
    conversation_id: int,
    message_id: int,
    contact_id: int | None,
    booking: str | None,
    identity: str,
    reason: str,
) -> None:
    """Write one release or refusal (once per message, fact and action: retried jobs do not repeat it)."""
    async with db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO access_log (action, fact, conversation_id, message_id, contact_id, booking, identity, reason)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (message_id, fact, action) DO NOTHING
            """,
            (action, fact, conversation_id, message_id, contact_id, booking, identity, reason),
        )


def release_note(fact: Fact, *, booking: str, how: str, suggested: bool) -> str:
    """The private note agents read next to an answer that carried gated details."""
    return RELEASE_NOTE.format(
        fact=FACT_NAMES[fact],
        verb="suggested for" if suggested else "given to",
        identity="verified",
        booking=booking,
        how=how,
    )


async def note_release(
    db: AsyncConnectionPool,
    cw: ChatwootClient,
    *,
    conversation_id: int,
    message_id: int,
    fact: Fact,
    booking: str,
    how: str,
    suggested: bool,
) -> None:
    """Post the release note, once (its own reply key per message and fact)."""
    note = release_note(fact, booking=booking, how=how, suggested=suggested)
    key = f"access-note:{message_id}:{fact}"
    await post_marked(db, cw, key, conversation_id, "access-note", note, private=True)


def entries(
    conn: psycopg.Connection[Any], *, contact_id: int | None = None, booking: str | None = None, limit: int = 100
) -> list[Entry]:
    """The newest rows first, optionally for one contact and/or one booking (code or Guesty id)."""
    rows = conn.execute(
        """
        SELECT created_at, action, fact, conversation_id, message_id, contact_id, booking, identity, reason
          FROM access_log
         WHERE (%(contact)s::bigint IS NULL OR contact_id = %(contact)s)
           AND (%(booking)s::text IS NULL OR upper(booking) = upper(%(booking)s))
         ORDER BY created_at DESC, id DESC
         LIMIT %(limit)s
        """,
        {"contact": contact_id, "booking": booking, "limit": limit},
    ).fetchall()
    return [Entry(*row) for row in rows]


def render(rows: list[Entry]) -> str:
    """The rows as a table for the terminal."""
    if not rows:
        return "no releases or refusals logged"
    lines = [
        f"{'when (UTC)':19}  {'action':8}  {'fact':7}  {'conv':>6}  {'contact':>7}  {'booking':12}  "
        f"{'identity':8}  reason"
    ]
    for r in rows:
        when = r.created_at.astimezone(UTC)
        lines.append(
            f"{when:%Y-%m-%d %H:%M:%S}  {r.action:8}  {r.fact:7}  {r.conversation_id or '':>6}  "
            f"{r.contact_id or '':>7}  {(r.booking or '-')[:12]:12}  {r.identity:8}  {r.reason}"
        )
    return "\n".join(lines)
