"""Hand-off notes carry a summary (what the guest wants, the booking, the last calls, why the bot stopped)
so an agent can answer without scrolling back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import respx

from bot.agent.summary import CallLine, HandoffSummary, condense, render
from demo.samples import guest_message
from tests.bot.conftest import messages_posted
from tests.bot.guests import DOOR_CODE, book

CONTACT = 4401


def record_call(
    dsn: str,
    call_id: int,
    *,
    started: datetime,
    direction: str,
    answered: bool,
    duration_s: int | None = None,
    agent: str | None = None,
    missed_reason: str | None = None,
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO call_records (aircall_call_id, direction, status, missed_call_reason, started_at,"
            " answered_at, duration_s, agent_name, chatwoot_contact_id)"
            " VALUES (%s, %s, 'done', %s, %s, %s, %s, %s, %s)",
            (call_id, direction, missed_reason, started, started if answered else None, duration_s, agent, CONTACT),
        )


def test_hand_off_notes_carry_the_booking(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    dsn = bot_settings.database_dsn
    book(dsn, guesty_id="g-4401", code="HM4401", starts_in_days=-1, nights=3, contact=CONTACT, email=None, phone=None)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT check_in_local, check_out_local FROM reservations WHERE guesty_id = 'g-4401'"
        ).fetchone()
    assert row is not None
    check_in, check_out = row
    record_call(
        dsn,
        1,
        started=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        direction="inbound",
        answered=False,
        missed_reason="out_of_opening_hours",
    )
    record_call(
        dsn,
        2,
        started=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        direction="outbound",
        answered=True,
        duration_s=192,
        agent="Ana",
    )

    deliver(guest_message(63, 9040, "Can I talk to a person please?", inbox_id=3, contact_id=CONTACT))
    drain()

    notes = [b["content"] for p, b in messages_posted(chatwoot) if p == "/conversations/63/messages" and b["private"]]
    assert notes == [
        "🤖 Handed off to a person.\nThe guest asked to talk to a person. Over to you.\n\n"
        "Guest wrote:\n> Can I talk to a person please?\n\n"
        "📋 Summary\n"
        "• Wants: Can I talk to a person please?\n"
        f"• Booking: HM4401, lis-alfama flat, {check_in.isoformat()} → {check_out.isoformat()}, confirmed,"
        " during-stay\n"
        "• Calls: 2026-12-02 10:00 UTC outbound, answered, 3m12s with Ana; "
        "2026-12-01 09:30 UTC inbound, missed (out of opening hours)\n"
        "• Bot stopped: The guest asked to talk to a person. Over to you."
    ]
    assert DOOR_CODE not in notes[0]


def test_hand_off_without_booking_or_calls_keeps_the_plain_note(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(guest_message(64, 9041, "Can I talk to a person please?", inbox_id=3, contact_id=CONTACT + 1))
    drain()
    notes = [b["content"] for p, b in messages_posted(chatwoot) if p == "/conversations/64/messages" and b["private"]]
    assert notes == [
        "🤖 Handed off to a person.\nThe guest asked to talk to a person. Over to you.\n\n"
        "Guest wrote:\n> Can I talk to a person please?"
    ]


def test_wants_is_the_last_two_messages_on_one_line_cut_to_160_chars() -> None:
    assert condense("hi\n\nwe land at 23:00\n  can   someone meet us? ") == "we land at 23:00 / can someone meet us?"
    assert condense("x" * 200) == "x" * 159 + "…"


def test_summary_without_a_booking_says_so() -> None:
    summary = HandoffSummary(
        "late check-out?", "No passage answers this.", None, None, (CallLine(None, "inbound", "voicemail"),)
    )
    assert render(summary) == (
        "📋 Summary\n• Wants: late check-out?\n• Booking: none on file\n"
        "• Calls: undated inbound, voicemail\n• Bot stopped: No passage answers this."
    )
