"""What the agent panel shows for one conversation, read from the sidecar's own records, and its two buttons.

A display-only read across the ledgers: bookings through Guesty's `contact_stays` (the owner's query),
calls, the bot's answers and the hand-off state by plain SELECTs. Pause and resume go through the owner of
conversation_state (bot.agent.state), as "a person handles this conversation": the autopilot path already
stays silent while `human_since` is set, until the conversation is pending again or resumed here.

Nothing secret leaves: an answer built on access-gated knowledge (door and key-box codes, Wi-Fi and alarm
codes) is replaced by "access details given", and bookings only say whether access details were given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bot.agent import state
from bot.agent.gaps import GAP_REASONS
from integrations.guesty.stays import StayFacts, contact_stays, stay_stage

PAUSE_REASON = "bot paused from the agent panel"
ACCESS_HIDDEN = "[access details given: not shown here]"
MAX_CALLS = 5
MAX_ANSWERS = 3
MAX_GAPS = 5


@dataclass(frozen=True)
class Booking:
    code: str
    status: str
    property: str | None
    check_in: str | None
    check_out: str | None
    guests: int | None
    stage: str | None
    access: str  # "given" | "not given": whether the bot has told this guest access details


@dataclass(frozen=True)
class CallRow:
    call_id: int
    direction: str | None
    outcome: str
    started_at: str | None
    duration_s: int | None
    agent: str | None
    recording: str | None  # Aircall's durable asset page (needs an Aircall login), never an expiring link
    voicemail: str | None
    summary: str | None


@dataclass(frozen=True)
class AnswerRow:
    at: str
    question: str
    answer: str | None
    outcome: str
    mode: str
    sources: list[str]


@dataclass(frozen=True)
class PanelView:
    conversation_id: int
    contact_id: int | None
    bookings: list[Booking]
    calls: list[CallRow]
    answers: list[AnswerRow]
    handoff_reason: str | None
    handoff_at: str | None
    human: bool  # the bot stands down: handed off, an agent took over, or paused here
    paused: bool  # paused from this panel
    gaps: list[str] = field(default_factory=list)  # recent questions the guides did not answer, this property

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def panel_view(
    db: AsyncConnectionPool, conversation_id: int, contact_hint: int | None, *, now: datetime | None = None
) -> PanelView:
    """Everything the panel shows; the contact is ours when our records know it, else the dashboard's."""
    now = now or datetime.now(UTC)
    async with db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT contact_id, human_since, human_reason FROM conversation_state WHERE conversation_id = %s",
            (conversation_id,),
        )
        conv = await cur.fetchone() or {}
        answers, answered_contact, access_given = await _answers(cur, conversation_id)
        contact_id = conv.get("contact_id") or answered_contact or contact_hint
        calls = await _calls(cur, conversation_id, contact_id)
        last_handoff = await _last_handoff(cur, conversation_id)
    stays = await contact_stays(db, contact_id) if contact_id else []
    bookings = [_booking(stay, now, access_given) for stay in stays]
    async with db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        prop = next((s.property_code for s in stays if s.property_code), None) or await _answered_property(
            cur, conversation_id
        )
        gaps = await _gaps(cur, prop, now) if prop else []
    human_reason = conv.get("human_reason")
    return PanelView(
        conversation_id=conversation_id,
        contact_id=contact_id,
        bookings=bookings,
        calls=calls,
        answers=answers,
        handoff_reason=human_reason if human_reason and human_reason != PAUSE_REASON else last_handoff.get("reason"),
        handoff_at=_iso(conv.get("human_since"))
        if human_reason and human_reason != PAUSE_REASON
        else _iso(last_handoff.get("at")),
        human=conv.get("human_since") is not None,
        paused=human_reason == PAUSE_REASON and conv.get("human_since") is not None,
        gaps=gaps,
    )


async def _answered_property(cur: Any, conversation_id: int) -> str | None:
    await cur.execute(
        "SELECT property_code FROM qa_records WHERE conversation_id = %s AND property_code IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (conversation_id,),
    )
    row = await cur.fetchone()
    return row["property_code"] if row else None


async def _gaps(cur: Any, property_code: str, now: datetime) -> list[str]:
    """The property's latest questions the guides did not answer (knowledge hand-offs, 14 days), newest
    first, without repeats: what an agent may want to add to the guide (`sidecar gaps` groups them)."""
    await cur.execute(
        "SELECT question FROM qa_records WHERE property_code = %s AND handoff_reason = ANY(%s)"
        " AND created_at >= %s ORDER BY id DESC LIMIT 20",
        (property_code, list(GAP_REASONS), now - timedelta(days=14)),
    )
    return list(dict.fromkeys(r["question"] for r in await cur.fetchall()))[:MAX_GAPS]


