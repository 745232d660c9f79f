"""Faults at the edge to Chatwoot: posts whose outcome is lost, and hand-offs cut half-way.

A stand-in Chatwoot keeps what it saves and lists it back (as the messages endpoint does), and can fail a
request after saving it (a 502 from a proxy, a read timeout) or before. The rule under test: a post whose
outcome is unknown is read back by its marker and never reaches the guest twice; a hand-off is finished by
the retry, step by step, without repeating what was done.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from pydantic import SecretStr

from demo.samples import guest_message
from tests.bot.conftest import API

HANDOFF_TEXT = "I'm passing your message to a colleague, who will reply here shortly."


class SavingChatwoot:
    """Chatwoot's messages, labels and status endpoints over a memory that outlives a failed response.

    `faults[(method, endpoint)]` lists what the next requests to that endpoint suffer, in order:
    "502-after-save" and "timeout-after-save" save first and then lose the answer; "502" and "422" save
    nothing (the client retries idempotent calls on a 502 itself, so a 422 is what fails a label or status
    change for the job).
    With keep_attributes=False it drops content_attributes like a Chatwoot before 4.x's MessageBuilder.
    """

    def __init__(self, router: respx.MockRouter, *, keep_attributes: bool = True) -> None:
        self.messages: list[dict[str, Any]] = []
        self.labels: list[str] = ["vip"]
        self.status = "pending"
        self.keep_attributes = keep_attributes
        self.faults: dict[tuple[str, str], list[str]] = {}
        self.next_id = 90_000
        conv = rf"{API}/conversations/\d+"
        router.post(url__regex=rf"{conv}/messages").mock(side_effect=self.create_message)
        router.get(url__regex=rf"{conv}/messages").mock(side_effect=self.list_messages)
        router.post(url__regex=rf"{conv}/toggle_typing_status").respond(200, json={})
        router.get(url__regex=rf"{conv}$").mock(side_effect=self.show)
        router.get(url__regex=rf"{conv}/labels").mock(
            side_effect=lambda req: self.answer(
                req, "labels", lambda: httpx.Response(200, json={"payload": self.labels})
            )
        )
        router.post(url__regex=rf"{conv}/labels").mock(side_effect=self.set_labels)
        router.post(url__regex=rf"{conv}/toggle_status").mock(side_effect=self.toggle_status)

    def answer(self, request: httpx.Request, endpoint: str, act: Any) -> httpx.Response:
        queued = self.faults.get((request.method, endpoint)) or []
        fault = queued.pop(0) if queued else None
        if fault == "502":
            return httpx.Response(502, text="Bad Gateway")
        if fault == "422":
            return httpx.Response(422, json={"error": "Validation failed"})
        response: httpx.Response = act()
        if fault == "502-after-save":
            return httpx.Response(502, text="Bad Gateway")
        if fault == "timeout-after-save":
            raise httpx.ReadTimeout("read timed out", request=request)
        return response

    def create_message(self, request: httpx.Request) -> httpx.Response:
        def save() -> httpx.Response:
            body = json.loads(request.content)
            self.next_id += 1
            message = {
                "id": self.next_id,
                "content": body["content"],
                "message_type": 1,
                "private": bool(body.get("private")),
                "created_at": int(datetime.now(UTC).timestamp()),
                "content_attributes": body.get("content_attributes", {}) if self.keep_attributes else {},
                "sender_type": "AgentBot",
            }
            self.messages.append(message)
            return httpx.Response(200, json=message)

        return self.answer(request, "messages", save)

    def list_messages(self, request: httpx.Request) -> httpx.Response:
        before = request.url.params.get("before")
        older = [m for m in self.messages if before is None or m["id"] < int(before)]
        return httpx.Response(200, json={"meta": {}, "payload": older[-20:]})

    def show(self, request: httpx.Request) -> httpx.Response:
        last = self.messages[-1] if self.messages else None
        return httpx.Response(
            200,
            json={"id": 1, "status": self.status, "meta": {"assignee_type": None}, "last_non_activity_message": last},
        )

    def set_labels(self, request: httpx.Request) -> httpx.Response:
        def save() -> httpx.Response:
            self.labels = json.loads(request.content)["labels"]
            return httpx.Response(200, json={"payload": self.labels})

        return self.answer(request, "labels", save)

    def toggle_status(self, request: httpx.Request) -> httpx.Response:
        def save() -> httpx.Response:
            self.status = json.loads(request.content)["status"]
            return httpx.Response(
                200, json={"payload": {"success": True, "conversation_id": 1, "current_status": self.status}}
            )

        return self.answer(request, "toggle_status", save)

    def texts(self, *, private: bool) -> list[str]:
        return [m["content"] for m in self.messages if m["private"] is private]


@pytest.fixture
def standin() -> Iterator[SavingChatwoot]:
    with respx.mock(assert_all_called=False) as router:
        yield SavingChatwoot(router)


@pytest.fixture
def user_token(bot_settings: Any) -> Any:
    """The user token lets the sidecar list a conversation's messages (the bot token cannot)."""
    return bot_settings.model_copy(update={"chatwoot_api_token": SecretStr("user-token")})


