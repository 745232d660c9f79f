"""`sidecar replay`: past resolved conversations through the bot in shadow, compared with the people's replies.

A stand-in history of 57 resolved conversations, 56 inside the window (a Chatwoot on respx serving the
conversation list and each conversation's messages, paged), holds answerable questions the people answered
as the guides do, requests for a person, a guest whose booking at the time was another property, and
planted disagreements (check-out 10:00 where the guide says 11:00, early check-in 30 EUR where it says 25).
The report's shares and its list of disagreements are exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx

from bot.answer.compare import compare, values
from bot.service.cli import main
from bot.service.replay import run_async
from bot.service.replay_history import PastConversation, PastMessage, questions
from integrations.chatwoot.tests.spec import assert_all_valid
from tests.bot.conftest import API, CHATWOOT
from tests.bot.guests import book
from tests.conftest import make_settings

NOW = datetime.now(UTC).replace(microsecond=0)
USER_TOKEN = "user-token-456"

AGREEING = [  # (guest, person): the guides say the same
    ("What time is check-out?", "Check-out is by 11:00, thanks for asking!"),
    ("When can we check in?", "Check-in is from 15:00."),
    ("Where do we put the rubbish?", "Take rubbish out after 20:00, the bins are at the corner of Rua dos Remédios."),
    ("How do I turn on the heating?", "Use the white remote: the sun symbol is heating."),
]
HANDOFF = ("Can I talk to a person please?", "Of course, I'm calling you now.")
PLANTED = {  # conversation id: (guest, person, kind, person's values)
    1003: ("What time is check-out?", "Check-out is at 10:00.", "times", ("10:00",)),
    1017: ("What time is check-out?", "You can stay until 10 am.", "times", ("10:00",)),
    1029: ("How much is early check-in?", "Early check-in costs 30 EUR.", "numbers", ("30",)),
    1041: ("What time is check-out?", "Check-out is at 12:00 on Sundays.", "times", ("12:00",)),
}
BOOKED = 1050  # a guest of por-ribeira (check-out 10:00) writing in lis-alfama's inbox during their stay
OLD = 1056  # resolved before the window: not read


def _msg(
    mid: int, conv: int, kind: int, text: str, at: datetime, *, private: bool = False, sender: str | None = None
) -> dict[str, Any]:
    senders = {
        "user": {"id": 5, "name": "Ana", "type": "user"},
        "agent_bot": {"id": 1, "name": "Bot", "type": "agent_bot"},
        "contact": {"id": 9000 + conv, "name": "Guest", "type": "contact"},
    }
    sender_type = {"user": "User", "agent_bot": "AgentBot"}.get(sender or "", "Contact")
    return {
        "id": mid,
        "content": text,
        "message_type": kind,
        "private": private,
        "created_at": int(at.timestamp()),
        "conversation_id": conv,
        "sender_type": sender_type,
        "sender": senders.get(sender or "contact"),
        "content_attributes": {},
    }


def history() -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """56 conversations (newest activity first) and their messages; the first one is long (paged)."""
    conversations: list[dict[str, Any]] = []
    messages: dict[int, list[dict[str, Any]]] = {}
    mid = 500_000
    for i in range(57):
        conv = 1000 + i
        at = NOW - timedelta(days=1 + i)
        if conv == OLD:
            at = NOW - timedelta(days=200)
        if conv in PLANTED:
            guest, person = PLANTED[conv][:2]
        elif conv == BOOKED:
            guest, person = "What time is check-out?", "Check-out is at 10:00."
        elif i % 7 == 6:
            guest, person = HANDOFF
        else:
            guest, person = AGREEING[i % len(AGREEING)]
        thread: list[dict[str, Any]] = []
        if i == 0:  # 25 activity messages first: the history is read back over two pages
            for n in range(25):
                mid += 1
                thread.append(_msg(mid, conv, 2, f"Conversation was reopened ({n})", at - timedelta(hours=2)))
        thread += [
            _msg(mid := mid + 1, conv, 0, "Hello", at - timedelta(minutes=30)),
            _msg(mid := mid + 1, conv, 1, "Hi! How can I help?", at - timedelta(minutes=29), sender="agent_bot"),
            _msg(mid := mid + 1, conv, 0, guest, at - timedelta(minutes=20)),
            _msg(mid := mid + 1, conv, 1, "checking", at - timedelta(minutes=19), private=True, sender="user"),
            _msg(mid := mid + 1, conv, 1, person, at - timedelta(minutes=18), sender="user"),
            _msg(mid := mid + 1, conv, 0, "Thanks!", at - timedelta(minutes=10)),
        ]
        messages[conv] = thread
        conversations.append(
            {
                "id": conv,
                "inbox_id": 3,
                "status": "resolved",
                "last_activity_at": int(at.timestamp()),
                "created_at": int((at - timedelta(hours=3)).timestamp()),
                "meta": {"sender": {"id": 9000 + conv, "name": "Guest"}},
            }
        )
    return conversations, messages


@pytest.fixture
def past_chatwoot() -> Iterator[respx.MockRouter]:
    conversations, messages = history()

    def conversation_page(req: httpx.Request) -> httpx.Response:
        assert req.headers["api_access_token"] == USER_TOKEN
        assert req.url.params["status"] == "resolved"
        page = int(req.url.params.get("page", "1"))
        batch = conversations[(page - 1) * 25 : page * 25]
        return httpx.Response(200, json={"data": {"meta": {"all_count": len(conversations)}, "payload": batch}})

    def message_page(req: httpx.Request) -> httpx.Response:
        conv = int(req.url.path.split("/")[-2])
        thread = messages[conv]
        before = req.url.params.get("before")
        older = [m for m in thread if before is None or m["id"] < int(before)]
        return httpx.Response(200, json={"meta": {}, "payload": older[-20:]})

    with respx.mock(assert_all_called=True) as router:
        router.get(f"{API}/conversations").mock(side_effect=conversation_page)
        router.get(url__regex=rf"{API}/conversations/\d+/messages").mock(side_effect=message_page)
        yield router


def _book_por_ribeira(dsn: str) -> None:
    """The BOOKED guest's stay covering their question, and a later one that does not."""
    asked = NOW - timedelta(days=1 + BOOKED - 1000)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO properties (code, name, timezone, check_in_time, check_out_time)"
            " VALUES ('por-ribeira', 'Ribeira loft', 'Europe/Lisbon', '16:00', '10:00')"
        )
        for gid, start in (("g-past", asked - timedelta(days=1)), ("g-later", NOW + timedelta(days=30))):
            conn.execute(
                "INSERT INTO reservations (guesty_id, confirmation_code, property_code, status, check_in_at,"
                " check_out_at, check_in_local, check_out_local, chatwoot_contact_id)"
                " VALUES (%s, %s, 'por-ribeira', 'confirmed', %s, %s, %s, %s, %s)",
                (
                    gid,
                    gid.upper(),
                    start,
                    start + timedelta(days=3),
                    start.date(),
                    (start + timedelta(days=3)).date(),
                    9000 + BOOKED,
                ),
            )


