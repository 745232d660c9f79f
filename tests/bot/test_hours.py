"""Opening hours per inbox, with a fixed clock: in hours nothing changes; outside them the bot either answers and
says when people are back (after_hours = "answer") or hands off silently to the morning (after_hours = "handoff")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import respx

from bot.agent.hours import back_at, is_open, next_opening
from config.inboxes import InboxPolicy, load_inboxes
from config.settings import ConfigError
from demo.samples import guest_message
from integrations.chatwoot.tests.spec import assert_all_valid
from tests.bot.conftest import API, BOT_TOKEN, calls, messages_posted, qa_rows
from tests.conftest import make_settings

LISBON = InboxPolicy(hours="09:00-20:00", days="mon-fri", timezone="Europe/Lisbon")
MONDAY_NIGHT = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # Lisbon is on UTC in December
MONDAY_MORNING = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
TUESDAY_OPENING = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
HOURS_INBOXES = """
[inboxes.3]
property = "lis-alfama"
hours = "09:00-20:00"
days = "mon-sun"
timezone = "Europe/Lisbon"
after_hours = "answer"

[inboxes.8]
property = "lis-alfama"
hours = "09:00-20:00"
timezone = "Europe/Lisbon"
after_hours = "handoff"
"""


# ------------------------------------------------------------------------------------------------ the clock


def test_open_inside_hours_on_listed_days_only() -> None:
    assert is_open(LISBON, MONDAY_MORNING)
    assert not is_open(LISBON, MONDAY_NIGHT)
    assert not is_open(LISBON, datetime(2026, 12, 12, 10, 0, tzinfo=UTC))  # a Saturday
    assert is_open(InboxPolicy(), MONDAY_NIGHT)  # no hours: always open


def test_hours_closing_before_opening_run_past_midnight() -> None:
    late = InboxPolicy(hours="20:00-02:00", days="fri", timezone="UTC")
    assert is_open(late, datetime(2026, 12, 11, 23, 0, tzinfo=UTC))  # Friday night
    assert is_open(late, datetime(2026, 12, 12, 1, 0, tzinfo=UTC))  # Saturday, before 02:00
    assert not is_open(late, datetime(2026, 12, 13, 1, 0, tzinfo=UTC))  # Sunday: Saturday is not listed


def test_next_opening_skips_closed_days_in_local_time() -> None:
    assert next_opening(LISBON, MONDAY_NIGHT) == TUESDAY_OPENING
    friday_night = datetime(2026, 12, 11, 21, 0, tzinfo=UTC)
    assert next_opening(LISBON, friday_night) == datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 6, 22, 0, tzinfo=UTC)  # Lisbon is UTC+1 in summer
    assert next_opening(LISBON, summer) == datetime(2026, 7, 7, 8, 0, tzinfo=UTC)


def test_back_at_speaks_the_guests_language_and_names_a_far_day() -> None:
    assert back_at(LISBON, "en", MONDAY_NIGHT) == "Our team is back at 09:00 (Lisbon time)."
    assert back_at(LISBON, "pt", MONDAY_NIGHT) == "A nossa equipa volta às 09:00 (hora de Lisbon)."
    assert back_at(LISBON, "xx", MONDAY_NIGHT) == "Our team is back at 09:00 (Lisbon time)."
    friday_night = datetime(2026, 12, 11, 21, 0, tzinfo=UTC)
    assert back_at(LISBON, "de", friday_night) == "Unser Team ist am Montag ab 09:00 Uhr wieder da (Ortszeit Lisbon)."
    assert back_at(LISBON, "en", MONDAY_MORNING) is None


# ------------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('after_hours = "sleep"', "INBOXES_CONFIG: after_hours 'sleep' in [inboxes.3] must be one of answer, handoff"),
        ('hours = "9-17"', "INBOXES_CONFIG: hours '9-17' in [inboxes.3] must look like \"09:00-20:00\""),
        (
            'days = "weekdays"',
            "INBOXES_CONFIG: days 'weekdays' in [inboxes.3] must be day names or ranges such as "
            '"mon-fri" or "mon-fri,sun"',
        ),
        (
            'timezone = "Lisbon"',
            "INBOXES_CONFIG: timezone 'Lisbon' in [inboxes.3] is not an IANA time zone such as \"Europe/Lisbon\"",
        ),
        (
            'mode = "shade"',
            "INBOXES_CONFIG: mode 'shade' in [inboxes.3] must be one of autopilot, copilot, off, shadow",
        ),
    ],
)
def test_invalid_hours_settings_fail_at_start_naming_the_key(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "inboxes.toml"
    path.write_text(f"[inboxes.3]\n{line}\n")
    with pytest.raises(ConfigError) as exc:
        load_inboxes(path)
    assert str(exc.value) == message


def test_hours_settings_are_read_per_inbox(tmp_path: Path) -> None:
    path = tmp_path / "inboxes.toml"
    path.write_text(HOURS_INBOXES)
    table = load_inboxes(path)
    assert (table.for_inbox(8).hours, table.for_inbox(8).days, table.for_inbox(8).after_hours) == (
        "09:00-20:00",
        "mon-sun",
        "handoff",
    )
    assert table.for_inbox(99).hours is None


# ------------------------------------------------------------------------------------------------ end to end


def hours_settings(bot_settings: Any, tmp_path: Path) -> Any:
    inboxes = tmp_path / "hours.toml"
    inboxes.write_text(HOURS_INBOXES)
    return make_settings(
        bot_settings.database_dsn,
        bot_settings.queue_name,
        CHATWOOT_URL="https://chat.acme.example",
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_BOT_TOKEN=BOT_TOKEN,
        INBOXES_CONFIG=str(inboxes),
        DEBOUNCE_SECONDS="0",
    )


def test_after_hours_answer_hand_off_says_when_people_are_back(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(90, 9901, "Can I talk to a person please?", inbox_id=3))
    drain(hours_settings(bot_settings, tmp_path), clock=lambda: MONDAY_NIGHT)
    public = [b["content"] for _, b in messages_posted(chatwoot) if not b["private"]]
    assert public == [
        "I'm passing your message to a colleague, who will reply here shortly. Our team is back at 09:00 (Lisbon time)."
    ]
    assert ("POST", "/conversations/90/toggle_status", {"status": "open"}) in calls(chatwoot)


def test_after_hours_answer_still_answers_questions_as_usual(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(91, 9902, "What time is check-out?", inbox_id=3))
    drain(hours_settings(bot_settings, tmp_path), clock=lambda: MONDAY_NIGHT)
    [(_, body)] = messages_posted(chatwoot)
    assert "Check-out is by 11:00 (11 am)." in body["content"].splitlines()
    assert "back at" not in body["content"]
    assert qa_rows(bot_settings.database_dsn) == [(91, [9902], "autopilot", "offline", "answered", None)]


def test_in_hours_hand_off_is_unchanged(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(92, 9903, "Can I talk to a person please?", inbox_id=3))
    drain(hours_settings(bot_settings, tmp_path), clock=lambda: MONDAY_MORNING)
    public = [b["content"] for _, b in messages_posted(chatwoot) if not b["private"]]
    assert public == ["I'm passing your message to a colleague, who will reply here shortly."]


def test_after_hours_handoff_snoozes_to_opening_with_a_note_and_no_public_message(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(93, 9904, "What time is check-out?", inbox_id=8))
    drain(hours_settings(bot_settings, tmp_path), clock=lambda: MONDAY_NIGHT)
    writes = [c for c in calls(chatwoot) if c[0] == "POST"]
    assert writes == [
        (
            "POST",
            "/conversations/93/messages",
            {
                "content": "🤖 Handed off to a person.\nOutside opening hours (09:00-20:00, mon-sun, Europe/Lisbon); "
                "nothing was said to the guest. Snoozed until Tue 09:00.\n\nGuest wrote:\n"
                "> What time is check-out?",
                "message_type": "outgoing",
                "private": True,
                "content_attributes": {"sidecar_reply_key": "handoff-note:9904"},
            },
        ),
        ("POST", "/conversations/93/labels", {"labels": ["vip", "bot-handoff"]}),
        (
            "POST",
            "/conversations/93/toggle_status",
            {"status": "snoozed", "snoozed_until": int(TUESDAY_OPENING.timestamp())},
        ),
    ]
    assert qa_rows(bot_settings.database_dsn) == [(93, [9904], "autopilot", "none", "handed_off", "after_hours")]
    assert_all_valid(chatwoot, bot_token=BOT_TOKEN)


def test_after_hours_handoff_leaves_an_emergency_open(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    chatwoot.post(url__regex=rf"{API}/conversations/\d+/toggle_priority").respond(200, json={})
    deliver(guest_message(94, 9905, "There is a smell of gas in the flat", inbox_id=8))
    drain(hours_settings(bot_settings, tmp_path), clock=lambda: MONDAY_NIGHT)
    made = calls(chatwoot)
    assert ("POST", "/conversations/94/toggle_priority", {"priority": "urgent"}) in made
    assert [b for m, p, b in made if p.endswith("toggle_status")] == [{"status": "open"}]
    assert not any(not b["private"] for _, b in messages_posted(chatwoot))


def test_after_hours_handoff_answers_as_usual_in_hours(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(95, 9906, "What time is check-out?", inbox_id=8))
    drain(hours_settings(bot_settings, tmp_path), clock=lambda: MONDAY_MORNING)
    [(_, body)] = messages_posted(chatwoot)
    assert body["private"] is False and "Check-out is by 11:00 (11 am)." in body["content"].splitlines()
    assert not any(p.endswith("toggle_status") for _, p, _ in calls(chatwoot))
    assert qa_rows(bot_settings.database_dsn) == [(95, [9906], "autopilot", "offline", "answered", None)]


def test_a_shadow_inbox_after_hours_keeps_the_snooze_instead_of_sending_it(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    import psycopg

    inboxes = tmp_path / "shadow-hours.toml"
    inboxes.write_text(
        '[inboxes.8]\nmode = "shadow"\nhours = "09:00-20:00"\ntimezone = "Europe/Lisbon"\nafter_hours = "handoff"\n'
    )
    settings = make_settings(
        bot_settings.database_dsn,
        bot_settings.queue_name,
        CHATWOOT_URL="https://chat.acme.example",
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_BOT_TOKEN=BOT_TOKEN,
        INBOXES_CONFIG=str(inboxes),
        DEBOUNCE_SECONDS="0",
    )
    deliver(guest_message(96, 9907, "What time is check-out?", inbox_id=8))
    drain(settings, clock=lambda: MONDAY_NIGHT)
    assert calls(chatwoot) == []
    with psycopg.connect(bot_settings.database_dsn) as conn:
        held = conn.execute("SELECT action, content FROM shadow_replies ORDER BY id").fetchall()
    assert [a for a, _ in held] == ["note", "labels", "status"]
    assert held[2][1] == f"snoozed until {int(TUESDAY_OPENING.timestamp())}"
    assert qa_rows(bot_settings.database_dsn) == [(96, [9907], "shadow", "none", "handed_off", "after_hours")]
