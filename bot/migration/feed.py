"""Keep listing knowledge in step with the property rows it is made of, whoever changed them.

A trigger on `properties` (migration 0011) files every change of a listing's facts in knowledge_changes
and NOTIFYs `knowledge_changes`: a Guesty webhook, an import, an UPDATE typed by hand all land there.
`reindex_changed` (the worker's sweeper calls it) rebuilds each changed listing's document from its row,
the columns winning over the stored payload (so a fix made by SQL is what guests are told), and syncs
it with `index_document`, which re-embeds only the chunks that changed and keeps vector_references
exact. A deleted or inactive listing loses its knowledge. A change filed again while it was being
indexed (its version moved) stays in the feed for the next pass.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from bot.knowledge import Embedder, KnowledgeStore, index_document, remove_document
from integrations.guesty.models import Address, Listing
from integrations.guesty.transforms import listing_document, listing_source, property_row

if TYPE_CHECKING:
    from bot.context import JobContext

log = logging.getLogger("sidecar.feed")

CHANNEL = "knowledge_changes"
FEED_LOCK_ID = 727_011  # one feed pass at a time across worker replicas
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Change:
    property_code: str
    listing_id: str | None
    version: int


@dataclass
class FeedReport:
    reindexed: int = 0  # listings whose document was synced (chunks added, unchanged or deleted)
    removed: int = 0  # listings whose knowledge was deleted
    failed: int = 0  # left in the feed for the next pass
    chunks_added: int = 0
    chunks_deleted: int = 0

    @property
    def done(self) -> int:
        return self.reindexed + self.removed


async def reindex_changed(ctx: JobContext, limit: int = DEFAULT_LIMIT) -> int:
    """Re-index the listings changed since the last pass with the worker's warm store and embedder;
    returns how many listings were synced or removed. Safe to call often: an empty feed costs one query."""
    retriever = ctx.retriever
    report = await asyncio.to_thread(
        reindex_pending, ctx.settings.database_dsn, retriever.store, retriever.embedder, limit=limit
    )
    return report.done


def reindex_pending(dsn: str, store: KnowledgeStore, embedder: Embedder, *, limit: int = DEFAULT_LIMIT) -> FeedReport:
    """One pass over the feed (the synchronous core of `reindex_changed`, also used by the CLI)."""
    report = FeedReport()
    with psycopg.connect(dsn, autocommit=True) as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (FEED_LOCK_ID,)).fetchone()
        if not (locked and locked[0]):
            return report
        try:
            changes = [
                Change(*row)
                for row in conn.execute(
                    "SELECT property_code, listing_id, version FROM knowledge_changes ORDER BY changed_at LIMIT %s",
                    (limit,),
                )
            ]
            for change in changes:
                try:
                    _apply(conn, change, dsn, store, embedder, report)
                except Exception as exc:  # one bad listing must not stall the others; it stays in the feed
                    report.failed += 1
                    log.warning(
                        "listing knowledge not re-indexed",
                        extra={"property_code": change.property_code, "error": str(exc)[:200]},
                    )
                    continue
                conn.execute(
                    "DELETE FROM knowledge_changes WHERE property_code = %s AND version = %s",
                    (change.property_code, change.version),
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (FEED_LOCK_ID,))
    if report.done or report.failed:
        log.info("listing knowledge re-indexed", extra={"report": str(report)})
    return report


def _apply(
    conn: psycopg.Connection, change: Change, dsn: str, store: KnowledgeStore, embedder: Embedder, report: FeedReport
) -> None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT code, guesty_listing_id, name, nickname, address, timezone, check_in_time,"
            " check_out_time, active, raw FROM properties WHERE code = %s",
            (change.property_code,),
        )
        row = cur.fetchone()
    indexable = row is not None and bool(row["active"]) and bool(row["guesty_listing_id"])
    if row is not None and indexable:
        listing = listing_from_row(row)
        document = listing_document(listing, row["code"], row["raw"])
        sync = index_document(
            document.source,
            document.sections,
            property_code=row["code"],
            language=document.language,
            store=store,
            embedder=embedder,
            dsn=dsn,
            title=document.title,
        )
        report.reindexed += 1
        report.chunks_added += sync.added
        report.chunks_deleted += sync.deleted
    stale = (
        change.listing_id
        if change.listing_id and (not indexable or row is None or row["guesty_listing_id"] != change.listing_id)
        else None
    )
    # A listing whose property was deleted, deactivated or re-coded: its knowledge goes, unless an active
    # property (the same listing under its new code) still holds it.
    if stale and conn.execute(
        "SELECT NOT EXISTS (SELECT 1 FROM properties WHERE guesty_listing_id = %s AND active)", (stale,)
    ).fetchone() == (True,):
        report.chunks_deleted += remove_document(listing_source(stale), store=store, dsn=dsn)
        report.removed += 1


def listing_from_row(row: dict[str, Any]) -> Listing:
    """The listing a property row describes: its stored payload, with every column that no longer says
    what the payload says (an operator's SQL fix) taking precedence."""
    listing = Listing.model_validate(row.get("raw") or {})
    listing = listing.model_copy(update={"id": row["guesty_listing_id"]})
    derived = property_row(listing)
    updates: dict[str, Any] = {}
    if row["name"] != derived.name:
        updates["title"] = row["name"]
    if row["nickname"] != derived.nickname and row["nickname"] is not None:
        updates["nickname"] = row["nickname"]
    if row["address"] != derived.address and row["address"] is not None:
        updates["address"] = Address(full=row["address"])
    if row["timezone"] != derived.timezone and row["timezone"] is not None:
        updates["timezone"] = row["timezone"]
    if row["check_in_time"] != derived.check_in_time and row["check_in_time"] is not None:
        updates["default_check_in_time"] = row["check_in_time"]
    if row["check_out_time"] != derived.check_out_time and row["check_out_time"] is not None:
        updates["default_check_out_time"] = row["check_out_time"]
    return listing.model_copy(update=updates) if updates else listing


def wait_for_changes(dsn: str, timeout: float) -> bool:
    """Block until the trigger NOTIFYs a change or `timeout` seconds pass; True when one came.

    For a worker that wants to re-index at once instead of on its next sweep."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        if conn.execute("SELECT EXISTS (SELECT 1 FROM knowledge_changes)").fetchone() == (True,):
            return True
        return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
