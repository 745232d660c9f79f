"""The shared webhook intake: store the verified delivery, queue its job, answer fast.

The order matters for losing nothing: the row is committed before anything else, so once we answer 200
the event exists even if Redis is down (the sweeper queues it later). The job is queued just after the
response is sent, so the sender's wait covers only the verification and the insert.

When Postgres cannot take the row within INTAKE_DB_WAIT_S (down, restarting, pool exhausted), the delivery
goes to the local spool (bot.core.spool) and we still answer 200 (`spooled`); a background task drains the
spool into the ledger when Postgres is back and queues the jobs. While records wait there, new deliveries
join them, so the ledger receives them in arrival order. Only when the spool cannot write either do we answer
500: the one status Chatwoot retries besides 429 (Aircall and Svix retry any failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg
import redis
from psycopg_pool import PoolTimeout
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.core import ledger, metrics
from bot.core.ledger import Delivery
from bot.core.spool import DrainReport, Spool, SpoolError, drain_into
from bot.core.webhooks import Rejection
from bot.errors import SidecarError
from bot.service import jobs
from bot.service.registry import is_supported

log = logging.getLogger("sidecar.intake")

DRAIN_EVERY_S = 5.0  # how often the web process looks at its spool when nothing wakes it
REDACT_EVERY_S = 3600.0  # payload retention runs hourly (one web replica at a time)
REDACT_LOCK_ID = 727_003


class StorageUnavailable(SidecarError):
    """Postgres did not take the row in time; the delivery goes to the spool."""


async def accept(request: Request, delivery: Delivery) -> JSONResponse:
    """Store (or spool), queue and acknowledge one verified delivery."""
    state = request.app.state
    known = is_supported(delivery.source, delivery.event_type)
    if not state.spool.backlog:
        try:
            event_id = await _store(state, delivery, known)
        except StorageUnavailable as exc:
            log.error("database unavailable; spooling", extra={"source": delivery.source, "error": str(exc)[:200]})
        else:
            return _stored(state, delivery, event_id, known)
    return await _spool(state, delivery, known)


async def _store(state: Any, delivery: Delivery, known: bool) -> int | None:
    wait = state.settings.intake_db_wait_s
    try:
        async with asyncio.timeout(wait), state.pool.connection(timeout=wait) as conn:
            return await ledger.insert_async(conn, delivery, known=known)
    except psycopg.DataError as exc:  # a value PostgreSQL refuses: the sender must not retry it
        raise Rejection(400, f"the payload cannot be stored: {str(exc).splitlines()[0][:200]}") from None
    except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from None


def _stored(state: Any, delivery: Delivery, event_id: int | None, known: bool) -> JSONResponse:
    extra = {"event_id": event_id, "source": delivery.source, "event_type": delivery.event_type}
    if event_id is None:
        metrics.EVENTS_STORED.labels(delivery.source, "duplicate").inc()
        return JSONResponse({"status": "duplicate"})
    if not known:
        metrics.EVENTS_STORED.labels(delivery.source, "ignored").inc()
        log.info("event ignored", extra=extra)
        return JSONResponse({"status": "ignored", "id": event_id})
    metrics.EVENTS_STORED.labels(delivery.source, "queued").inc()
    log.info("event accepted", extra=extra)
    # The row is committed, so the delivery is safe: answer now and queue its job right after the
    # response is sent. If queuing fails, the row is marked for the sweeper.
    return JSONResponse({"status": "queued", "id": event_id}, background=BackgroundTask(queue_job, state, event_id))


async def _spool(state: Any, delivery: Delivery, known: bool) -> JSONResponse:
    spool: Spool = state.spool
    try:
        name = await asyncio.to_thread(spool.append, delivery, known=known)
    except SpoolError as exc:
        metrics.EVENTS_STORED.labels(delivery.source, "lost").inc()
        log.critical("delivery neither stored nor spooled", extra={"source": delivery.source, "error": str(exc)[:200]})
        raise Rejection(500, "storage unavailable, retry later") from None
    metrics.EVENTS_STORED.labels(delivery.source, "spooled").inc()
    log.warning("event spooled", extra={"record": name, "source": delivery.source, "event_type": delivery.event_type})
    state.drain_wakeup.set()
    return JSONResponse({"status": "spooled"})


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


async def drain_once(state: Any) -> DrainReport:
    """Move the spool into the ledger and queue the new events' jobs."""
    report = await asyncio.to_thread(drain_into, state.settings.database_dsn, state.spool, queued=True)
    for event_id in report.queued:
        await queue_job(state, event_id)
    return report


def redact_once(dsn: str, days: int) -> int:
    """Payload retention, by one web replica at a time (an advisory lock); returns the payloads redacted."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (REDACT_LOCK_ID,)).fetchone()
        if not got or not got[0]:
            return 0
        try:
            count = ledger.redact_payloads(conn, days)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (REDACT_LOCK_ID,))
    metrics.REDACTED.inc(count)
    if count:
        log.info("event payloads redacted", extra={"count": count, "older_than_days": days})
    return count


async def housekeeping(state: Any) -> None:
    """The web process's background loop: drain the spool when woken (or every DRAIN_EVERY_S while records
    wait), and redact old payloads hourly. Runs until cancelled at shutdown; an error is logged, not fatal."""
    next_redact = time.monotonic() + 60.0  # not at start: replicas restarting together would all try at once
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.drain_wakeup.wait(), DRAIN_EVERY_S)
        state.drain_wakeup.clear()
        try:
            if (await drain_once(state)).left:
                await asyncio.sleep(DRAIN_EVERY_S)  # Postgres is still away: do not retry on every spooled request
            days = state.settings.payload_retention_days
            if days and time.monotonic() >= next_redact:
                next_redact = time.monotonic() + REDACT_EVERY_S
                await asyncio.to_thread(redact_once, state.settings.database_dsn, days)
        except Exception as exc:  # keep the loop alive whatever happens; the next round tries again
            log.warning("housekeeping failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
