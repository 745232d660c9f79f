"""The weekly gaps report: posted as a private note to REPORT_CONVERSATION_ID, once per ISO week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import respx
from psycopg.types.json import Jsonb

from bot.agent.weekly_gaps import post_weekly_gaps, week_key
from bot.context import JobContext
from tests.bot.conftest import BOT_TOKEN, messages_posted
from tests.conftest import make_settings


def test_the_report_key_is_the_iso_week() -> None:
    assert week_key(datetime(2026, 12, 6, 4, 0, tzinfo=UTC)) == "gaps-report:2026-W49"
    assert week_key(datetime(2027, 1, 1, tzinfo=UTC)) == "gaps-report:2026-W53"


async def test_the_weekly_gaps_report_is_posted_once_per_week(
    bot_settings: Any, chatwoot: respx.MockRouter, example_retriever: Any
) -> None:
    settings = make_settings(
        bot_settings.database_dsn,
        bot_settings.queue_name,
        CHATWOOT_URL="https://chat.acme.example",
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_BOT_TOKEN=BOT_TOKEN,
        REPORT_CONVERSATION_ID="900",
    )
    now = datetime.now(UTC)
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO qa_records (conversation_id, question, property_code, mode, model, outcome,"
            " handoff_reason, latency_ms, sources) VALUES (1, 'Is there a gym nearby?', 'lis-alfama',"
            " 'autopilot', 'offline', 'handed_off', 'no_context', 10, %s)",
            (Jsonb([]),),
        )
    ctx = await JobContext.open(settings)
    ctx.extras["retriever"] = example_retriever
    try:
        first = await post_weekly_gaps(ctx, now=now)
        again = await post_weekly_gaps(ctx, now=now)
    finally:
        ctx.extras.pop("retriever")
        await ctx.close()
    assert first == f"{week_key(now)} posted (1 topics)"
    assert again == f"{week_key(now)} already posted"
    [(path, body)] = messages_posted(chatwoot)
    assert path == "/conversations/900/messages" and body["private"] is True
    assert body["content"].splitlines() == [
        f"Knowledge gaps since {now - timedelta(days=7):%Y-%m-%d} (hand-offs without an answer, agents' corrections):",
        "1. gym / nearby [lis-alfama]: 1 questions (1 hand-offs, 0 corrections)",
        "   - Is there a gym nearby?",
    ]
