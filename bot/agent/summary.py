"""The hand-off summary: what an agent needs to answer without scrolling back through the conversation.

Four lines under the hand-off note: what the guest wants (their last message(s), condensed: no model
needed), the booking (code, property, dates, status, stay stage: agents are staff and may see it, but a
booking row holds no door codes, those live only in gated knowledge), the contact's last calls (when,
direction, outcome) and why the bot stopped. `render` is pure; `gather` reads the two mirrors.

The note already quotes the guest and gives the reason, so when the contact has neither a booking nor a
call the summary would add nothing and is left out (`for_hand_off` returns "").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool

from integrations.aircall.store import recent_calls
from integrations.aircall.transforms import CallState
from integrations.guesty.stays import StayFacts, contact_stays, pick_reservation, stay_stage

log = logging.getLogger("sidecar.bot")

WANTS_CHARS = 160
WANTS_LINES = 2  # the guest's last messages of the burst
CALLS = 3
SUMMARY = "📋 Summary\n• Wants: {wants}\n• Booking: {booking}\n• Calls: {calls}\n• Bot stopped: {reason}"


@dataclass(frozen=True)
class CallLine:
    """One call as an agent reads it."""

    at: datetime | None
    direction: str | None
    outcome: str


@dataclass(frozen=True)
class HandoffSummary:
    wants: str
    reason: str
    booking: StayFacts | None = None
    stage: str | None = None
    calls: Sequence[CallLine] = field(default_factory=tuple)

    @property
    def worth_adding(self) -> bool:
        return self.booking is not None or bool(self.calls)


def condense(question: str, *, lines: int = WANTS_LINES, chars: int = WANTS_CHARS) -> str:
    """The guest's last message(s) on one line, cut to `chars` (the offline "what the guest wants")."""
    said = [" ".join(line.split()) for line in question.splitlines() if line.strip()][-lines:]
    text = " / ".join(said) or "(no text)"
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def call_outcome(call: CallState) -> str:
    """answered (with its length), voicemail, missed (with Aircall's reason), or the raw status."""
    if call.voicemail_asset_url or call.voicemail_transcript:
        return "voicemail"
    if call.answered_at is not None:
        if call.duration_s:
            minutes, seconds = divmod(call.duration_s, 60)
            return f"answered, {minutes}m{seconds:02d}s" + (f" with {call.agent_name}" if call.agent_name else "")
        return "answered"
    if call.status == "done" or call.missed_call_reason:
        return "missed" + (f" ({call.missed_call_reason.replace('_', ' ')})" if call.missed_call_reason else "")
    return call.status or "unknown"


def render_booking(stay: StayFacts | None, stage: str | None) -> str:
    if stay is None:
        return "none on file"
    dates = " → ".join(d.isoformat() for d in (stay.check_in_date, stay.check_out_date) if d) or "no dates"
    parts = [stay.code, stay.property_name or stay.property_code or "unknown property", dates, stay.status]
    if stage:
        parts.append(stage)
    return ", ".join(parts)


def render_calls(calls: Sequence[CallLine]) -> str:
    if not calls:
        return "none"
    return "; ".join(_call_text(c) for c in calls)


def _call_text(call: CallLine) -> str:
    when = f"{call.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if call.at else "undated"
    return f"{when} {call.direction or 'call'}, {call.outcome}"


def render(summary: HandoffSummary) -> str:
    """The summary block, exactly as it is appended to the hand-off note."""
    return SUMMARY.format(
        wants=summary.wants,
        booking=render_booking(summary.booking, summary.stage),
        calls=render_calls(summary.calls),
        reason=summary.reason,
    )


async def gather(
    db: AsyncConnectionPool, contact_id: int | None, question: str, reason: str, *, now: datetime | None = None
) -> HandoffSummary:
    """The summary's facts: the booking the contact points at (as bot.agent.entitlement picks it) and its calls."""
    now = now or datetime.now(UTC)
    stay, calls = None, []
    if contact_id is not None:
        stay = pick_reservation(await contact_stays(db, contact_id), now)
        found = await recent_calls(db, contact_id, CALLS)
        calls = [CallLine(c.started_at, c.direction, call_outcome(c)) for c in found]
    stage = stay_stage(stay.status, stay.starts, stay.ends, now) if stay is not None else None
    return HandoffSummary(condense(question), " ".join(reason.split()), stay, stage, tuple(calls))


async def for_hand_off(db: AsyncConnectionPool, contact_id: int | None, question: str, reason: str) -> str:
    """The text appended to HANDOFF_NOTE ("" when there is nothing to add, or the mirrors cannot be read:
    a hand-off never waits on its summary)."""
    try:
        summary = await gather(db, contact_id, question, reason)
    except Exception as exc:  # the note must go out whatever the mirrors do
        log.warning("hand-off summary unavailable", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
        return ""
    return "\n\n" + render(summary) if summary.worth_adding else ""
