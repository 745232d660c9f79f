"""Shadow mode end to end: the bot answers as autopilot would, posts nothing, and keeps what it would have said."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import respx

from bot.answer.offline import OFFLINE_PREFIX
from demo.samples import guest_message
from tests.bot.conftest import API, BOT_TOKEN, calls, qa_rows
from tests.conftest import make_settings

SHADOW_INBOXES = """
[inboxes.6]
mode = "shadow"
property = "lis-alfama"
"""


def shadow_settings(bot_settings: Any, tmp_path: Path) -> Any:
    inboxes = tmp_path / "shadow.toml"
    inboxes.write_text(SHADOW_INBOXES)
    return make_settings(
        bot_settings.database_dsn,
        bot_settings.queue_name,
        CHATWOOT_URL="https://chat.acme.example",
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_BOT_TOKEN=BOT_TOKEN,
        INBOXES_CONFIG=str(inboxes),
        DEBOUNCE_SECONDS="0",
    )


def held(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT inbox_id, conversation_id, message_id, action, content FROM shadow_replies ORDER BY id"
        ).fetchall()


def writes(router: respx.MockRouter) -> list[tuple[str, str, Any]]:
    return [c for c in calls(router) if c[0] != "GET"]


def test_shadow_answer_posts_nothing_and_keeps_the_reply(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(80, 9801, "Hi! What time is check-out?", inbox_id=6))
    drain(shadow_settings(bot_settings, tmp_path))
    assert writes(chatwoot) == []  # no typing indicator, no reply: reads only
    assert [p for _, p, _ in calls(chatwoot)] == ["/conversations/80"]  # the still-pending re-check
    [(inbox, conv, message, action, content)] = held(bot_settings.database_dsn)
    assert (inbox, conv, message, action) == (6, 80, 9801, "reply")
    assert content.splitlines()[0] == OFFLINE_PREFIX and "Check-out is by 11:00 (11 am)." in content
    assert qa_rows(bot_settings.database_dsn) == [(80, [9801], "shadow", "offline", "answered", None)]


def test_shadow_hand_off_keeps_note_reply_label_and_status_unsent(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(81, 9802, "Can I talk to a person please?", inbox_id=6))
    drain(shadow_settings(bot_settings, tmp_path))
    assert writes(chatwoot) == []
    assert [(a, c) for _, _, _, a, c in held(bot_settings.database_dsn)] == [
        (
            "note",
            "🤖 Handed off to a person.\nThe guest asked to talk to a person. Over to you.\n\n"
            "Guest wrote:\n> Can I talk to a person please?",
        ),
        ("reply", "I'm passing your message to a colleague, who will reply here shortly."),
        ("labels", "bot-handoff"),
        ("status", "open"),
    ]
    assert qa_rows(bot_settings.database_dsn)[0][2:] == ("shadow", "none", "handed_off", "human_requested")


def test_shadow_keeps_the_language_attribute_instead_of_writing_it(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(82, 9803, "Olá! A que horas é o check-out do apartamento?", inbox_id=6))
    drain(shadow_settings(bot_settings, tmp_path))
    assert writes(chatwoot) == []
    actions = [(a, c) for _, _, _, a, c in held(bot_settings.database_dsn)]
    assert actions[0] == (
        "POST /conversations/82/custom_attributes",
        json.dumps({"custom_attributes": {"language": "pt"}}),
    )
    assert [a for a, _ in actions[1:]] == ["reply"]


def test_shadow_still_raises_urgent_alerts(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    chatwoot.post(url__regex=rf"{API}/conversations/\d+/toggle_priority").respond(200, json={})
    deliver(guest_message(83, 9804, "There is a smell of gas in the flat", inbox_id=6))
    drain(shadow_settings(bot_settings, tmp_path))
    made = writes(chatwoot)
    assert made[0] == ("POST", "/conversations/83/toggle_priority", {"priority": "urgent"})
    assert [p for _, p, _ in made] == [
        "/conversations/83/toggle_priority",
        "/conversations/83/labels",
        "/conversations/83/messages",
    ]  # the alert, and nothing of the answer
    assert made[2][2]["private"] is True and made[2][2]["content"].startswith("🚨 Urgent (gas)")
    assert {a for _, _, _, a, _ in held(bot_settings.database_dsn)} <= {"reply", "note", "labels", "status"}


def test_shadow_stays_silent_once_an_agent_replied(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    deliver(guest_message(84, 9805, "What time is check-out?", inbox_id=6, status="open"))
    drain(shadow_settings(bot_settings, tmp_path))
    assert calls(chatwoot) == [] and held(bot_settings.database_dsn) == []  # autopilot's rule: pending only


def test_replies_list_shows_what_the_bot_would_have_said(
    bot_settings: Any,
    chatwoot: respx.MockRouter,
    deliver: Any,
    drain: Any,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: Any,
) -> None:
    from bot.service.cli import main

    deliver(guest_message(85, 9806, "Can I talk to a person please?", inbox_id=6))
    drain(shadow_settings(bot_settings, tmp_path))
    monkeypatch.setenv("DATABASE_URL", bot_settings.database_dsn)
    capsys.readouterr()
    assert main(["replies", "list", "--inbox", "6", "--since", "1d", "--json"]) == 0
    [answer] = json.loads(capsys.readouterr().out)
    assert {
        k: answer[k]
        for k in ("inbox_id", "conversation_id", "message_ids", "question", "answer", "sources", "decision", "reason")
    } == {
        "inbox_id": 6,
        "conversation_id": 85,
        "message_ids": [9806],
        "question": "Can I talk to a person please?",
        "answer": None,
        "sources": [],
        "decision": "handed_off",
        "reason": "human_requested",
    }
    assert isinstance(answer["latency_ms"], int)
    assert [w["action"] for w in answer["would_send"]] == ["note", "reply", "labels", "status"]
    assert main(["replies", "list"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].endswith(
        f" inbox 6 conversation 85 message 9806: handed_off (human_requested), {answer['latency_ms']} ms"
    )
    assert text[1:4] == [
        "  Q: Can I talk to a person please?",
        "  Sources: none",
        "  would note: 🤖 Handed off to a person.",
    ]
    assert main(["replies", "list", "--inbox", "3"]) == 0
    assert capsys.readouterr().out == "No shadow-mode answers in this period.\n"


def test_shadow_voice_note_keeps_transcript_note_and_text_answer_without_speaking(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    from tests.bot.test_voice import QUESTION, TTS, voice_note

    tts = chatwoot.post(TTS).respond(500)
    settings = shadow_settings(bot_settings, tmp_path).model_copy(
        update={
            "speech_backend": "azure",
            "azure_speech_key": SecretStr("az-key-1"),
            "azure_speech_region": "westeurope",
        }
    )
    deliver(voice_note(86, 9807, inbox_id=6, transcribed=QUESTION))  # Chatwoot's own transcript: nothing to fetch
    drain(settings)
    assert writes(chatwoot) == [] and tts.call_count == 0
    kept = held(bot_settings.database_dsn)
    assert sorted(a for _, _, _, a, _ in kept) == ["note", "reply"]
    [answer] = [c for _, _, _, a, c in kept if a == "reply"]
    assert "Check-out is by 11:00 (11 am)." in answer.splitlines()
    assert qa_rows(bot_settings.database_dsn) == [(86, [9807], "shadow", "offline", "answered", None)]
