"""The reply ledger's rules, one test per state change, against the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from bot.core import replies


@pytest.fixture
async def db(clean_db: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(clean_db, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open()
    yield pool
    await pool.close()


async def rows(db: AsyncConnectionPool) -> list[tuple[Any, ...]]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT reply_key, status, chatwoot_message_id, conversation_id FROM bot_replies ORDER BY reply_key"
        )
        return await cur.fetchall()


class Poster:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("chatwoot said no")
        return {"id": 700 + self.calls}


async def test_a_reply_is_posted_once_whatever_the_retries(db: AsyncConnectionPool) -> None:
    post = Poster()
    assert await replies.post_once(db, "answer:1", conversation_id=5, kind="reply", content="hi", post=post)
    assert not await replies.post_once(db, "answer:1", conversation_id=5, kind="reply", content="hi", post=post)
    assert post.calls == 1
    assert await rows(db) == [("answer:1", "posted", 701, 5)]
    assert await replies.posted(db, ["answer:1", "answer:2"]) == {"answer:1"}
    assert await replies.posted_contents(db, ["answer:1"]) == {"answer:1": "hi"}


async def test_a_failed_post_is_marked_failed_and_the_retry_posts_it(db: AsyncConnectionPool) -> None:
    with pytest.raises(RuntimeError):
        await replies.post_once(db, "answer:1", conversation_id=5, kind="reply", content="hi", post=Poster(fail=True))
    assert await rows(db) == [("answer:1", "failed", None, 5)]
    assert await replies.post_once(db, "answer:1", conversation_id=5, kind="reply", content="hi", post=Poster())
    assert await rows(db) == [("answer:1", "posted", 701, 5)]


async def test_one_post_settles_several_keys_unless_all_are_posted(db: AsyncConnectionPool) -> None:
    async def action() -> None:
        return None

    assert await replies.post_once(db, ["call:1:a"], conversation_id=9, kind="note", content="a", post=Poster())
    # One of the two keys is open: the post runs and marks both.
    assert await replies.post_once(
        db, ["call:1:a", "call:1:b"], conversation_id=9, kind="note", content="a+b", post=action
    )
    assert [(k, s) for k, s, *_ in await rows(db)] == [("call:1:a", "posted"), ("call:1:b", "posted")]
    assert not await replies.post_once(
        db, ["call:1:a", "call:1:b"], conversation_id=9, kind="note", content="x", post=Poster()
    )


async def test_planned_posts_are_attached_posted_or_skipped(db: AsyncConnectionPool) -> None:
    async with db.connection() as conn, conn.transaction():
        await replies.plan(conn, "guesty:r1:a", kind="note", content="first")
        await replies.plan(conn, "guesty:r1:b", kind="note", content="second")
        await replies.plan(conn, "guesty:r2:a", kind="note", content="other booking")
    assert await replies.planned(db, "guesty:r1:") == [("guesty:r1:a", "first"), ("guesty:r1:b", "second")]
    await replies.skip(db, ["guesty:r2:a"])
    assert await replies.planned(db, "guesty:r2:") == []
    await replies.attach(db, ["guesty:r1:a", "guesty:r1:b"], 44)
    assert await replies.post_once(db, "guesty:r1:a", conversation_id=44, kind="note", content="first", post=Poster())
    assert await rows(db) == [
        ("guesty:r1:a", "posted", 701, 44),
        ("guesty:r1:b", "pending", None, 44),
        ("guesty:r2:a", "skipped", None, None),
    ]


async def test_a_key_with_no_conversation_or_text_yet_is_still_posted_once(db: AsyncConnectionPool) -> None:
    post = Poster()
    assert await replies.post_once(
        db, ["status:1", "status:2"], conversation_id=None, kind="status", content=None, post=post
    )
    assert not await replies.post_once(db, "status:2", conversation_id=None, kind="status", content=None, post=post)
    assert post.calls == 1
    assert await rows(db) == [("status:1", "posted", 701, None), ("status:2", "posted", 701, None)]
