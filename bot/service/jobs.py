"""Background jobs: run the handler for one stored event, retry with backoff, sweep what was missed.

RQ carries only event ids; the payload stays in Postgres, which is the source of truth. A worker
process keeps one JobContext (database pool, HTTP client, Chatwoot client, warm models) and one event
loop alive across jobs, which is why `sidecar worker` uses RQ's non-forking SimpleWorker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
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
JOB_TIMEOUT_S = 600


class Runtime:
    """Per-process state shared by every job: one event loop in its own thread, the context, and a
    ledger connection per job thread.

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

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run a coroutine on the runtime's loop and wait for its result (from any thread)."""

        async def call() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result()

    def context(self) -> JobContext:
        with self._ctx_lock:
            if self.ctx is None:
                self.ctx = self.run(JobContext.open(self.settings))
            return self.ctx

    def conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.settings.database_dsn, autocommit=True)
            conn.execute("SET lock_timeout = '60s'")  # a subject lock held longer than this fails the attempt
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    def queue(self) -> Queue:
        return make_queue(self.settings)

    def close(self) -> None:
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
    conn = connection or redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
    return Queue(settings.queue_name, connection=conn, default_timeout=JOB_TIMEOUT_S)


def enqueue(queue: Queue, event_id: int, delay_s: float = 0) -> None:
    """Queue the job for one event (now, or after a delay through RQ's scheduler)."""
    opts: dict[str, Any] = {"job_timeout": JOB_TIMEOUT_S, "result_ttl": 60, "failure_ttl": 86400,
                            "description": f"event {event_id}"}
    if delay_s > 0:
        queue.enqueue_in(timedelta(seconds=delay_s), JOB_FUNC, event_id, **opts)
    else:
        queue.enqueue(JOB_FUNC, event_id, **opts)


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Exponential backoff: base, 2·base, 4·base ... capped at ten minutes."""
    return float(min(settings.job_backoff_base_s * (2 ** max(attempts - 1, 0)), 600.0))


def run_event(event_id: int) -> str:
    """RQ entry point: process one stored event exactly once in effect.

    Events about one subject take effect in the order they arrived: under the subject's lock, older
    events of it that are due but whose jobs have not run yet are processed first (an agent's reply
    must be seen before the guest message that followed it, whichever job got the lock first)."""
    rt = runtime()
    conn = rt.conn()
    event = ledger.claim(conn, event_id)
    if event is None:
        return "skipped"
    try:
        with subject_lock(conn, event.subject):
            for older_id in ledger.older_due(conn, event):
                older = ledger.claim(conn, older_id)
                if older is not None:
                    process(rt, conn, older)
            return process(rt, conn, event)
    except psycopg.errors.LockNotAvailable:  # another job held the subject for over a minute
        ledger.fail(conn, event.id, "subject busy (lock timeout)", backoff_seconds(rt.settings, event.attempts))
        _enqueue_or_leave(rt, conn, event.id, backoff_seconds(rt.settings, event.attempts))
        return "failed"


def process(rt: Runtime, conn: psycopg.Connection[Any], event: StoredEvent) -> str:
    """Run a claimed event's handler and record the outcome: done, ignored, deferred or failed."""
    attempt_id = ledger.start_attempt(conn, event)
    started = time.perf_counter()
    outcome, error = "done", None
    try:
        handler = handler_for(event.source, event.event_type)
        if handler is None:
            outcome = "ignored"
        else:
            result = rt.run(handler(rt.context(), event))
            outcome = result if result in ("done", "ignored") else "done"
        ledger.finish(conn, event.id, outcome)
    except Defer as d:
        outcome = "deferred"
        ledger.defer(conn, event.id, d.seconds)
        _enqueue_or_leave(rt, conn, event.id, d.seconds)
    except Exception as exc:  # every failure is recorded; none is lost
        error = f"{type(exc).__name__}: {exc}"
        final = isinstance(exc, PermanentError) or event.attempts >= rt.settings.job_max_attempts
        retry_in = None if final else backoff_seconds(rt.settings, event.attempts)
        outcome = "failed"
        ledger.fail(conn, event.id, error, retry_in)
        log.warning("event failed", extra={"event_id": event.id, "source": event.source,
                                           "event_type": event.event_type, "attempt": event.attempts,
                                           "retry_in": retry_in, "error": error[:300]})
        log.debug("traceback for event %s:\n%s", event.id, traceback.format_exc())
        if retry_in is not None:
            _enqueue_or_leave(rt, conn, event.id, retry_in)
    finally:
        ledger.end_attempt(conn, attempt_id, outcome, error)
        metrics.JOB_SECONDS.labels(event.source, event.event_type, outcome).observe(time.perf_counter() - started)
        if outcome == "failed":
            metrics.JOB_FAILURES.labels(event.source, event.event_type).inc()
    log.info("event processed", extra={"event_id": event.id, "source": event.source,
                                       "event_type": event.event_type, "outcome": outcome})
    return outcome


@contextmanager
def subject_lock(conn: psycopg.Connection[Any], subject: str | None) -> Iterator[None]:
    """Hold the lock on an event's subject (a conversation, a call, a reservation) while its handler runs,
    so two jobs never work on the same one at once. It is a session lock on this job thread's own
    connection: it dies with the worker, and the shared async pool stays free for short queries."""
    if not subject:
        yield
        return
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (subject,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (subject,))


def _enqueue_or_leave(rt: Runtime, conn: psycopg.Connection[Any], event_id: int, delay_s: float) -> None:
    try:
        enqueue(rt.queue(), event_id, delay_s)
    except redis.RedisError:
        ledger.unqueue(conn, [event_id])  # the sweeper will queue it once Redis is back


def sweep(settings: Settings, conn: psycopg.Connection[Any], queue: Queue) -> list[int]:
    """Queue every event that should be running but has no job; return their ids."""
    ids = ledger.due_for_sweep(conn, grace_s=settings.sweep_grace_s)
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
