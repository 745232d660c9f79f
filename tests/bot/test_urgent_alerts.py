"""Urgent alerts end to end, in every inbox mode."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from demo.samples import guest_message
from integrations.chatwoot.tests.spec import assert_all_valid
from tests.bot.conftest import API, BOT_TOKEN, calls, messages_posted
from tests.conftest import make_settings


def test_a_french_lockout_in_a_copilot_inbox_raises_priority_urgent(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    chatwoot.post(url__regex=rf"{API}/conversations/\d+/toggle_priority").respond(200, json={})
    deliver(guest_message(70, 9500, "on est bloqués dehors", inbox_id=4))
    deliver(guest_message(70, 9500, "on est bloqués dehors", inbox_id=4))  # redelivered: alerts once
    drain()
    made = calls(chatwoot)
    assert ("POST", "/conversations/70/toggle_priority", {"priority": "urgent"}) in made
    assert ("POST", "/conversations/70/labels", {"labels": ["vip", "urgent"]}) in made or any(
        p == "/conversations/70/labels" and "urgent" in (b or {}).get("labels", []) for _, p, b in made
    )
    notes = [b["content"] for _, b in messages_posted(chatwoot) if b["content"].startswith("🚨")]
    assert notes == [
        "🚨 Urgent (lockout): the guest may need help now. Priority set to urgent.\n\n"
        "Guest wrote:\n> on est bloqués dehors"
    ]
    assert sum(1 for m, p, _ in made if p.endswith("toggle_priority")) == 1
    assert_all_valid(chatwoot, bot_token=BOT_TOKEN)


def test_an_off_inbox_still_alerts_assigns_the_team_and_pages(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    chatwoot.post(url__regex=rf"{API}/conversations/\d+/toggle_priority").respond(200, json={})
    chatwoot.post(url__regex=rf"{API}/conversations/\d+/assignments").respond(200, json={})
    pager = chatwoot.post("https://pager.example/hook").respond(202)
    settings = make_settings(
        bot_settings.database_dsn,
        bot_settings.queue_name,
        **{
            "CHATWOOT_URL": "https://chat.acme.example",
            "CHATWOOT_ACCOUNT_ID": "1",
            "CHATWOOT_BOT_TOKEN": BOT_TOKEN,
            "INBOXES_CONFIG": str(bot_settings.inboxes_config),
            "DEBOUNCE_SECONDS": "0",
            "URGENT_TEAM_ID": "7",
            "URGENT_WEBHOOK_URL": "https://pager.example/hook",
        },
    )
    deliver(guest_message(71, 9600, "Es riecht nach Gas im Flur", inbox_id=5))
    drain(settings)
    made = calls(chatwoot)
    assert ("POST", "/conversations/71/assignments", {"team_id": 7}) in made
    page = json.loads(pager.calls.last.request.content)
    assert page["category"] == "gas" and page["conversation_id"] == 71 and page["message_id"] == 9600
    assert not any(not b["private"] for _, b in messages_posted(chatwoot))  # off: nothing said to the guest


def test_an_ordinary_question_raises_nothing(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(guest_message(72, 9700, "Where is the fire extinguisher?", inbox_id=5))
    drain()
    assert calls(chatwoot) == []


def test_a_retry_after_the_pager_failed_pages_again_but_leaves_one_note(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    chatwoot.post(url__regex=rf"{API}/conversations/\d+/toggle_priority").respond(200, json={})
    pager = chatwoot.post("https://pager.example/hook").mock(side_effect=[httpx.Response(500), httpx.Response(202)])
    settings = bot_settings.model_copy(
        update={"urgent_webhook_url": "https://pager.example/hook", "job_backoff_base_s": 0.0}
    )
    deliver(guest_message(73, 9800, "There is smoke coming from the kitchen", inbox_id=5))
    drain(settings)
    assert pager.call_count == 2  # the failed page made the alert run again
    notes = [b for _, b in messages_posted(chatwoot) if b["content"].startswith("🚨")]
    assert len(notes) == 1 and notes[0]["content_attributes"] == {"sidecar_reply_key": "urgent-note:9800"}
