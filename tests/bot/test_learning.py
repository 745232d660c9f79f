"""The team teaches the bot, end to end: webhook -> ledger -> worker -> Chatwoot (respx), real model and store."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import respx

from bot.knowledge import remove_document
from demo.samples import guest_message
from integrations.chatwoot.tests.spec import assert_all_valid
from tests.bot.conftest import BOT_TOKEN, calls, messages_posted
from tests.conftest import load_fixture


@pytest.fixture(autouse=True)
def forget_learned(example_retriever: Any, database_url: str) -> Iterator[None]:
    """The example store is shared by the whole session: take out whatever these tests taught it."""
    yield
    for n in range(1, 10):
        remove_document(f"learned:{n}", store=example_retriever.store, dsn=database_url)


def agent_note(
    conversation_id: int, message_id: int, text: str, *, inbox_id: int = 4, private: bool = True
) -> dict[str, Any]:
    """An agent's note (or public reply) as Chatwoot delivers it to the bot."""
    payload = copy.deepcopy(load_fixture("chatwoot/message_created.private_note.json"))
    payload.update(id=message_id, content=text, private=private)
    payload["conversation"].update(id=conversation_id, inbox_id=inbox_id, status="open")
    payload["inbox"]["id"] = inbox_id
    return payload


def rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_send_posts_the_suggestion_once_and_a_repeated_send_posts_nothing(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(guest_message(58, 9002, "Is there a washing machine?", inbox_id=4))
    drain()
    [(_, suggestion)] = messages_posted(chatwoot)
    assert suggestion["private"] is True
    [(answer,)] = rows(bot_settings.database_dsn, "SELECT answer FROM qa_records")
    deliver(agent_note(58, 9003, "/send"))
    deliver(agent_note(58, 9004, "/send"))
    drain()
    posted = messages_posted(chatwoot)[1:]
    assert posted[0] == (
        "/conversations/58/messages",
        {
            "content": answer,
            "private": False,
            "message_type": "outgoing",
            "content_attributes": {"sidecar_reply_key": "approved:1"},
        },
    )
    assert [body["private"] for _, body in posted[1:]] == [True]  # the second /send: "was sent already"
    assert posted[1][1]["content"] == "🤖 /send: that suggestion was sent already."
    [(edited, wait_ms)] = rows(bot_settings.database_dsn, "SELECT edited, wait_ms FROM suggestion_approvals")
    assert edited is False and wait_ms >= 0
    assert_all_valid(chatwoot, bot_token=BOT_TOKEN)


def test_send_with_edited_text_posts_it_and_learns_the_pair(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(guest_message(58, 9002, "Is there a washing machine?", inbox_id=4))
    drain()
    deliver(agent_note(58, 9003, "/send Yes, in the kitchen, with powder under the sink."))
    drain()
    texts = [body["content"] for _, body in messages_posted(chatwoot)[1:]]
    assert texts[0] == "Yes, in the kitchen, with powder under the sink."
    assert texts[1].startswith(
        "📚 Learned (ber-mitte), #1:\nQ: Is there a washing machine?\n"
        "A: Yes, in the kitchen, with powder under the sink."
    )
    assert rows(bot_settings.database_dsn, "SELECT status, indexed, property_code FROM learned_answers") == [
        ("approved", True, "ber-mitte")
    ]


def test_after_teach_a_paraphrase_retrieves_the_taught_answer(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, example_retriever: Any
) -> None:
    taught = "The spare umbrella is in the blue box on top of the wardrobe."
    deliver(guest_message(60, 9100, "Do you have an umbrella I could borrow?", inbox_id=4))
    deliver(agent_note(60, 9101, taught, private=False))  # the agent answers the guest
    deliver(agent_note(60, 9102, "/teach"))
    drain()
    assert rows(bot_settings.database_dsn, "SELECT question, answer, status, indexed FROM learned_answers") == [
        ("Do you have an umbrella I could borrow?", taught, "approved", True)
    ]
    found = example_retriever.search("is there an umbrella in the flat?", property_code="ber-mitte")
    assert found[0].source == "learned:1"
    assert taught in found[0].text
    # Another property's guest does not get ber-mitte's taught answer.
    assert all(
        c.source != "learned:1"
        for c in example_retriever.search("is there an umbrella in the flat?", property_code="lis-alfama")
    )


def test_teach_without_a_question_says_what_to_do(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(agent_note(61, 9200, "/teach"))
    drain()
    [(_, body)] = messages_posted(chatwoot)
    assert body["private"] is True and body["content"].startswith("🤖 /teach: I found no question")
    assert rows(bot_settings.database_dsn, "SELECT count(*) FROM learned_answers") == [(0,)]


def test_an_ordinary_private_note_is_not_a_command(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(agent_note(58, 9300, "send the invoice tomorrow /send later"))
    drain()
    assert calls(chatwoot) == []


def test_learned_list_and_remove_from_the_command_line(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, capsys: Any, monkeypatch: Any
) -> None:
    from bot.service.cli import main
    from bot.service.jobs import make_queue

    deliver(guest_message(58, 9002, "Is there a washing machine?", inbox_id=4))
    drain()
    deliver(agent_note(58, 9003, "/send Yes, in the kitchen."))
    drain()
    for name in ("DATABASE_URL", "QUEUE_NAME", "REDIS_URL"):
        monkeypatch.setenv(
            name,
            {
                "DATABASE_URL": bot_settings.database_dsn,
                "QUEUE_NAME": bot_settings.queue_name,
                "REDIS_URL": bot_settings.redis_url,
            }[name],
        )
    capsys.readouterr()
    assert main(["learned", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "    A: Yes, in the kitchen."
    assert main(["learned", "remove", "1"]) == 0
    [job] = make_queue(bot_settings).jobs
    assert job.func_name == "bot.service.periodic.sync_learned_answers"
    assert rows(bot_settings.database_dsn, "SELECT status, indexed FROM learned_answers") == [("removed", False)]
    assert main(["learned", "remove", "1"]) == 1