async def test_replay_reports_the_shares_and_lists_the_planted_disagreements(
    bot_settings: Any, past_chatwoot: respx.MockRouter, example_retriever: Any
) -> None:
    settings = make_settings(
        bot_settings.database_dsn,
        bot_settings.queue_name,
        CHATWOOT_URL=CHATWOOT,
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_API_TOKEN=USER_TOKEN,
        INBOXES_CONFIG=str(bot_settings.inboxes_config),
    )
    _book_por_ribeira(settings.database_dsn)
    report = await run_async(settings, example_retriever, source="chatwoot", since=NOW - timedelta(days=90))

    assert report.conversations == 56  # the 57th is older than 90 days
    assert len(report.results) == 56
    assert [(int(r.conversation_id), r.kind, r.human_values) for r in report.disagreements] == sorted(
        (conv, kind, vals) for conv, (_, _, kind, vals) in PLANTED.items()
    )
    handoffs = [int(r.conversation_id) for r in report.results if r.verdict == "handoff"]
    assert handoffs == [c for c in range(1000, 1056) if (c - 1000) % 7 == 6 and c not in PLANTED and c != BOOKED]
    booked = next(r for r in report.results if int(r.conversation_id) == BOOKED)
    assert (booked.property_code, booked.booking, booked.verdict) == ("por-ribeira", "G-PAST", "agree")
    assert len(handoffs) == 7
    data = report.to_dict()
    assert (data["questions"], data["answered"], data["agree"], data["differ"], data["unrelated"], data["handoff"]) == (
        56,
        49,
        45,
        4,
        0,
        7,
    )
    assert (data["share_answered"], data["share_agree"], data["share_agree_of_answered"]) == (0.875, 0.8036, 0.9184)
    text = report.to_text()
    assert "would answer:   49/56 (87.5%)" in text
    assert "agrees:         45/56 (80.4%; 91.8% of its answers)" in text
    assert assert_all_valid(past_chatwoot) == 3 + 56 + 1  # pages of conversations, messages (one paged twice)
    assert "  conversation 1003 (" in text and "): times: person 10:00; bot 11:00, 13:00\n" in text


