"""Stale knowledge: guide passages that contradict the property's Guesty listing.

When a listing changes (and nightly) the check-in and check-out times, the most guests and the pets rule
of the listing are compared with what the bot would tell a guest: the property's own guide passages that
retrieval returns for "What time is check-in?" and the like (the listing's own knowledge document is left
out: it agrees by construction). A disagreement is kept in `knowledge_conflicts` (this module owns it)
naming the guide file to fix, and a new one is posted once as a private note to REPORT_CONVERSATION_ID.
A conflict no longer seen is marked resolved.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from bot.context import JobContext
from bot.knowledge.facts import GuideFacts, normalize_time, read_facts
from integrations.chatwoot.readback import post_marked
from integrations.guesty.models import Listing

log = logging.getLogger("sidecar.guesty.staleness")

QUESTIONS = {
    "check_in": "What time is check-in?",
    "check_out": "What time is check-out?",
    "max_guests": "How many guests can stay at most?",
    "pets": "Are pets allowed?",
}
NOTE = "📋 The guides disagree with the Guesty listing of {property}:\n{lines}\nFix the guide (or the listing)."
LINE = "- {fact}: the guide {source}{heading} says {guide}, the listing says {listing}"
_PETS_AMENITIES = ("pets allowed", "pet friendly", "pets welcome")


@dataclass(frozen=True)
class Conflict:
    property_code: str
    fact: str
    source: str
    heading: str | None
    guide_value: str
    listing_value: str


def listing_facts(listing: Listing) -> GuideFacts:
    """What the listing states; a listing without a pets amenity says nothing about pets."""
    amenities = {a.strip().lower() for a in listing.amenities}
    return GuideFacts(
        check_in=normalize_time(listing.default_check_in_time),
        check_out=normalize_time(listing.default_check_out_time),
        max_guests=listing.accommodates,
        pets=True if amenities & set(_PETS_AMENITIES) else None,
    )


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "pets allowed" if value else "no pets"
    return str(value)


async def find_conflicts(ctx: JobContext, property_code: str, listing: Listing) -> list[Conflict]:
    """The listing's facts that the property's guide passages state differently."""
    wanted = listing_facts(listing)
    found: list[Conflict] = []
    for fact, question in QUESTIONS.items():
        expected = getattr(wanted, fact)
        if expected is None:
            continue
        chunks = await asyncio.to_thread(ctx.retriever.search, question, property_code=property_code)
        for chunk in chunks:
            if chunk.property_code != property_code or chunk.source.startswith("guesty:"):
                continue
            stated = getattr(read_facts(chunk.text), fact)
            if stated is None:
                continue
            if stated != expected:
                found.append(Conflict(property_code, fact, chunk.source, chunk.heading, _show(stated), _show(expected)))
            break  # the first passage that states the fact is what a guest would be told
    return found


async def record(ctx: JobContext, property_code: str, conflicts: list[Conflict]) -> list[Conflict]:
    """Keep the conflicts, resolve the ones gone; return those seen for the first time."""
    new: list[Conflict] = []
    async with ctx.db.connection() as conn, conn.transaction():
        for c in conflicts:
            cur = await conn.execute(
                "INSERT INTO knowledge_conflicts (property_code, fact, source, heading, guide_value, listing_value)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (property_code, fact, source, guide_value, listing_value)"
                " DO UPDATE SET last_seen = now(), resolved_at = NULL RETURNING (xmax = 0)",
                (c.property_code, c.fact, c.source, c.heading, c.guide_value, c.listing_value),
            )
            row = await cur.fetchone()
            if row and row[0]:
                new.append(c)
        keep = [(c.fact, c.source, c.guide_value, c.listing_value) for c in conflicts]
        await conn.execute(
            "UPDATE knowledge_conflicts SET resolved_at = now() WHERE property_code = %s AND resolved_at IS NULL"
            " AND (fact, source, guide_value, listing_value) NOT IN (SELECT * FROM unnest(%s::text[], %s::text[],"
            " %s::text[], %s::text[]))",
            (property_code, [k[0] for k in keep], [k[1] for k in keep], [k[2] for k in keep], [k[3] for k in keep]),
        )
    return new


async def check_listing(ctx: JobContext, property_code: str, listing: Listing) -> list[Conflict]:
    """Compare, record, and tell the team about new disagreements; returns every current conflict."""
    conflicts = await find_conflicts(ctx, property_code, listing)
    new = await record(ctx, property_code, conflicts)
    conv, cw = ctx.settings.report_conversation_id, ctx.chatwoot
    if new:
        log.warning("guides disagree with the listing", extra={"property": property_code, "count": len(new)})
    if new and conv is not None and cw is not None:
        lines = "\n".join(
            LINE.format(
                fact=c.fact.replace("_", " "),
                source=c.source,
                heading=f" ({c.heading})" if c.heading else "",
                guide=c.guide_value,
                listing=c.listing_value,
            )
            for c in new
        )
        note = NOTE.format(property=property_code, lines=lines)
        key = "stale:" + hashlib.sha256(note.encode()).hexdigest()[:16]
        await post_marked(ctx.db, cw, key, conv, "note", note, private=True, settle_s=ctx.settings.reply_settle_s)
    return conflicts


async def check_all_listings(ctx: JobContext) -> int:
    """Check every active mirrored listing (nightly); returns how many disagreements stand."""
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT code, raw FROM properties WHERE guesty_listing_id IS NOT NULL AND active ORDER BY code"
        )
        rows = await cur.fetchall()
    total = 0
    for code, raw in rows:
        try:
            listing = Listing.model_validate(raw)
        except ValueError:  # a row imported from a summary without the listing's fields
            continue
        total += len(await check_listing(ctx, code, listing))
    return total
