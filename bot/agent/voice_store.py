"""What was heard in voice notes, kept in voice_transcripts: saved before anything is posted (so a retried
job never pays for a transcript twice), marked handled at the end, and purged after VOICE_RETENTION_DAYS
(transcripts are personal data) by `sidecar purge`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bot.context import JobContext
from bot.core import replies
from bot.core.ledger import StoredEvent
from integrations.chatwoot.models import MessageEvent

PURGED_QUESTION = "[voice note transcript removed after the retention period]"


@dataclass(frozen=True)
class Heard:
    """What the guest said in a voice note, and who transcribed it."""

    text: str
    language: str | None
    duration_ms: int | None
    backend: str
    confidence: float | None = None


@dataclass(frozen=True)
class VoiceRecord:
    """A voice_transcripts row."""

    heard: Heard | None  # None when the note could not be transcribed
    handled: bool


async def load_record(ctx: JobContext, message_id: int) -> VoiceRecord | None:
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT text, language, duration_ms, backend, confidence, handled_at IS NOT NULL"
            " FROM voice_transcripts WHERE message_id = %s",
            (message_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    text, language, length, backend, confidence, handled = row
    heard = Heard(text, language, length, backend, confidence) if text else None
    return VoiceRecord(heard, bool(handled))


async def save_heard(ctx: JobContext, event: StoredEvent, msg: MessageEvent, heard: Heard) -> None:
    """Keep the transcript with the event; a later transcript only fills a row that has none."""
    async with ctx.db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO voice_transcripts (event_id, message_id, conversation_id, text, language, duration_ms, backend,
                                           confidence)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (message_id) DO UPDATE
               SET event_id = EXCLUDED.event_id, text = EXCLUDED.text, language = EXCLUDED.language,
                   duration_ms = EXCLUDED.duration_ms, backend = EXCLUDED.backend, confidence = EXCLUDED.confidence,
                   failure = NULL
             WHERE voice_transcripts.text IS NULL AND voice_transcripts.handled_at IS NULL
            """,
            (
                event.id,
                msg.id,
                msg.conversation_id,
                heard.text,
                heard.language,
                heard.duration_ms,
                heard.backend,
                heard.confidence,
            ),
        )


async def save_failure(
    ctx: JobContext, event: StoredEvent, msg: MessageEvent, *, duration_ms: int | None, backend: str, reason: str
) -> None:
    """Record why a voice note could not be heard (a row without text); an existing row is left alone."""
    async with ctx.db.connection() as conn:
        await conn.execute(
            """
            INSERT INTO voice_transcripts (event_id, message_id, conversation_id, duration_ms, backend, failure)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING
            """,
            (event.id, msg.id, msg.conversation_id, duration_ms, backend, reason),
        )


async def mark_handled(ctx: JobContext, message_id: int) -> None:
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE voice_transcripts SET handled_at = coalesce(handled_at, now()) WHERE message_id = %s", (message_id,)
        )


@dataclass(frozen=True)
class PurgeReport:
    transcripts: int
    notes: int
    questions: int
    payloads: int


_HAS_TRANSCRIPT = 'strict $.**.transcribed_text ? (@.type() == "string" && @ != "")'


def _scrub(value: Any) -> Any:
    """The payload with every transcribed_text emptied (Chatwoot's own value for 'none')."""
    if isinstance(value, dict):
        return {k: "" if k == "transcribed_text" and isinstance(v, str) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def purge_voice_data(conn: psycopg.Connection[Any], days: int) -> PurgeReport:
    """Remove what was heard in voice notes older than `days`: transcript rows, the transcript notes (and the
    handoff notes quoting them) in bot_replies, voice questions in qa_records, and transcribed_text in stored
    Chatwoot payloads. One transaction; the audio itself was never stored."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with conn.transaction():
        ids = [
            row[0] for row in conn.execute("SELECT message_id FROM voice_transcripts WHERE created_at < %s", (cutoff,))
        ]
        keys = [f"{kind}:{i}" for i in ids for kind in ("transcript", "handoff-note", "suggestion")]
        notes = replies.forget_contents(conn, before=cutoff, kinds=["transcript"], keys=keys)
        questions = conn.execute(
            "UPDATE qa_records SET question = %s WHERE created_at < %s AND timings->>'input' = 'voice'"
            " AND question <> %s",
            (PURGED_QUESTION, cutoff, PURGED_QUESTION),
        ).rowcount
        stored = conn.execute(
            "SELECT id, payload FROM operational_events WHERE source = 'chatwoot'"
            " AND event_type IN ('message_created', 'message_updated') AND received_at < %s"
            " AND jsonb_path_exists(payload, %s::jsonpath) FOR UPDATE",
            (cutoff, _HAS_TRANSCRIPT),
        ).fetchall()
        for event_id, payload in stored:
            conn.execute("UPDATE operational_events SET payload = %s WHERE id = %s", (Jsonb(_scrub(payload)), event_id))
        transcripts = conn.execute("DELETE FROM voice_transcripts WHERE created_at < %s", (cutoff,)).rowcount
    return PurgeReport(transcripts=transcripts, notes=notes, questions=questions, payloads=len(stored))
