"""The weekly knowledge-gaps report: `bot.agent.gaps.render` of the last 7 days, posted once per ISO week as a
private note to REPORT_CONVERSATION_ID, so whoever writes the guides sees what guests asked that they lack.

The reply-ledger key is the ISO week (`gaps-report:2026-W49`): the sweeper may queue the job more often
(a restart, several replicas) and a retried job may run again, but each week's report is posted once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from bot.agent.gaps import gap_signals, group, render
from bot.context import JobContext
from bot.core import replies

log = logging.getLogger("sidecar.gaps")

WEEK = timedelta(days=7)


def week_key(now: datetime) -> str:
    year, week, _ = now.isocalendar()
    return f"gaps-report:{year}-W{week:02d}"


async def post_weekly_gaps(ctx: JobContext, *, now: datetime | None = None) -> str:
    """Post this week's report unless it was posted already; returns what happened, for the job log."""
    now = now or datetime.now(UTC)
    conv, cw = ctx.settings.report_conversation_id, ctx.chatwoot
    if conv is None or cw is None:
        return "no report: set REPORT_CONVERSATION_ID (and Chatwoot) to get the weekly gaps report"
    key = week_key(now)
    if await replies.any_posted(ctx.db, [key]):
        return f"{key} already posted"
    since = now - WEEK
    asked = await gap_signals(ctx.db, since)
    embedder = ctx.retriever.embedder
    gaps = await asyncio.to_thread(group, asked, lambda q: embedder.embed_query(q).dense) if asked else []
    note = render(gaps, since=since)
    await replies.post_once(
        ctx.db,
        key,
        conversation_id=conv,
        kind="note",
        content=note,
        post=lambda: cw.post_message(conv, note, private=True),
    )
    log.info("weekly gaps report posted", extra={"key": key, "topics": len(gaps)})
    return f"{key} posted ({len(gaps)} topics)"
