"""Periodic work, queued by the worker's sweeper thread and run as ordinary jobs (so it shares the warm
context and shows up in the queue like everything else)."""

from __future__ import annotations

import logging
from typing import Any

from bot.agent.learning import sync_learned
from bot.migration.feed import reindex_changed
from bot.service.ask import ask_async, render, to_dict
from bot.service.jobs import runtime
from integrations.guesty.staleness import check_all_listings

log = logging.getLogger("sidecar.periodic")

STAY_STAGES_EVERY_S = 3600.0
GAPS_REPORT_EVERY_S = 7 * 24 * 3600.0


def refresh_stay_stages() -> str:
    """Move each guest's stay-stage label (inquiry, pre-stay, during-stay, post-stay) along with the dates."""
    from integrations.guesty.stays import refresh_stay_stages as refresh

    rt = runtime()
    report = rt.run(refresh(rt.context()), timeout=rt.settings.job_timeout_s)  # cancelled, not left hanging
    log.info("stay stages refreshed", extra={"report": str(report)})
    return str(report)


def post_gaps_report() -> str:
    """The weekly knowledge-gaps note to REPORT_CONVERSATION_ID (once per ISO week: bot.agent.weekly_gaps)."""
    from bot.agent.weekly_gaps import post_weekly_gaps

    rt = runtime()
    outcome = rt.run(post_weekly_gaps(rt.context()), timeout=rt.settings.job_timeout_s)
    log.info("gaps report", extra={"outcome": outcome})
    return outcome


def ingest_folder(path: str) -> str:
    """Ingest a knowledge folder with this worker's own store (the embedded store admits one process)."""
    import asyncio
    from pathlib import Path

    from bot.knowledge import ingest

    rt = runtime()
    ctx = rt.context()

    async def run() -> str:
        r = ctx.retriever
        report = await asyncio.to_thread(
            ingest, Path(path), store=r.store, embedder=r.embedder, dsn=ctx.settings.database_dsn
        )
        return (
            f"{report.files} files: {report.added} chunks added, {report.unchanged} unchanged, "
            f"{report.deleted} deleted" + (f"; skipped: {', '.join(report.errors)}" if report.errors else "")
        )

    summary = rt.run(run())
    log.info("knowledge ingested", extra={"path": path, "summary": summary})
    return summary


def sync_learned_answers() -> str:
    """Bring the knowledge store in step with the learned answers (after `sidecar learned remove`)."""
    rt = runtime()
    count = rt.run(sync_learned(rt.context()))
    log.info("learned answers synced", extra={"count": count})
    return f"{count} learned answers synced"


def reindex_knowledge() -> str:
    """Re-index listings whose rows changed, whatever changed them (bot.migration.feed)."""
    rt = runtime()
    count = rt.run(reindex_changed(rt.context()))
    return f"{count} listing(s) re-indexed or removed"


def ask_question(question: str, property_code: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """`sidecar ask` answered by this worker, which holds the embedded store: the result as plain data."""
    rt = runtime()
    result = rt.run(ask_async(rt.context().retriever, rt.settings, question, property_code, **options))
    return {"text": render(result), "json": to_dict(result)}


def replay_history(source: str, since: str, inbox_id: int | None, limit: int | None) -> dict[str, Any]:
    """`sidecar replay` run by this worker, which holds the embedded store: the report as text and JSON."""
    from datetime import datetime

    from bot.service.replay import run_async

    rt = runtime()
    report = rt.run(
        run_async(
            rt.settings,
            rt.context().retriever,
            source=source,
            since=datetime.fromisoformat(since),
            inbox_id=inbox_id,
            limit=limit,
        )
    )
    return {"text": report.to_text(), "json": report.to_json()}


STALE_EVERY_S = 24 * 3600.0


def check_stale_knowledge() -> str:
    """Nightly: every mirrored listing against the guides (a guide edited since the listing last changed)."""
    rt = runtime()
    conflicts = rt.run(check_all_listings(rt.context()))
    log.info("stale knowledge checked", extra={"conflicts": conflicts})
    return f"{conflicts} disagreement(s) between guides and listings"