def test_replay_from_the_archive_prints_and_writes_json(
    bot_settings: Any,
    example_retriever: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = bot_settings.database_dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        for room, person in (("r1", "Check-out is by 11:00."), ("r2", "Check-out is at 10:00.")):
            conn.execute(
                "INSERT INTO archived_conversations (room_id, source_system, closed_at, contact_email)"
                " VALUES (%s, 'rocketchat', %s, %s)",
                (room, NOW - timedelta(days=3), f"{room}@example.com"),
            )
            conn.execute(
                "INSERT INTO archived_messages (message_id, room_id, author_kind, body, sent_at) VALUES"
                " (%s, %s, 'guest', 'What time is check-out?', %s), (%s, %s, 'agent', %s, %s)",
                (
                    f"{room}-1",
                    room,
                    NOW - timedelta(days=3, minutes=5),
                    f"{room}-2",
                    room,
                    person,
                    NOW - timedelta(days=3),
                ),
            )
    # The archive has no inboxes: the property comes from the booking whose guest email the room holds.
    book(dsn, guesty_id="g-r1", code="HMR1", starts_in_days=-4, nights=3, email="r1@example.com", phone=None)
    book(dsn, guesty_id="g-r2", code="HMR2", starts_in_days=-4, nights=3, email="R2@example.com", phone=None)
    monkeypatch.setattr("bot.service.replay.Retriever", lambda store, embedder: example_retriever)
    monkeypatch.setattr("bot.service.replay.open_store", lambda settings: None)
    monkeypatch.setattr("bot.service.replay.Embedder.from_settings", lambda settings: None)
    monkeypatch.setattr(
        "bot.service.cli._settings",
        lambda: make_settings(dsn, bot_settings.queue_name, INBOXES_CONFIG=str(bot_settings.inboxes_config)),
    )
    monkeypatch.setattr(example_retriever.store, "close", lambda: None)
    out = tmp_path / "replay.json"
    assert main(["replay", "--from", "archive", "--since", "7d", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "would answer:   2/2 (100.0%)" in printed and "agrees:         1/2 (50.0%" in printed
    report = json.loads(out.read_text())
    assert [(d["conversation_id"], d["kind"], d["human_values"], d["booking"]) for d in report["disagreements"]] == [
        ("r2", "times", ["10:00"], "HMR2")
    ]


def test_a_question_is_a_guest_burst_followed_by_a_persons_public_reply() -> None:
    at = NOW

    def m(mid: str, role: Any, text: str) -> PastMessage:
        return PastMessage(mid, role, text, at)

    conv = PastConversation(
        "c",
        3,
        (
            m("1", "guest", "Hi"),
            m("2", "bot", "Hello!"),
            m("3", "guest", "Parking?"),
            m("4", "guest", "We have a car"),
            m("5", "agent", "Street parking only."),
            m("6", "agent", "Sorry!"),
            m("7", "guest", "ok"),
        ),
    )
    [q] = questions(conv)
    assert (q.text, q.human) == ("Parking?\nWe have a car", "Street parking only.\nSorry!")
    assert [t.role for t in q.turns] == ["guest", "host"]


def test_the_comparison_rule() -> None:
    assert values("from 3pm, 2 towels, 1,200.50 EUR, 10h, 7.30 am") == values("15:00 7:30 10:00 2 1200.5")
    assert compare("Check-out is by 11:00 (11 am).", "Check-out is at 10:00.").human == ("10:00",)
    assert compare("Check-out is by 11:00.", "checkout at 11 please").verdict == "agree"
    assert compare("Towels are in the bedroom wardrobe.", "Extra towels: bedroom wardrobe").verdict == "agree"
    assert compare("The pharmacy is on Rua X.", "Sure, I will call you").verdict == "unrelated"
