"""Keep the knowledge store in step with what the team taught (bot.core.learned).

An approved pair becomes one small document, `learned:<id>`, of its property or of shared knowledge:
its heading is the guest's question, its text the agent's answer. So a guest who asks the same thing in
other words retrieves it like any guide passage, and the access detector gates it like any guide text (a
taught door code stays behind the same gate). A removed pair's chunks are deleted.
"""

from __future__ import annotations

import asyncio
import logging

from bot.context import JobContext
from bot.core import learned
from bot.knowledge import index_document, remove_document
from bot.knowledge.models import Section

log = logging.getLogger("sidecar.learning")


async def sync_learned(ctx: JobContext) -> int:
    """Index approved pairs and unindex removed ones that the store does not reflect yet; returns how many."""
    pending = await learned.out_of_step(ctx.db)
    if not pending:
        return 0
    retriever = ctx.retriever
    dsn = ctx.settings.database_dsn
    for pair in pending:
        if pair.status == "approved":
            await asyncio.to_thread(
                index_document,
                pair.source,
                [Section(heading=pair.question, text=pair.answer)],
                property_code=None if pair.shared else pair.property_code,
                language=None,
                store=retriever.store,
                embedder=retriever.embedder,
                dsn=dsn,
                title="Learned from the team",
            )
        else:
            await asyncio.to_thread(remove_document, pair.source, store=retriever.store, dsn=dsn)
        await learned.mark_indexed(ctx.db, pair.id)
    log.info("learned answers synced", extra={"count": len(pending)})
    return len(pending)
