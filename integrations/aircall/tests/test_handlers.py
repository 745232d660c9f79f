"""Aircall events end to end: Postgres (call_records, ledger, contact cache) and exact Chatwoot requests.

Chatwoot is the in-memory fake of chatwoot_fake.py; every request it receives is also checked against
Chatwoot's OpenAPI spec with integrations/chatwoot/tests/spec.validate_request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import redis
import respx
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bot.context import JobContext
from bot.errors import Defer, PermanentError
from integrations.aircall.handlers import HANDLERS, SUPPORTED_EVENTS
from integrations.aircall.tests.chatwoot_fake import FakeChatwoot
from integrations.aircall.tests.conftest import (
    AIRCALL_API,
    BOT_TOKEN,
    CALLS_INBOX,
    CHATWOOT_URL,
    MY_TABLES,
    REDIS_URL,
    USER_TOKEN,
    World,
    no_sleep,
    payload,
    settings_for,
    stored,
)
from integrations.chatwoot.client import ChatwootClient, ChatwootNotFound
from integrations.chatwoot.tests.spec import validate_request

OLIVER = "+447700900123"
REC = "https://assets.aircall.io/recording/2187340091"
VM = "https://assets.aircall.io/voicemail/2187411752"
ANSWERED_NOTE = (
    "📞 Inbound call from +44 7700 900123 on Guest line - Lisbon, answered by Marta Silva. Talked 6 min 54 s."
)
COMMENT_NOTE = "💬 Aircall comment by Marta Silva: Guest arriving late (23:00); sent self check-in code."
FRESH_VM = (
    "https://aircall-prod-voicemails.s3.eu-west-1.amazonaws.com/calls/2187411752/voicemail.mp3?X-Amz-Signature=new"
)


async def run(world: World, body: dict[str, Any]) -> str | None:
    return await HANDLERS[body["event"]](world.ctx, stored(body))


def assert_valid(world: World) -> int:
    """Every request sent to Chatwoot fits its OpenAPI spec (and bot-token calls are allowed to bots)."""
    for request in world.chatwoot.requests:
        validate_request(request, bot_token=BOT_TOKEN)
    return len(world.chatwoot.requests)


def query(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return list(conn.execute(sql, params).fetchall())


def call_row(dsn: str, call_id: int) -> dict[str, Any]:
    (row,) = query(dsn, "SELECT * FROM call_records WHERE aircall_call_id = %s", call_id)
    return row


def ledger(dsn: str) -> dict[str, str]:
    return {r["reply_key"]: r["status"] for r in query(dsn, "SELECT reply_key, status FROM bot_replies")}


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def message_body(content: str, key: str) -> dict[str, Any]:
    """A private note as posted: marked with its reply key, so a lost outcome is read back, not posted twice."""
    return {
        "content": content,
        "message_type": "outgoing",
        "private": True,
        "content_attributes": {"sidecar_reply_key": key},
    }


def test_every_aircall_call_event_and_ai_event_has_a_handler() -> None:
    assert len([e for e in SUPPORTED_EVENTS if e.startswith("call.")]) == 19
    assert {"transcription.created", "summary.created"} <= SUPPORTED_EVENTS


# ------------------------------------------------------------------------------------ one event


async def test_answered_call_lands_on_a_new_contact_with_notes(world: World) -> None:
    assert await run(world, payload("call.ended")) == "done"
    fake = world.chatwoot
    (contact_inbox,) = [r for r in fake.contact_inboxes if r["inbox"]["id"] == CALLS_INBOX][1:]  # 1st: on create
    assert fake.calls() == [
        ("GET", "/contacts/search", {"q": "oliver.bennett@example.co.uk", "page": "1"}),
        ("GET", "/contacts/search", {"q": OLIVER, "page": "1"}),
        (
            "POST",
            "/contacts",
            {
                "name": "Oliver Bennett",
                "email": "oliver.bennett@example.co.uk",
                "phone_number": OLIVER,
                "inbox_id": CALLS_INBOX,
            },
        ),
        ("GET", "/contacts/501/conversations", {}),
        ("POST", "/contacts/501/contact_inboxes", {"inbox_id": CALLS_INBOX}),
        (
            "POST",
            "/conversations",
            {"inbox_id": CALLS_INBOX, "contact_id": 501, "source_id": contact_inbox["source_id"]},
        ),
        (
            "POST",
            "/conversations/41/messages",
            message_body(f"{ANSWERED_NOTE}\n🎧 Recording (in Aircall): {REC}", "aircall:2187340091:outcome"),
        ),
        ("POST", "/conversations/41/messages", message_body(COMMENT_NOTE, "aircall:2187340091:comment:7781200")),
        (
            "POST",
            "/conversations/41/messages",
            message_body("🏷 Aircall tag added: check-in", "aircall:2187340091:tag:201334"),
        ),
        (
            "PUT",
            "/contacts/501",
            {"custom_attributes": {"last_call_at": "2026-01-09T11:30:11Z", "last_call_outcome": "answered"}},
        ),
    ]
    assert assert_valid(world) == 10
    assert fake.conversations[41]["status"] == "open" and fake.conversations[41]["labels"] == []  # left alone
    row = call_row(world.dsn, 2187340091)
    assert {
        k: row[k]
        for k in (
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
            "chatwoot_contact_id",
            "chatwoot_conversation_id",
            "last_event",
            "last_event_at",
        )
    } == {
        "direction": "inbound",
        "status": "done",
        "missed_call_reason": None,
        "caller_e164": OLIVER,
        "started_at": at(1767958211),
        "answered_at": at(1767958226),
        "ended_at": at(1767958640),
        "duration_s": 429,
        "agent_name": "Marta Silva",
        "recording_asset_url": REC,
        "voicemail_asset_url": None,
        "tags": ["check-in"],
        "chatwoot_contact_id": 501,
        "chatwoot_conversation_id": 41,
        "last_event": "call.ended",
        "last_event_at": at(1767958671),
    }
    assert "recording" not in row["raw"] and "recording_short_url" not in row["raw"]
    assert ledger(world.dsn) == {
        "aircall:2187340091:outcome": "posted",
        "aircall:2187340091:recording": "posted",
        "aircall:2187340091:comment:7781200": "posted",
        "aircall:2187340091:tag:201334": "posted",
        "aircall:2187340091:contact:answered": "posted",
    }
    assert {r["key"]: r["chatwoot_contact_id"] for r in query(world.dsn, "SELECT * FROM contact_links")} == {
        "email:oliver.bennett@example.co.uk": 501,
        f"phone:{OLIVER}": 501,
    }
    assert fake.contacts[501]["custom_attributes"] == {
        "last_call_at": "2026-01-09T11:30:11Z",
        "last_call_outcome": "answered",
    }


async def test_the_same_event_twice_posts_nothing_more(world: World) -> None:
    await run(world, payload("call.ended"))
    sent = len(world.chatwoot.requests)
    assert await run(world, payload("call.ended")) == "done"
    assert len(world.chatwoot.requests) == sent  # not even a lookup
    assert len(world.chatwoot.messages) == 3


@pytest.mark.parametrize("saved", [False, True], ids=["lost before saving", "saved, then a 500"])
async def test_a_failed_post_is_retried_without_repeating_what_was_posted(world: World, saved: bool) -> None:
    original = world.chatwoot.handle
    failures = {"left": 1}

    async def flaky(request: httpx.Request) -> httpx.Response:
        posting = request.method == "POST" and request.url.path.endswith("/messages")
        if posting and b"Aircall comment" in request.content and failures["left"]:
            failures["left"] -= 1
            if saved:  # Chatwoot saved the note, then the answer was lost
                await original(request)
            else:
                world.chatwoot.requests.append(request)
            return httpx.Response(500, json={"error": "boom"})
        return await original(request)

    world.chatwoot.handle = flaky  # type: ignore[method-assign]
    world.chatwoot.install(world.router)
    with pytest.raises(Exception, match="answered 500"):
        await run(world, payload("call.ended"))
    assert ledger(world.dsn)["aircall:2187340091:comment:7781200"] == "unknown"  # a 500 may have saved it
    world.ctx = replace(world.ctx, settings=world.ctx.settings.model_copy(update={"reply_settle_s": 0.0}))
    assert await run(world, payload("call.ended")) == "done"  # read back first: found, or posted now
    assert world.chatwoot.notes() == [
        f"{ANSWERED_NOTE}\n🎧 Recording (in Aircall): {REC}",
        COMMENT_NOTE,
        "🏷 Aircall tag added: check-in",
    ]
    assert set(ledger(world.dsn).values()) == {"posted"}
    assert len(world.chatwoot.calls("POST", "/contacts")) == 1


async def test_missed_call_opens_a_new_conversation_and_flags_a_call_back(world: World) -> None:
    fake = world.chatwoot
    guest = fake.add_contact("Hannah Weber", phone="+4930901820")
    fake.add_conversation(guest["id"], CALLS_INBOX, status="resolved")  # 41: an old, resolved call
    fake.add_conversation(guest["id"], 3, status="open")  # 42: open, but on the website inbox
    assert await run(world, payload("call.hungup-missed-known")) == "done"
    (contact_inbox,) = fake.contact_inboxes
    assert fake.calls() == [
        ("GET", "/contacts/search", {"q": "+4930901820", "page": "1"}),
        ("GET", "/contacts/501/conversations", {}),
        ("POST", "/contacts/501/contact_inboxes", {"inbox_id": CALLS_INBOX}),
        (
            "POST",
            "/conversations",
            {"inbox_id": CALLS_INBOX, "contact_id": 501, "source_id": contact_inbox["source_id"]},
        ),
        (
            "POST",
            "/conversations/43/messages",
            message_body(
                "📵 Missed call from +49 30 901820 on Guest line - Lisbon: no agent was available. Please call back.",
                "aircall:2187360001:outcome",
            ),
        ),
        ("POST", "/conversations/43/toggle_status", {"status": "open"}),
        ("GET", "/conversations/43/labels", {}),
        ("POST", "/conversations/43/labels", {"labels": ["missed-call"]}),
        (
            "PUT",
            "/contacts/501",
            {"custom_attributes": {"last_call_at": "2026-01-09T14:50:05Z", "last_call_outcome": "missed"}},
        ),
    ]
    assert_valid(world)
    assert fake.conversations[43]["labels"] == ["missed-call"] and fake.conversations[43]["priority"] is None
    assert call_row(world.dsn, 2187360001)["missed_call_reason"] == "no_available_agent"


async def test_an_open_conversation_in_the_calls_inbox_is_reused(world: World) -> None:
    fake = world.chatwoot
    guest = fake.add_contact("Hannah Weber", phone="+4930901820")
    pending = fake.add_conversation(guest["id"], CALLS_INBOX, status="pending")
    pending["labels"] = ["vip"]
    await run(world, payload("call.hungup-missed-known"))
    assert not fake.calls("POST", "/conversations") and not fake.contact_inboxes
    assert fake.conversations[41]["status"] == "open"
    assert fake.calls("POST", "/conversations/41/labels") == [
        ("POST", "/conversations/41/labels", {"labels": ["vip", "missed-call"]})
    ]
    assert_valid(world)


async def test_voicemail_is_transcribed_from_a_fresh_url_and_raised_to_high_priority(world: World) -> None:
    asked: list[str] = []

    async def transcribe(url: str) -> str | None:
        asked.append(url)
        return " Bonjour, nous arriverons vers 22h, pouvez-vous laisser la clé ? "

    world.ctx.extras["transcribe_voicemail"] = transcribe
    world.router.get(f"{AIRCALL_API}/v1/calls/2187411752").respond(
        200, json={"call": {**payload("call.voicemail_left")["data"], "voicemail": FRESH_VM}}
    )
    assert await run(world, payload("call.voicemail_left")) == "done"
    assert asked == [FRESH_VM]
    fake = world.chatwoot
    assert fake.notes() == [
        "📵 Missed call from +33 6 12 34 56 78 on Guest line - Lisbon: called outside opening hours. A voicemail was "
        f"left; please call back.\n🎙 Voicemail (in Aircall): {VM}\n"
        "Transcript: “Bonjour, nous arriverons vers 22h, pouvez-vous laisser la clé ?”"
    ]
    assert fake.calls(path=r"/conversations/41/(toggle_status|labels|toggle_priority)") == [
        ("POST", "/conversations/41/toggle_status", {"status": "open"}),
        ("GET", "/conversations/41/labels", {}),
        ("POST", "/conversations/41/labels", {"labels": ["missed-call", "voicemail"]}),
        ("POST", "/conversations/41/toggle_priority", {"priority": "high"}),
    ]
    assert fake.contacts[501]["name"] == "+33 6 12 34 56 78"  # unknown to Aircall: named after the number
    assert_valid(world)
    row = call_row(world.dsn, 2187411752)
    assert row["voicemail_transcript"] == "Bonjour, nous arriverons vers 22h, pouvez-vous laisser la clé ?"
    assert row["voicemail_asset_url"] == VM
    dump = str(query(world.dsn, "SELECT * FROM call_records")) + str(query(world.dsn, "SELECT * FROM bot_replies"))
    assert "X-Amz" not in dump  # no expiring media URL is ever stored


async def test_a_failing_transcriber_does_not_hold_back_the_voicemail_note(world: World) -> None:
    asked: list[str] = []

    async def broken(url: str) -> str | None:
        asked.append(url)
        raise RuntimeError("speech service down")

    world.ctx.extras["transcribe_voicemail"] = broken
    world.ctx.settings.aircall_api_token = None  # no API: the event's own URL is used
    body = payload("call.voicemail_left")
    assert await run(world, body) == "done"
    assert asked == [body["data"]["voicemail"]]
    assert world.chatwoot.notes()[0].endswith(f"🎙 Voicemail (in Aircall): {VM}")
    assert call_row(world.dsn, 2187411752)["voicemail_transcript"] is None


async def test_voicemail_after_the_missed_call_note(world: World) -> None:
    hungup = payload("call.voicemail_left", asset=None, voicemail=None)
    hungup.update(event="call.hungup", timestamp=1767990332)
    await run(world, hungup)
    await run(world, payload("call.voicemail_left"))
    ended = payload("call.voicemail_left")
    ended.update(event="call.ended", timestamp=1767990362)
    await run(world, ended)
    assert world.chatwoot.notes() == [
        "📵 Missed call from +33 6 12 34 56 78 on Guest line - Lisbon: called outside opening hours. Please call back.",
        f"🎙 +33 6 12 34 56 78 left a voicemail (in Aircall): {VM}",
    ]
    assert world.chatwoot.calls("POST", r"/conversations/41/labels") == [
        ("POST", "/conversations/41/labels", {"labels": ["missed-call"]}),
        ("POST", "/conversations/41/labels", {"labels": ["missed-call", "voicemail"]}),
    ]
    assert [body for _, _, body in world.chatwoot.calls("PUT")] == [
        {"custom_attributes": {"last_call_at": "2026-01-09T20:24:30Z", "last_call_outcome": "missed"}},
        {"custom_attributes": {"last_call_at": "2026-01-09T20:24:30Z", "last_call_outcome": "voicemail"}},
    ]
    assert_valid(world)


async def test_anonymous_call_is_recorded_but_attached_to_no_one(world: World) -> None:
    assert await run(world, payload("call.hungup-missed")) == "done"
    assert world.chatwoot.requests == []
    row = call_row(world.dsn, 2187355604)
    assert (row["caller_e164"], row["status"], row["missed_call_reason"], row["chatwoot_contact_id"]) == (
        None,
        "done",
        "agents_did_not_answer",
        None,
    )
    assert ledger(world.dsn) == {} and query(world.dsn, "SELECT * FROM contact_links") == []


async def test_outbound_call_and_transfer(world: World) -> None:
    await run(world, payload("call.ended-outbound"))
    await run(world, payload("call.transferred"))
    assert world.chatwoot.notes() == [
        "📞 Outbound call to +1 415-555-0134 from Guest line - Lisbon by Marta Silva. Talked 4 min 6 s.\n"
        "🎧 Recording (in Aircall): https://assets.aircall.io/recording/2187370555",
        "↪️ Call transferred by Marta Silva to João Costa.",
    ]
    assert [m["conversation_id"] for m in world.chatwoot.messages] == [41, 42]  # two callers, two conversations
    assert [c["phone_number"] for c in world.chatwoot.contacts.values()] == ["+14155550134", "+351912345678"]
    assert_valid(world)


async def test_tags_and_comments_each_posted_once_whichever_event_brings_them(world: World) -> None:
    for name in ("call.commented", "call.ended", "call.tagged", "call.commented"):
        await run(world, payload(name))
    notes = world.chatwoot.notes()
    assert sorted(n for n in notes if n.startswith(("💬", "🏷"))) == sorted(
        [
            COMMENT_NOTE,
            "💬 Aircall comment by Marta Silva: Called back to confirm parking at the building.",
            "🏷 Aircall tag added: check-in",
            "🏷 Aircall tag added: late-arrival",
        ]
    )
    assert call_row(world.dsn, 2187340091)["tags"] == ["check-in", "late-arrival"]


async def test_not_configured_chatwoot_still_records_the_call(world: World, pool: AsyncConnectionPool) -> None:
    ctx = replace_ctx(world, chatwoot=None)
    assert await HANDLERS["call.ended"](ctx, stored(payload("call.ended"))) == "skipped"
    assert world.chatwoot.requests == []
    assert call_row(world.dsn, 2187340091)["status"] == "done"


async def test_a_deleted_conversation_is_replaced_on_the_retry(world: World) -> None:
    await run(world, payload("call.ended"))
    del world.chatwoot.conversations[41]  # an agent deleted it
    with pytest.raises(ChatwootNotFound):
        await run(world, payload("call.tagged"))
    assert call_row(world.dsn, 2187340091)["chatwoot_conversation_id"] is None
    await run(world, payload("call.tagged"))
    assert call_row(world.dsn, 2187340091)["chatwoot_conversation_id"] == 42
    assert world.chatwoot.notes(42) == ["🏷 Aircall tag added: late-arrival"]


async def test_a_deleted_contact_is_looked_up_again(world: World) -> None:
    await run(world, payload("call.ended"))
    del world.chatwoot.contacts[501]
    world.chatwoot.conversations.clear()
    other = payload("call.hungup-missed-known", raw_digits="+44 7700 900123", id=2187360002)
    with pytest.raises(ChatwootNotFound):  # the cache still points at contact 501
        await run(world, other)
    assert query(world.dsn, "SELECT * FROM contact_links") == []
    await run(world, other)
    assert call_row(world.dsn, 2187360002)["chatwoot_contact_id"] == 501 + 1  # recreated


async def test_only_the_latest_call_writes_the_contact_attributes(world: World) -> None:
    later = payload(
        "call.hungup-missed-known",
        raw_digits="+44 7700 900123",
        id=2187360002,
        started_at=1767990000,
        ended_at=1767990030,
    )
    await run(world, later)
    await run(world, payload("call.ended"))  # an earlier call, processed after
    assert [body for _, _, body in world.chatwoot.calls("PUT")] == [
        {"custom_attributes": {"last_call_at": "2026-01-09T20:20:00Z", "last_call_outcome": "missed"}}
    ]
    assert world.chatwoot.contacts[501]["custom_attributes"]["last_call_outcome"] == "missed"
    assert ledger(world.dsn)["aircall:2187340091:contact:answered"] == "posted"  # settled, not retried


# ------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    "raw_digits", ["+33 6 12 34 56 78", "+33612345678", "0033 6 12 34 56 78", "33612345678", "+33 (0)6 12 34 56 78"]
)
async def test_every_format_of_a_number_finds_the_same_contact(world: World, raw_digits: str) -> None:
    fake = world.chatwoot
    fake.add_contact("Décoy longer number", phone="+336123456789")  # 501: contains our digits
    fake.add_contact("Camille +33612345678 Martin")  # 502: the digits are only in the name
    camille = fake.add_contact("Camille Martin", phone="+33612345678")  # 503
    body = payload("call.voicemail_left", raw_digits=raw_digits)
    assert await run(world, body) == "done"
    assert fake.calls("GET", "/contacts/search") == [("GET", "/contacts/search", {"q": "+33612345678", "page": "1"})]
    assert not fake.calls("POST", "/contacts")
    assert call_row(world.dsn, 2187411752)["chatwoot_contact_id"] == camille["id"]


async def test_a_contact_found_by_email_gets_the_phone_it_lacks(world: World) -> None:
    guest = world.chatwoot.add_contact("Oliver B.", email="Oliver.Bennett@example.co.uk")
    await run(world, payload("call.ended"))
    assert world.chatwoot.calls("PUT", r"/contacts/\d+")[0] == (
        "PUT",
        f"/contacts/{guest['id']}",
        {"phone_number": OLIVER},
    )
    assert {r["key"] for r in query(world.dsn, "SELECT key FROM contact_links")} == {
        "email:oliver.bennett@example.co.uk",
        f"phone:{OLIVER}",
    }
    assert_valid(world)


# ----------------------------------------------------------------------------------- concurrency


async def test_concurrent_calls_from_a_new_number_create_one_contact_and_one_conversation(world: World) -> None:
    world.chatwoot.delay = 0.05  # every search and create takes a while, so the jobs overlap
    bodies = [payload("call.hungup-missed-known", id=2187360100 + i, raw_digits="+351 912 345 678") for i in range(5)]
    results = await asyncio.gather(*(run(world, body) for body in bodies))
    assert results == ["done"] * 5
    fake = world.chatwoot
    assert len(fake.calls("POST", "/contacts")) == 1
    assert len(fake.calls("POST", "/conversations")) == 1
    assert Counter(m["conversation_id"] for m in fake.messages) == {41: 5}
    assert {r["chatwoot_contact_id"] for r in query(world.dsn, "SELECT chatwoot_contact_id FROM call_records")} == {501}


async def test_concurrent_first_lookups_with_separate_pools_create_one_contact(world: World) -> None:
    """Jobs in different worker processes: each has its own pool (its own connections)."""
    world.chatwoot.delay = 0.05
    bodies = [payload("call.hungup-missed-known", id=2187360200 + i, raw_digits="+351 912 345 678") for i in range(4)]
    async with AsyncExitPools(world.dsn, len(bodies)) as pools:
        ctxs = [replace_ctx(world, db=db) for db in pools]
        await asyncio.gather(*(HANDLERS[b["event"]](ctx, stored(b)) for ctx, b in zip(ctxs, bodies, strict=True)))
    assert len(world.chatwoot.calls("POST", "/contacts")) == 1
    assert len(world.chatwoot.calls("POST", "/conversations")) == 1


# ------------------------------------------------------------------------------- arrival order

LIFE = ["call.hungup", "call.ended", "call.tagged", "call.comm_assets_generated"]


async def test_a_call_ends_in_the_same_state_whatever_the_order(aircall_db: str, pool: AsyncConnectionPool) -> None:
    dsn = aircall_db
    expected: dict[str, Any] | None = None
    for order in itertools.permutations(LIFE):  # 24 orders, each on an empty database
        await reset(pool)
        async with make_world(dsn, pool) as world:
            for name in order:
                await run(world, payload(name))
            row = call_row(dsn, 2187340091)
            state = {k: v for k, v in row.items() if k not in ("id", "updated_at")}
            expected = expected or state
            assert state == expected, order
            notes = world.chatwoot.notes()
            assert sum(REC in n for n in notes) == 1, (order, notes)  # the recording link exactly once
            assert sum(n.startswith(ANSWERED_NOTE) for n in notes) == 1
            assert sum(n == COMMENT_NOTE for n in notes) == 1
            assert sum(n == "🏷 Aircall tag added: check-in" for n in notes) == 1
            assert sum(n == "🏷 Aircall tag added: late-arrival" for n in notes) == 1
            assert len(notes) in (4, 5)  # the recording in the outcome note, or on its own
            assert len(world.chatwoot.contacts) == 1 and len(world.chatwoot.conversations) == 1
            assert_valid(world)
    assert expected is not None
    assert (expected["status"], expected["tags"], expected["recording_asset_url"], expected["last_event"]) == (
        "done",
        ["check-in", "late-arrival"],
        REC,
        "call.comm_assets_generated",
    )


# ------------------------------------------------------------------------------------------- AI


async def test_ai_transcript_and_summary_are_posted_once(world: World) -> None:
    await run(world, payload("call.ended"))
    assert await run(world, payload("transcription.created")) == "done"
    assert await run(world, payload("summary.created")) == "done"
    await run(world, payload("summary.created"))
    assert world.chatwoot.notes()[3:] == [
        "📝 Aircall AI transcript of the call with +44 7700 900123:\n"
        "Marta Silva: Good morning, Lisbon guest line, Marta speaking.\n"
        "Guest: Hi, it's Oliver Bennett, booking HM4KQZ8X2T. Our flight is delayed, we'll land around ten.\n"
        "Marta Silva: No problem, I'll send you the self check-in code by message.",
        "✨ Aircall AI summary of the call with +44 7700 900123:\n"
        "Oliver Bennett (booking HM4KQZ8X2T) will arrive around 23:00 because of a delayed flight. "
        "Marta will send the self check-in code by message.",
    ]
    row = call_row(world.dsn, 2187340091)
    assert row["ai_summary"].startswith("Oliver Bennett") and row["ai_transcript"].startswith("Marta Silva:")
    assert_valid(world)


async def test_ai_event_before_any_call_event_reads_the_call_and_the_transcript_from_aircall(world: World) -> None:
    call = payload("call.ended")["data"]
    world.router.get(f"{AIRCALL_API}/v1/calls/2187340091").respond(200, json={"call": call})
    world.router.get(f"{AIRCALL_API}/v1/calls/2187340091/transcription").respond(
        200, json={"transcription": payload("transcription.created")["data"]}
    )
    assert await run(world, payload("transcription.created-ids-only")) == "done"
    (note,) = world.chatwoot.notes()
    assert note.startswith("📝 Aircall AI transcript of the call with +44 7700 900123:\nMarta Silva: Good morning")
    row = call_row(world.dsn, 2187340091)
    assert (row["last_event"], row["chatwoot_contact_id"], row["agent_name"]) == ("api.call", 501, "Marta Silva")
    await run(world, payload("call.ended"))  # the call's own events still post their notes
    assert len(world.chatwoot.notes()) == 4


async def test_summary_without_content_is_read_from_aircall_or_ignored(world: World) -> None:
    await run(world, payload("call.ended"))
    bare = payload("summary.created", content=None)
    route = world.router.get(f"{AIRCALL_API}/v1/calls/2187340091/summary").mock(
        side_effect=[
            httpx.Response(404, json={"error": "Not found"}),
            httpx.Response(
                200, json={"summary": {"id": 1, "call_id": 2187340091, "content": "Guest will arrive late."}}
            ),
        ]
    )
    assert await run(world, bare) == "ignored"  # no summary (yet): nothing posted
    assert await run(world, bare) == "done"
    assert route.call_count == 2
    assert world.chatwoot.notes()[-1] == (
        "✨ Aircall AI summary of the call with +44 7700 900123:\nGuest will arrive late."
    )
    world.ctx.settings.aircall_api_id = None
    assert await run(world, payload("transcription.created-ids-only")) == "ignored"  # no content, no API


async def test_ai_event_without_api_keys_waits_for_the_call(world: World) -> None:
    world.ctx.settings.aircall_api_id = None
    with pytest.raises(Defer):
        await run(world, payload("summary.created"))
    old = replace(stored(payload("summary.created")), received_at=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(PermanentError, match="AIRCALL_API_ID"):
        await HANDLERS["summary.created"](world.ctx, old)


async def test_unparseable_payloads_fail_permanently(world: World) -> None:
    with pytest.raises(PermanentError, match="not a call object"):
        await run(world, {"event": "call.ended", "timestamp": 1, "data": {"direction": "inbound"}})
    with pytest.raises(PermanentError, match="envelope"):
        await HANDLERS["call.ended"](world.ctx, replace(stored(payload("call.ended")), payload={"event": "call.ended"}))


# ---------------------------------------------------------------------------------------- helpers


def replace_ctx(world: World, **changes: Any) -> JobContext:
    ctx = world.ctx
    values = {
        "settings": ctx.settings,
        "db": ctx.db,
        "http": ctx.http,
        "redis": ctx.redis,
        "chatwoot": ctx.chatwoot,
        "extras": ctx.extras,
        **changes,
    }
    return JobContext(**values)


class AsyncExitPools:
    """n independent connection pools, as n worker processes would have."""

    def __init__(self, dsn: str, n: int) -> None:
        self.pools = [
            AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) for _ in range(n)
        ]

    async def __aenter__(self) -> list[AsyncConnectionPool]:
        for db in self.pools:
            await db.open(wait=True, timeout=10)
        return self.pools

    async def __aexit__(self, *exc: object) -> None:
        for db in self.pools:
            await db.close()


async def reset(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        for table in MY_TABLES:
            await conn.execute(f"DELETE FROM {table}")


@asynccontextmanager
async def make_world(dsn: str, pool: AsyncConnectionPool) -> AsyncIterator[World]:
    fake = FakeChatwoot(base_url=CHATWOOT_URL)
    router = respx.MockRouter(assert_all_called=False)
    fake.install(router)
    async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http:
        chatwoot = ChatwootClient(http, CHATWOOT_URL, 1, bot_token=BOT_TOKEN, api_token=USER_TOKEN, sleep=no_sleep)
        ctx = JobContext(
            settings=settings_for(dsn), db=pool, http=http, redis=redis.Redis.from_url(REDIS_URL), chatwoot=chatwoot
        )
        yield World(ctx=ctx, chatwoot=fake, router=router, dsn=dsn)


async def test_voicemail_is_transcribed_by_the_configured_azure_speech(world: World, tmp_path: Any) -> None:
    """No hook set: with Azure Speech configured, the worker downloads the fresh voicemail URL and sends it to
    Azure fast transcription itself."""
    import subprocess

    from pydantic import SecretStr

    from integrations.aircall.voicemail import transcriber_for

    wav, mp3 = tmp_path / "vm.wav", tmp_path / "vm.mp3"
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello, we will arrive at ten tonight."], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    world.ctx.settings = world.ctx.settings.model_copy(
        update={
            "azure_speech_key": SecretStr("azure-key"),
            "azure_speech_region": "westeurope",
            "speech_backend": "azure",
            "voicemail_transcripts": True,
        }
    )

    async def public(host: str, port: int) -> list[str]:
        return ["52.218.0.10"]  # the presigned S3 host, resolved without DNS

    world.ctx.extras["transcribe_voicemail"] = transcriber_for(world.ctx, resolver=public)
    world.router.get(f"{AIRCALL_API}/v1/calls/2187411752").respond(
        200, json={"call": {**payload("call.voicemail_left")["data"], "voicemail": FRESH_VM}}
    )
    world.router.get(FRESH_VM).respond(200, content=mp3.read_bytes(), headers={"content-type": "audio/mpeg"})
    stt = world.router.post("https://westeurope.api.cognitive.microsoft.com/speechtotext/transcriptions:transcribe")
    stt.respond(
        200,
        json={
            "durationMilliseconds": 2300,
            "combinedPhrases": [{"text": "Hello, we will arrive at ten tonight."}],
            "phrases": [
                {
                    "offsetMilliseconds": 0,
                    "durationMilliseconds": 2300,
                    "locale": "en-US",
                    "confidence": 0.93,
                    "text": "Hello, we will arrive at ten tonight.",
                }
            ],
        },
    )
    assert await run(world, payload("call.voicemail_left")) == "done"
    request = stt.calls.last.request
    assert request.headers["ocp-apim-subscription-key"] == "azure-key"
    assert b'name="audio"' in request.content and b'name="definition"' in request.content
    assert world.chatwoot.notes()[0].endswith("Transcript: “Hello, we will arrive at ten tonight.”")
    assert call_row(world.dsn, 2187411752)["voicemail_transcript"] == "Hello, we will arrive at ten tonight."
    assert request.url.params["api-version"] == "2025-10-15"
