"""Knowledge gaps: a planted gap ranks first, named by its words, with the property it belongs to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bot.agent.gaps import gap_signals, group, render, topic_name


@pytest.fixture
async def db(clean_db: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(clean_db, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open()
    yield pool
    await pool.close()


async def record(
    db: AsyncConnectionPool,
    question: str,
    prop: str | None,
    reason: str | None,
    outcome: str = "handed_off",
    answer: str | None = None,
) -> int:
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO qa_records (conversation_id, question, answer, property_code, mode, model, outcome,"
            " handoff_reason, latency_ms, sources) VALUES (1, %s, %s, %s, 'autopilot', 'offline', %s, %s, 10, %s)"
            " RETURNING id",
            (question, answer, prop, outcome, reason, Jsonb([])),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_a_planted_gap_ranks_first(db: AsyncConnectionPool, example_retriever: Any) -> None:
    for question in (
        "Is there a gym nearby?",
        "Where is the closest gym?",
        "Can I work out at a gym near the flat?",
        "Any fitness studio or gym close by?",
    ):
        await record(db, question, "lis-alfama", "no_context")
    await record(db, "Can we bring a piano?", "lis-alfama", "not_found")
    await record(db, "Is there a gym nearby?", "ber-mitte", "no_context")  # another property: its own group
    await record(db, "I want to talk to a person", "lis-alfama", "human_requested")  # no gap: not counted
    qa = await record(db, "Do you have a baby cot?", "lis-alfama", None, outcome="suggested", answer="No.")
    async with db.connection() as conn:  # an agent corrected the suggestion before sending it
        await conn.execute(
            "INSERT INTO suggestion_approvals (qa_id, conversation_id, note_message_id, edited,"
            " sent_text, wait_ms) VALUES (%s, 1, 99, true, 'Yes, in the hall cupboard.', 5000)",
            (qa,),
        )
    since = datetime.now(UTC) - timedelta(days=7)
    asked = await gap_signals(db, since)
    assert len(asked) == 7
    embedder = example_retriever.embedder
    gaps = group(asked, lambda q: embedder.embed_query(q).dense)
    first = gaps[0]
    assert (first.property_code, len(first.questions), first.handoffs) == ("lis-alfama", 4, 4)
    assert first.topic.split(" / ")[0] == "gym"
    assert {(g.property_code, len(g.questions)) for g in gaps[1:]} == {("lis-alfama", 1), ("ber-mitte", 1)} | (
        {("lis-alfama", 1)} if len(gaps) == 4 else set()
    )
    assert any(g.corrections == 1 and g.examples == ["Do you have a baby cot?"] for g in gaps)
    text = render(gaps, since=since)
    assert text.splitlines()[1].startswith("1. gym")
    assert "[lis-alfama]: 4 questions (4 hand-offs, 0 corrections)" in text


def test_topic_names_skip_words_that_name_nothing() -> None:
    assert topic_name(["Where is the parking?", "Is there parking for a van?", "parking price please"]).startswith(
        "parking"
    )
