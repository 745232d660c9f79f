"""Background jobs: run the handler for one stored event, retry with backoff, sweep what was missed.

RQ carries only event ids; the payload stays in Postgres, which is the source of truth. A worker
process keeps one JobContext (database pool, HTTP client, Chatwoot client, warm models) and one event
loop alive across jobs, which is why `sidecar worker` uses RQ's non-forking SimpleWorker.

What each fault does to an event:
- the handler runs longer than JOB_TIMEOUT_S: it is cancelled on the loop (a post in flight becomes
  'unknown' in the reply ledger) and the attempt fails like any error, with a retry;
- another job holds the subject: the event is deferred a moment, not counted as an attempt, and the job
  thread is free at once (no waiting on the lock);
- the worker dies: its leases stop being renewed and expire within JOB_LEASE_S; the sweeper queues the
  event again and the next claim counts a crash, not an attempt (JOB_MAX_CRASHES crashes fail it);
- the worker is stopped (SIGTERM): jobs still running after the grace period are cancelled and their
  events put back on the queue, not counted;
- Postgres or Redis restarts: broken connections are replaced at the next use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
import redis
from rq import Queue

from bot.context import JobContext
from bot.core import ledger, metrics
from bot.core.ledger import StoredEvent
from bot.errors import Defer, PermanentError
from bot.service.registry import handler_for
from config.settings import Settings, load_settings

log = logging.getLogger("sidecar.jobs")

T = TypeVar("T")
JOB_FUNC = "bot.service.jobs.run_event"
JOB_TIMEOUT_S = 600  # RQ's own limit, a backstop behind the handler timeout (settings.job_timeout_s)
BUSY_RETRY_S = 1.0  # a busy subject is tried again this soon
DB_RETRY_S = 5.0  # a job that could not reach Postgres is queued again after this
QUEUED_MARK = "{queue}:queued:{event_id}"  # set with every job: the sweeper's proof that a job exists
# A delayed job not run this long after it was due (RQ's scheduler stalled: its lock is held by a dead
# worker for up to 61 s) loses its mark, and the sweeper queues the event directly.
SCHEDULE_SLACK_S = 30


class JobCancelled(Exception):
    """The worker cancelled the job's work (it is shutting down); the event goes back on the queue."""


