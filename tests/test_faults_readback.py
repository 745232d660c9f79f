"""Reading a conversation back for a message whose post had no known outcome (ChatwootClient.find_reply)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.tests.spec import assert_all_valid

ROOT = "https://chat.acme.test/api/v1/accounts/1"
NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def message(
    mid: int, content: str, *, minutes_ago: float, private: bool = False, key: str | None = None, message_type: int = 1
) -> dict[str, Any]:
    return {
        "id": mid,
        "content": content,
        "message_type": message_type,
        "private": private,
        "created_at": int(NOW.timestamp() - minutes_ago * 60),
        "content_attributes": {"sidecar_reply_key": key} if key else {},
    }


@pytest.fixture
async def client() -> AsyncIterator[ChatwootClient]:
    async with httpx.AsyncClient() as http:
        yield ChatwootClient(http, "https://chat.acme.test", 1, bot_token="bot", api_token="user")


def pages(router: respx.MockRouter, history: list[dict[str, Any]]) -> respx.Route:
    """The messages endpoint: the 20 newest, or the 20 before `before`, oldest first."""

    def answer(request: httpx.Request) -> httpx.Response:
        before = request.url.params.get("before")
        older = [m for m in history if before is None or m["id"] < int(before)]
        return httpx.Response(200, json={"meta": {}, "payload": older[-20:]})

    return router.get(f"{ROOT}/conversations/5/messages").mock(side_effect=answer)


async def test_our_message_is_found_by_its_marker_pages_back(client: ChatwootClient) -> None:
    history = [message(100 + i, f"chat {i}", minutes_ago=30 - i, message_type=i % 2) for i in range(30)]
    history[3] = message(103, "Check-out is at 11.", minutes_ago=27, key="answer:9")
    with respx.mock(assert_all_called=True) as router:
        route = pages(router, history)
        found = await client.find_reply(
            5,
            "answer:9",
            content="Check-out is at 11.",
            private=False,
            since=datetime.fromtimestamp(NOW.timestamp() - 28 * 60, UTC),
        )
        assert_all_valid(router, bot_token="bot")
    assert found == 103
    assert [c.request.url.params.get("before") for c in route.calls] == [None, "110"]


async def test_another_keys_message_with_the_same_text_is_not_ours(client: ChatwootClient) -> None:
    history = [message(200, "I'm passing your message to a colleague.", minutes_ago=1, key="handoff-reply:8")]
    with respx.mock() as router:
        pages(router, history)
        assert (
            await client.find_reply(
                5, "handoff-reply:9", content="I'm passing your message to a colleague.", private=False, since=NOW
            )
            is None
        )


async def test_without_markers_only_our_exact_text_since_the_attempt_matches(client: ChatwootClient) -> None:
    history = [
        message(300, "Check-out is at 11.", minutes_ago=90),  # an older answer with the same text
        message(301, "Check-out is at 11.", minutes_ago=0, private=True),  # a note, not the reply
        message(302, "Check-out is at 11.", minutes_ago=0, message_type=0),
    ]  # the guest quoting it
    with respx.mock() as router:
        pages(router, history)
        assert await client.find_reply(5, "answer:9", content="Check-out is at 11.", private=False, since=NOW) is None
        history.append(message(303, "Check-out is at 11.", minutes_ago=0))
        assert await client.find_reply(5, "answer:9", content="Check-out is at 11.", private=False, since=NOW) == 303
