"""The shared webhook intake: store the verified delivery, queue its job, answer fast.

The order matters for losing nothing: the row is committed before anything else, so once we answer 200
the event exists even if Redis is down (the sweeper queues it later). The job is queued just after the
response is sent, so the sender's wait covers only the verification and the insert. If Postgres is down we answer 503
so the sender retries. Nothing here calls a network service other than Postgres and Redis.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import redis
from psycopg_pool import PoolTimeout
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.core import ledger
from bot.core.ledger import Delivery
from bot.core.webhooks import Rejection
from bot.service import jobs
from bot.service.registry import is_supported

log = logging.getLogger("sidecar.intake")


async def accept(request: Request, delivery: Delivery) -> JSONResponse:
    """Store, queue and acknowledge one verified delivery."""
    state = request.app.state
    known = is_supported(delivery.source, delivery.event_type)
    try:
        async with state.pool.connection() as conn:
            event_id = await ledger.insert_async(conn, delivery, known=known)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        log.error("database unavailable", extra={"source": delivery.source, "error": str(exc)[:200]})
        raise Rejection(503, "storage unavailable, retry later") from None
    if event_id is None:
        return JSONResponse({"status": "duplicate"})
    if not known:
        log.info("event ignored", extra={"event_id": event_id, "source": delivery.source,
                                         "event_type": delivery.event_type})
        return JSONResponse({"status": "ignored", "id": event_id})
    log.info("event accepted", extra={"event_id": event_id, "source": delivery.source,
                                      "event_type": delivery.event_type})
    # The row is committed, so the delivery is safe: answer now and queue its job right after the
    # response is sent. If queuing fails, the row is marked for the sweeper.
    return JSONResponse({"status": "queued", "id": event_id},
                        background=BackgroundTask(queue_job, state, event_id))


async def queue_job(state: Any, event_id: int) -> None:
    """Put the event's job on the queue; when Redis refuses, leave the row for the sweeper."""
    try:
        await run_in_threadpool(jobs.enqueue, state.queue, event_id)
    except redis.RedisError as exc:
        log.warning("queue unavailable; left for the sweeper", extra={"event_id": event_id, "error": str(exc)[:200]})
        try:
            async with state.pool.connection() as conn:
                await ledger.mark_not_enqueued(conn, event_id)
        except (psycopg.OperationalError, PoolTimeout):
            pass  # enqueued_at stays set; the sweeper's requeue window still catches it