async def pause(db: AsyncConnectionPool, conversation_id: int) -> None:
    """The bot treats the conversation as human-handled until resumed (or pending again in Chatwoot)."""
    await state.mark_human(db, conversation_id, PAUSE_REASON)


async def resume(db: AsyncConnectionPool, conversation_id: int) -> None:
    """Hand the conversation back to the bot: it answers again while the conversation is pending."""
    await state.clear_human(db, conversation_id)


def _booking(stay: StayFacts, now: datetime, access_given: set[str]) -> Booking:
    return Booking(
        code=stay.confirmation_code or stay.guesty_id,
        status=stay.status,
        property=stay.property_name or stay.property_code,
        check_in=_day(stay.check_in_date),
        check_out=_day(stay.check_out_date),
        guests=stay.guests_count,
        stage=stay.stay_stage or stay_stage(stay.status, stay.starts, stay.ends, now),
        access="given" if stay.property_code in access_given else "not given",
    )


async def _answers(cur: Any, conversation_id: int) -> tuple[list[AnswerRow], int | None, set[str]]:
    """The bot's newest answers (access-gated text hidden), the contact they were for, and the properties
    whose access details the bot has given in this conversation."""
    await cur.execute(
        """
        SELECT q.id, q.created_at, q.question, q.answer, q.outcome, q.mode, q.sources, q.contact_id,
               q.property_code,
               EXISTS (SELECT 1 FROM jsonb_array_elements(q.sources) s
                         JOIN vector_references v ON v.source = s->>'source'
                          AND v.heading IS NOT DISTINCT FROM s->>'heading' AND v.gate = 'access') AS gated
          FROM qa_records q WHERE q.conversation_id = %s ORDER BY q.created_at DESC, q.id DESC LIMIT %s
        """,
        (conversation_id, MAX_ANSWERS),
    )
    rows = await cur.fetchall()
    await cur.execute(
        """
        SELECT DISTINCT q.property_code FROM qa_records q
          JOIN LATERAL jsonb_array_elements(q.sources) s ON true
          JOIN vector_references v ON v.source = s->>'source' AND v.heading IS NOT DISTINCT FROM s->>'heading'
                                  AND v.gate = 'access'
         WHERE q.conversation_id = %s AND q.answer IS NOT NULL AND q.property_code IS NOT NULL
        """,
        (conversation_id,),
    )
    given = {r["property_code"] for r in await cur.fetchall()}
    answers = [
        AnswerRow(
            at=_iso(r["created_at"]) or "",
            question=r["question"],
            answer=ACCESS_HIDDEN if r["gated"] and r["answer"] else r["answer"],
            outcome=r["outcome"],
            mode=r["mode"],
            sources=[" › ".join(p for p in (s.get("source"), s.get("heading")) if p) for s in r["sources"] or []],
        )
        for r in rows
    ]
    contact = next((r["contact_id"] for r in rows if r["contact_id"]), None)
    return answers, contact, given


async def _calls(cur: Any, conversation_id: int, contact_id: int | None) -> list[CallRow]:
    await cur.execute(
        """
        SELECT aircall_call_id, direction, status, missed_call_reason, answered_at, started_at, duration_s,
               agent_name, recording_asset_url, voicemail_asset_url, ai_summary
          FROM call_records
         WHERE chatwoot_conversation_id = %s OR (%s::bigint IS NOT NULL AND chatwoot_contact_id = %s)
         ORDER BY started_at DESC NULLS LAST, id DESC LIMIT %s
        """,
        (conversation_id, contact_id, contact_id, MAX_CALLS),
    )
    return [
        CallRow(
            call_id=r["aircall_call_id"],
            direction=r["direction"],
            outcome=_call_outcome(r),
            started_at=_iso(r["started_at"]),
            duration_s=r["duration_s"],
            agent=r["agent_name"],
            recording=r["recording_asset_url"],
            voicemail=r["voicemail_asset_url"],
            summary=r["ai_summary"],
        )
        for r in await cur.fetchall()
    ]


def _call_outcome(row: dict[str, Any]) -> str:
    if row["voicemail_asset_url"]:
        return "voicemail"
    if row["answered_at"] is not None:
        return "answered"
    if row["missed_call_reason"] or row["status"] == "done":
        return "missed" if row["direction"] != "outbound" else "not answered"
    return row["status"] or "in progress"


async def _last_handoff(cur: Any, conversation_id: int) -> dict[str, Any]:
    await cur.execute(
        "SELECT created_at AS at, handoff_reason AS reason FROM qa_records WHERE conversation_id = %s "
        "AND outcome = 'handed_off' ORDER BY created_at DESC LIMIT 1",
        (conversation_id,),
    )
    return await cur.fetchone() or {}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None