class Leases(threading.Thread):
    """Renews the lease of every event this process is processing, every third of the lease.

    A live worker keeps its claims however long a job runs (up to the job timeout); a dead one stops
    renewing, so the sweeper sees its claims expire within one lease instead of minutes."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="leases", daemon=True)
        self.settings = settings
        self.stopping = threading.Event()
        self._held: dict[int, float] = {}
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def hold(self, event_id: int) -> None:
        with self._lock:
            self._held[event_id] = time.monotonic()

    def release(self, event_id: int) -> None:
        with self._lock:
            self._held.pop(event_id, None)

    def renew_once(self) -> list[int]:
        """Renew the leases of jobs within their time limit (a job stuck past it is let go); return them."""
        limit = self.settings.job_timeout_s + self.settings.job_lease_s
        with self._lock:
            ids = [i for i, since in self._held.items() if time.monotonic() - since < limit]
        if not ids:
            return []
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self.settings.database_dsn, autocommit=True, connect_timeout=5)
            ledger.renew(self._conn, ids, lease_s=self.settings.job_lease_s)
        except psycopg.Error as exc:
            log.warning("lease renewal failed", extra={"error": str(exc)[:200]})
            if self._conn is not None:
                self._conn.close()
            return []
        return ids

    def run(self) -> None:
        while not self.stopping.wait(self.settings.job_lease_s / 3):
            self.renew_once()
        if self._conn is not None:
            self._conn.close()


class Runtime:
    """Per-process state shared by every job: one event loop in its own thread, the context, a ledger
    connection per job thread, and the lease keeper.

    Jobs run in worker threads (several at once with `sidecar worker --concurrency N`); their async
    work is submitted to the one loop, so the HTTP pools, the database pool and the warm models are
    shared by all of them.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jobs-loop", daemon=True)
        self._thread.start()
        self.ctx: JobContext | None = None
        self._ctx_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[psycopg.Connection[Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cancelling = False
        self.leases = Leases(settings)
        self.leases.start()

    def run(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the runtime's loop and wait for its result (from any thread).

        With `timeout` the coroutine is cancelled when it runs over (TimeoutError); `cancel_all` cancels
        it from outside (JobCancelled). Either way the coroutine's own cleanup runs before this returns."""

        if self._cancelling:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise JobCancelled("the worker is shutting down")

        async def call() -> T:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                return await asyncio.wait_for(awaitable, timeout)
            finally:
                self._tasks.discard(task)

        try:
            return asyncio.run_coroutine_threadsafe(call(), self.loop).result()
        except concurrent.futures.CancelledError:
            raise JobCancelled("the worker is shutting down") from None

    def cancel_all(self) -> int:
        """Cancel every job's coroutine, and any a job starts from now on (the worker is stopping); return how
        many were running."""
        self._cancelling = True
        tasks = list(self._tasks)
        for task in tasks:
            self.loop.call_soon_threadsafe(task.cancel)
        return len(tasks)

    def context(self) -> JobContext:
        with self._ctx_lock:
            if self.ctx is None:
                self.ctx = self.run(JobContext.open(self.settings))
            return self.ctx

    def conn(self) -> psycopg.Connection[Any]:
        """This job thread's own ledger connection, replaced when closed or broken (Postgres restarted)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = psycopg.connect(
                self.settings.database_dsn,
                autocommit=True,
                connect_timeout=5,
                prepare_threshold=self.settings.prepare_threshold,
            )
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    def drop_conn(self) -> None:
        """Forget this thread's connection after an error that may have broken it."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def queue(self) -> Queue:
        return make_queue(self.settings)

    def close(self) -> None:
        self.leases.stopping.set()
        self._cancelling = False  # the jobs are over; closing the context is not one of them
        if self.ctx is not None:
            self.run(self.ctx.close())
            self.ctx = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
        for conn in self._conns:
            conn.close()


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, created on first use from the environment."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(load_settings())
    return _runtime


def install_runtime(rt: Runtime | None) -> None:
    """Set (or clear) the process's runtime; the worker and tests build it with explicit settings."""
    global _runtime
    _runtime = rt


def make_queue(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    conn = connection or redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=10
    )
    return Queue(settings.queue_name, connection=conn, default_timeout=JOB_TIMEOUT_S)


def queued_mark(queue: Queue, event_id: int) -> str:
    return QUEUED_MARK.format(queue=queue.name, event_id=event_id)


def enqueue(queue: Queue, event_id: int, delay_s: float = 0) -> None:
    """Queue the job for one event (now, or after a delay through RQ's scheduler).

    The job and a mark saying it exists are written in one Redis transaction, so the sweeper can tell an
    event whose job is waiting from one whose job never got there (a web process killed after storing)."""
    opts: dict[str, Any] = {
        "job_timeout": JOB_TIMEOUT_S,
        "result_ttl": 60,
        "failure_ttl": 86400,
        "description": f"event {event_id}",
    }
    with queue.connection.pipeline() as pipe:
        if delay_s > 0:
            queue.enqueue_in(timedelta(seconds=delay_s), JOB_FUNC, event_id, pipeline=pipe, **opts)
        else:
            queue.enqueue(JOB_FUNC, event_id, pipeline=pipe, **opts)
        ttl = delay_s + SCHEDULE_SLACK_S if delay_s > 0 else ledger.REQUEUE_AFTER_SECONDS
        pipe.set(queued_mark(queue, event_id), "1", ex=max(int(ttl), 1))
        pipe.execute()


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Exponential backoff: base, 2·base, 4·base ... capped at ten minutes."""
    return float(min(settings.job_backoff_base_s * (2 ** max(attempts - 1, 0)), 600.0))


def run_event(event_id: int) -> str:
    """RQ entry point: process one stored event exactly once in effect.

    Events about one subject take effect in the order they arrived: under the subject's lock, older
    events of it that are due but whose jobs have not run yet are processed first (an agent's reply
    must be seen before the guest message that followed it, whichever job got the lock first)."""
    rt = runtime()
    try:
        return _run_event(rt, event_id)
    except psycopg.OperationalError as exc:  # Postgres went away: reconnect next time, run this again soon
        rt.drop_conn()
        log.warning("database unavailable; job queued again", extra={"event_id": event_id, "error": str(exc)[:200]})
        with contextlib.suppress(redis.RedisError):  # else its queued mark expires and the sweeper queues it
            enqueue(rt.queue(), event_id, DB_RETRY_S)
        return "database unavailable"


def _run_event(rt: Runtime, event_id: int) -> str:
    conn = rt.conn()
    # The lock comes before the claim: a job that finds its subject busy leaves the event untouched (no
    # attempt, still 'received'), so the job holding the subject runs it first if it is older.
    max_crashes, lease_s = rt.settings.job_max_crashes, rt.settings.job_lease_s
    subject, locked, claimed = ledger.lock_and_claim(conn, event_id, max_crashes=max_crashes, lease_s=lease_s)
    if not locked:
        try:
            enqueue(rt.queue(), event_id, BUSY_RETRY_S)  # come back soon; this worker slot is free at once
        except redis.RedisError:
            ledger.unqueue(conn, [event_id])
        return "busy"
    try:
        if claimed is None:
            return "skipped"
        for older_id in claimed.older_ids:
            older = ledger.claim(conn, older_id, max_crashes=max_crashes, lease_s=lease_s)
            if older is not None:
                _process_held(rt, conn, older)
        return _process_held(rt, conn, claimed)
    finally:
        ledger.unlock(conn, subject)


def _process_held(rt: Runtime, conn: psycopg.Connection[Any], claimed: ledger.Claim) -> str:
    """Process a claimed event while the lease keeper renews its claim."""
    rt.leases.hold(claimed.event.id)
    try:
        return process(rt, conn, claimed.event, claimed.attempt_id)
    finally:
        rt.leases.release(claimed.event.id)


def process(rt: Runtime, conn: psycopg.Connection[Any], event: StoredEvent, attempt_id: int) -> str:
    """Run a claimed event's handler and record the outcome: done, ignored, deferred, requeued or failed."""
    started = time.perf_counter()
    outcome, error = "done", None
    timeout = rt.settings.job_timeout_s
    try:
        handler = handler_for(event.source, event.event_type)
        if handler is None:
            outcome = "ignored"
        else:
            result = rt.run(handler(rt.context(), event), timeout=timeout)
            outcome = result if result in ("done", "ignored") else "done"
        ledger.finish(conn, event.id, outcome)
    except Defer as d:
        outcome = "deferred"
        ledger.defer(conn, event.id, d.seconds)
        _enqueue_or_leave(rt, conn, event.id, d.seconds)
    except JobCancelled:
        outcome = "requeued"  # the worker is stopping: another one takes it, and this run does not count
        ledger.defer(conn, event.id, 0)
        _enqueue_or_leave(rt, conn, event.id, 0)
    except Exception as exc:  # every failure is recorded; none is lost
        error = (
            f"timed out after {timeout:g}s"
            if isinstance(exc, TimeoutError) and not str(exc)
            else f"{type(exc).__name__}: {exc}"
        )
        final = isinstance(exc, PermanentError) or event.attempts >= rt.settings.job_max_attempts
        retry_in = None if final else backoff_seconds(rt.settings, event.attempts)
        outcome = "failed"
        ledger.fail(conn, event.id, error, retry_in)
        log.warning(
            "event failed",
            extra={
                "event_id": event.id,
                "source": event.source,
                "event_type": event.event_type,
                "attempt": event.attempts,
                "retry_in": retry_in,
                "error": error[:300],
            },
        )
        log.debug("traceback for event %s:\n%s", event.id, traceback.format_exc())
        if retry_in is not None:
            _enqueue_or_leave(rt, conn, event.id, retry_in)
    finally:
        ledger.end_attempt(conn, attempt_id, outcome, error)
        metrics.JOB_SECONDS.labels(event.source, event.event_type, outcome).observe(time.perf_counter() - started)
        if outcome == "failed":
            metrics.JOB_FAILURES.labels(event.source, event.event_type).inc()
    log.info(
        "event processed",
        extra={"event_id": event.id, "source": event.source, "event_type": event.event_type, "outcome": outcome},
    )
    return outcome


def _enqueue_or_leave(rt: Runtime, conn: psycopg.Connection[Any], event_id: int, delay_s: float) -> None:
    try:
        enqueue(rt.queue(), event_id, delay_s)
    except redis.RedisError:
        ledger.unqueue(conn, [event_id])  # the sweeper will queue it once Redis is back


def sweep(settings: Settings, conn: psycopg.Connection[Any], queue: Queue) -> list[int]:
    """Queue every event that should be running but has no job; return their ids.

    Expired claims past JOB_MAX_CRASHES are failed here, so they show in `sidecar events list --failed`."""
    crashed = ledger.give_up_crashed(conn, settings.job_max_crashes)
    if crashed:
        log.warning("events gave up after crashing", extra={"event_ids": crashed[:50]})
    check, expired = ledger.sweep_candidates(conn, grace_s=settings.sweep_grace_s)
    if check:
        with queue.connection.pipeline(transaction=False) as pipe:
            for event_id in check:
                pipe.exists(queued_mark(queue, event_id))
            marked = pipe.execute()
        check = [event_id for event_id, has_job in zip(check, marked, strict=True) if not has_job]
    ids = sorted(check + expired)
    if not ids:
        return []
    ledger.mark_queued(conn, ids)
    queued: list[int] = []
    for event_id in ids:
        try:
            enqueue(queue, event_id)
            queued.append(event_id)
        except redis.RedisError:
            ledger.unqueue(conn, [i for i in ids if i not in queued])
            break
    if queued:
        log.info("swept events", extra={"count": len(queued)})
    return queued
