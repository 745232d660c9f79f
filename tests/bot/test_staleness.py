"""Stale knowledge: a planted disagreement between a guide and the Guesty listing is flagged once."""

from __future__ import annotations

from typing import Any

import psycopg
import respx

from bot.context import JobContext
from integrations.guesty.models import Listing
from integrations.guesty.staleness import check_all_listings, check_listing, listing_facts
from tests.bot.conftest import BOT_TOKEN, messages_posted
from tests.conftest import make_settings

LISTING = {
    "_id": "64f0c0ffee0000000000a1",
    "title": "Alfama flat",
    "nickname": "lis-alfama",
    "defaultCheckInTime": "14:00",
    "defaultCheckOutTime": "11:00",
    "accommodates": 4,
    "amenities": ["Wifi", "Pets allowed"],
}


def test_a_listing_says_nothing_about_pets_without_the_amenity() -> None:
    facts = listing_facts(Listing.model_validate({**LISTING, "amenities": ["Wifi"]}))
    assert (facts.check_in, facts.check_out, facts.max_guests, facts.pets) == ("14:00", "11:00", 4, None)


async def test_a_planted_conflict_is_flagged_once_and_resolved_when_fixed(
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
    ctx = await JobContext.open(settings)
    ctx.extras["retriever"] = example_retriever
    try:
        listing = Listing.model_validate(LISTING)
        conflicts = await check_listing(ctx, "lis-alfama", listing)
        assert [(c.fact, c.source, c.guide_value, c.listing_value) for c in conflicts] == [
            ("check_in", "lis-alfama/en/guide.md", "15:00", "14:00")
        ]
        await check_listing(ctx, "lis-alfama", listing)  # nightly re-check: no second note
        [(path, body)] = messages_posted(chatwoot)
        assert path == "/conversations/900/messages" and body["private"] is True
        assert body["content"] == (
            "📋 The guides disagree with the Guesty listing of lis-alfama:\n"
            "- check in: the guide lis-alfama/en/guide.md (Arrival and departure > Check-in) says 15:00,"
            " the listing says 14:00\n"
            "Fix the guide (or the listing)."
        )
        fixed = Listing.model_validate({**LISTING, "defaultCheckInTime": "15:00"})
        assert await check_listing(ctx, "lis-alfama", fixed) == []
        with psycopg.connect(settings.database_dsn) as conn:
            assert conn.execute("SELECT fact, resolved_at IS NOT NULL FROM knowledge_conflicts").fetchall() == [
                ("check_in", True)
            ]
    finally:
        ctx.extras.pop("retriever")
        await ctx.close()


async def test_the_nightly_check_reads_every_mirrored_listing(
    bot_settings: Any, chatwoot: respx.MockRouter, example_retriever: Any
) -> None:
    import json as _json

    with psycopg.connect(bot_settings.database_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO properties (code, guesty_listing_id, name, raw) VALUES ('lis-alfama', %s, 'Alfama flat', %s)",
            (LISTING["_id"], _json.dumps(LISTING)),
        )
    ctx = await JobContext.open(bot_settings)
    ctx.extras["retriever"] = example_retriever
    try:
        assert await check_all_listings(ctx) == 1  # check-in 14:00 in the listing, 15:00 in the guide
    finally:
        ctx.extras.pop("retriever")
        await ctx.close()