def replies_table(dsn: str) -> dict[str, tuple[str, int | None]]:
    with psycopg.connect(dsn) as conn:
        return {
            k: (s, m)
            for k, s, m in conn.execute("SELECT reply_key, status, chatwoot_message_id FROM bot_replies ORDER BY id")
        }


def event_status(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn) as conn:
        return [tuple(r) for r in conn.execute("SELECT status, attempts FROM operational_events ORDER BY id")]


@pytest.mark.parametrize("fault", ["502-after-save", "timeout-after-save"])
def test_an_answer_saved_before_the_response_was_lost_is_found_and_not_posted_again(
    fault: str, user_token: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    standin.faults[("POST", "messages")] = [fault]
    deliver(guest_message(101, 9501, "What time is check-out?", inbox_id=3))
    drain(user_token)
    [answer] = standin.texts(private=False)
    assert "Check-out is by 11:00 (11 am)." in answer.splitlines()
    assert replies_table(user_token.database_dsn) == {"answer:9501": ("posted", standin.messages[0]["id"])}
    assert event_status(user_token.database_dsn) == [("done", 2)]  # the failed attempt, then the read-back


def test_an_answer_chatwoot_never_saved_is_posted_by_the_retry(
    user_token: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    standin.faults[("POST", "messages")] = ["502"]
    deliver(guest_message(102, 9502, "What time is check-out?", inbox_id=3))
    drain(user_token)
    assert len(standin.texts(private=False)) == 1
    assert replies_table(user_token.database_dsn) == {"answer:9502": ("posted", standin.messages[0]["id"])}


def test_without_stored_attributes_the_exact_text_since_the_attempt_identifies_our_message(
    user_token: Any, deliver: Any, drain: Any
) -> None:
    with respx.mock(assert_all_called=False) as router:
        old = SavingChatwoot(router, keep_attributes=False)
        old.faults[("POST", "messages")] = ["502-after-save"]
        deliver(guest_message(103, 9503, "What time is check-out?", inbox_id=3))
        drain(user_token)
    assert len(old.texts(private=False)) == 1
    assert replies_table(user_token.database_dsn)["answer:9503"] == ("posted", old.messages[0]["id"])


def test_with_only_the_bot_token_the_last_message_of_the_conversation_is_read_back(
    bot_settings: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    standin.faults[("POST", "messages")] = ["timeout-after-save"]
    deliver(guest_message(104, 9504, "What time is check-out?", inbox_id=3))
    drain(bot_settings)
    assert len(standin.texts(private=False)) == 1
    assert replies_table(bot_settings.database_dsn)["answer:9504"] == ("posted", standin.messages[0]["id"])


def test_a_reply_in_doubt_waits_until_its_request_cannot_still_be_landing(
    user_token: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    settings = user_token.model_copy(update={"reply_settle_s": 600.0})
    standin.faults[("POST", "messages")] = ["timeout-after-save"]
    deliver(guest_message(105, 9505, "What time is check-out?", inbox_id=3))
    drain(settings)
    assert event_status(settings.database_dsn) == [("received", 1)]  # deferred: the retry is not an attempt
    assert replies_table(settings.database_dsn)["answer:9505"][0] == "unknown"
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:  # ten minutes later
        conn.execute("UPDATE bot_replies SET attempted_at = attempted_at - interval '11 minutes'")
        conn.execute("UPDATE operational_events SET enqueued_at = now()")
    from bot.service import jobs

    jobs.enqueue(jobs.make_queue(settings), 1)
    drain(settings)
    assert len(standin.texts(private=False)) == 1
    assert event_status(settings.database_dsn) == [("done", 2)]


def test_a_post_cut_by_a_killed_worker_counts_as_unknown_and_is_read_back(
    user_token: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    event_id = deliver(guest_message(106, 9506, "What time is check-out?", inbox_id=3))
    # What a worker killed between Chatwoot saving the reply and the ledger marking it leaves behind.
    standin.messages.append(
        {
            "id": 90_500,
            "content": "Check-out is by 11:00.",
            "message_type": 1,
            "private": False,
            "created_at": int(datetime.now(UTC).timestamp()),
            "content_attributes": {"sidecar_reply_key": "answer:9506"},
        }
    )
    with psycopg.connect(user_token.database_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO bot_replies (reply_key, conversation_id, kind, content, status, attempted_at)"
            " VALUES ('answer:9506', 106, 'reply', 'Check-out is by 11:00.', 'pending', %s)",
            (datetime.now(UTC) - timedelta(minutes=1),),
        )
        conn.execute(
            "UPDATE operational_events SET status = 'processing', attempts = 1,"
            " locked_until = now() - interval '1 second' WHERE id = %s",
            (event_id,),
        )
    drain(user_token)
    assert standin.texts(private=False) == ["Check-out is by 11:00."]
    assert replies_table(user_token.database_dsn) == {"answer:9506": ("posted", 90_500)}


# ------------------------------------------------------------------------------------------ hand-offs


@pytest.mark.parametrize("endpoint", ["toggle_status", "labels"])
def test_a_hand_off_cut_half_way_is_finished_by_the_retry_without_repeating_its_messages(
    endpoint: str, bot_settings: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    standin.faults[("POST", endpoint)] = ["422"]
    deliver(guest_message(110, 9510, "Can I talk to a person please?", inbox_id=3))
    drain()
    assert standin.texts(private=True) == [
        "🤖 Handed off to a person.\nThe guest asked to talk to a person. "
        "Over to you.\n\nGuest wrote:\n> Can I talk to a person please?"
    ]
    assert standin.texts(private=False) == [HANDOFF_TEXT]
    assert (standin.labels, standin.status) == (["vip", "bot-handoff"], "open")
    assert {k: s for k, (s, _) in replies_table(bot_settings.database_dsn).items()} == {
        "handoff-note:9510": "posted",
        "handoff-reply:9510": "posted",
        "handoff-labels:9510": "posted",
        "handoff-status:9510": "posted",
    }
    assert event_status(bot_settings.database_dsn) == [("done", 2)]
    with psycopg.connect(bot_settings.database_dsn) as conn:  # the message counts as answered from now on
        assert conn.execute(
            "SELECT last_answered_message_id, human_since IS NOT NULL FROM conversation_state"
            " WHERE conversation_id = 110"
        ).fetchone() == (9510, True)


def test_a_hand_off_message_in_doubt_is_read_back_before_the_rest_is_done(
    user_token: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    standin.faults[("POST", "messages")] = ["ok", "timeout-after-save"]  # the note goes, the guest's reply is lost
    deliver(guest_message(111, 9511, "Can I talk to a person please?", inbox_id=3))
    drain(user_token)
    assert standin.texts(private=False) == [HANDOFF_TEXT]
    assert len(standin.texts(private=True)) == 1
    assert standin.status == "open"


def test_a_half_done_hand_off_is_not_an_answer_the_next_run_skips(
    bot_settings: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    standin.faults[("POST", "toggle_status")] = ["422", "422", "422"]  # every attempt of this run fails
    deliver(guest_message(112, 9512, "Can I talk to a person please?", inbox_id=3))
    drain()
    assert (standin.status, event_status(bot_settings.database_dsn)) == ("pending", [("failed", 3)])
    from bot.core import ledger
    from bot.service import jobs

    with psycopg.connect(bot_settings.database_dsn, autocommit=True) as conn:  # `sidecar events replay 1`
        assert ledger.prepare_replay(conn, event_id=1) == [1]

    jobs.enqueue(jobs.make_queue(bot_settings), 1)
    drain()
    assert standin.status == "open"
    assert (len(standin.texts(private=True)), len(standin.texts(private=False))) == (1, 1)


def test_a_voice_note_hand_off_cut_half_way_is_finished_by_the_retry(
    bot_settings: Any, standin: SavingChatwoot, deliver: Any, drain: Any
) -> None:
    from tests.bot.test_voice import voice_note

    payload = voice_note(113, 9513)
    payload["attachments"][0]["data_url"] = "https://files.evil.example/voice-note.ogg"  # never downloaded
    standin.faults[("POST", "toggle_status")] = ["422"]
    deliver(payload)
    drain()
    [note] = standin.texts(private=True)
    assert note.startswith("🤖 Handed off to a person.\nThe voice note could not be downloaded")
    assert standin.texts(private=False) == [HANDOFF_TEXT]
    assert (standin.labels, standin.status) == (["vip", "bot-handoff"], "open")
    assert event_status(bot_settings.database_dsn) == [("done", 2)]
