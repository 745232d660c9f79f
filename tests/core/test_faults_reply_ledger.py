"""The reply ledger under faults: which failures leave a post in doubt, and how a key in doubt is settled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from bot.core import replies
from bot.errors import Defer
from integrations.chatwoot.client import ChatwootBadRequest, ChatwootRetryable


@pytest.fixture
async def db(clean_db: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(clean_db, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open()
    yield pool
    await pool.close()


async def status(db: AsyncConnectionPool, key: str) -> str:
    return (await replies.states(db, [key]))[key].status


def failing(exc: BaseException) -> replies.Post:
    async def post() -> None:
        raise exc

    return post


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ChatwootRetryable("timed out"), "unknown"),
        (ChatwootRetryable("answered 502", 502), "unknown"),
        (ChatwootRetryable("could not connect", not_processed=True), "failed"),
        (ChatwootRetryable("answered 503", 503, not_processed=True), "failed"),
        (ChatwootBadRequest("answered 422", 422), "failed"),
        (RuntimeError("a bug before sending"), "failed"),
    ],
)
async def test_a_failure_that_may_have_been_saved_leaves_the_key_unknown(
    db: AsyncConnectionPool, exc: Exception, expected: str
) -> None:
    with pytest.raises(type(exc)):
        await replies.post_once(db, "answer:1", conversation_id=5, kind="reply", content="hi", post=failing(exc))
    assert await status(db, "answer:1") == expected


async def test_a_cancelled_post_is_unknown(db: AsyncConnectionPool) -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(
        replies.post_once(db, "answer:2", conversation_id=5, kind="reply", content="hi", post=slow)
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await status(db, "answer:2") == "unknown"


async def test_the_read_back_looks_for_the_text_sent_then_not_the_text_of_the_retry(db: AsyncConnectionPool) -> None:
    with pytest.raises(ChatwootRetryable):
        await replies.post_once(
            db,
            "answer:3",
            conversation_id=5,
            kind="reply",
            content="first draft",
            post=failing(ChatwootRetryable("timed out")),
            settle_s=0,
        )
    seen: list[tuple[datetime, str | None]] = []

    async def find(since: datetime, sent: str | None) -> int | None:
        seen.append((since, sent))
        return 4242

    posts: list[int] = []

    async def post() -> dict[str, Any]:
        posts.append(1)
        return {"id": 1}

    assert not await replies.post_once(
        db, "answer:3", conversation_id=5, kind="reply", content="second draft", post=post, find=find, settle_s=0
    )
    assert posts == [] and [sent for _, sent in seen] == ["first draft"]
    assert (await replies.states(db, ["answer:3"]))["answer:3"] == replies.KeyState("posted", "first draft", seen[0][0])
    async with db.connection() as conn:
        cur = await conn.execute("SELECT chatwoot_message_id FROM bot_replies WHERE reply_key = 'answer:3'")
        assert await cur.fetchone() == (4242,)


async def test_a_key_in_doubt_is_not_read_back_before_it_settles(db: AsyncConnectionPool) -> None:
    with pytest.raises(ChatwootRetryable):
        await replies.post_once(
            db, "answer:4", conversation_id=5, kind="reply", content="hi", post=failing(ChatwootRetryable("timed out"))
        )

    async def find(since: datetime, sent: str | None) -> int | None:
        raise AssertionError("read back too early")

    with pytest.raises(Defer) as deferred:
        await replies.post_once(
            db,
            "answer:4",
            conversation_id=5,
            kind="reply",
            content="hi",
            post=failing(AssertionError("posted too early")),
            find=find,
            settle_s=replies.SETTLE_SECONDS,
        )
    assert 0 < deferred.value.seconds <= replies.SETTLE_SECONDS


async def test_a_planned_step_is_not_in_doubt_until_an_attempt_began(db: AsyncConnectionPool) -> None:
    await replies.plan_steps(
        db, [("handoff-note:7", "handoff", "why"), ("handoff-status:7", "action", "open")], conversation_id=5
    )
    assert {
        k: (s.status, s.in_doubt) for k, s in (await replies.states(db, ["handoff-note:7", "handoff-status:7"])).items()
    } == {"handoff-note:7": ("pending", False), "handoff-status:7": ("pending", False)}
