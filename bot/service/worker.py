"""`sidecar worker`: RQ's SimpleWorker with the scheduler, plus a sweeper thread.

SimpleWorker runs jobs in this process instead of forking a work horse per job, so the embedding model,
the Qdrant store and the HTTP connection pools stay warm between jobs (a fork per job would reload the
model or share broken sockets). Run several worker replicas for parallelism; jobs touching the same
conversation or call are serialised by an advisory lock, not by the number of workers.

Stopping: SIGTERM (or SIGINT) ends the loop at once, whether or not jobs run; running jobs get
WORKER_SHUTDOWN_GRACE_S to finish, then are cancelled and their events queued again for another worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from prometheus_client import start_http_server
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.timeouts import TimerDeathPenalty
from rq.worker.base import StopRequested

from bot.core import spool
from bot.service import jobs, periodic
from config.settings import Settings

log = logging.getLogger("sidecar.worker")
PUBSUB_POLL_S = 1.0
SLOT_POLL_S = 1.0
# RQ's scheduler lock lives interval + 60 s; a worker that died holding it leaves delayed jobs (retries,
# deferrals) waiting until it expires and another worker's maintenance takes it over. RQ runs maintenance
# every 10 minutes by default; this makes the takeover follow the lock's expiry within seconds.
MAINTENANCE_INTERVAL_S = 10
BURST_WAITS_FOR_S = 3.0  # a burst run (tests, the demo) also runs delayed jobs due this soon


class Sweeper(threading.Thread):
    """Every sweep_interval_s, queue events that were stored but have no job (Redis was down, a job
    was lost, a worker died, a retry was never scheduled)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.settings = settings
        self.stopping = threading.Event()

    def run_once(self) -> list[int]:
        # Deliveries the web spooled while Postgres was away (when this worker shares its SPOOL_DIR); the
        # sweep below queues them.
        spool.drain_spool(self.settings)
        with psycopg.connect(self.settings.database_dsn, autocommit=True) as conn:
            # Only one sweeper at a time across replicas; the others skip this round.
            got = conn.execute("SELECT pg_try_advisory_lock(727002)").fetchone()
            if not got or not got[0]:
                return []
            try:
                return jobs.sweep(self.settings, conn, jobs.make_queue(self.settings))
            finally:
                conn.execute("SELECT pg_advisory_unlock(727002)")

    def run(self) -> None:
        next_stages = time.monotonic()
        while not self.stopping.wait(self.settings.sweep_interval_s):
            try:
                self.run_once()
                if time.monotonic() >= next_stages:
                    next_stages = time.monotonic() + periodic.STAY_STAGES_EVERY_S
                    self.queue_periodic("bot.service.periodic.refresh_stay_stages")
                    # Hourly chance, weekly job: the Redis marker lets one run per 7 days across replicas;
                    # the ISO-week ledger key keeps a restart from posting a week twice.
                    self.queue_periodic("bot.service.periodic.post_gaps_report", every_s=periodic.GAPS_REPORT_EVERY_S)
                    self.queue_periodic("bot.service.periodic.check_stale_knowledge", every_s=periodic.STALE_EVERY_S)
                if self.knowledge_changed():
                    self.queue_periodic(
                        "bot.service.periodic.reindex_knowledge", every_s=self.settings.sweep_interval_s
                    )
            except Exception as exc:  # the sweeper must outlive any one failed round (a restart, a bug)
                log.warning("sweep failed", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})

    def knowledge_changed(self) -> bool:
        """Whether rows that feed knowledge changed since the feed last ran (bot.migration.feed)."""
        with psycopg.connect(self.settings.database_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM knowledge_changes)").fetchone()
        return bool(row and row[0])

    def queue_periodic(self, func: str, *, every_s: float = periodic.STAY_STAGES_EVERY_S - 60) -> None:
        """Queue a periodic job once across replicas: a Redis key marks it taken for this round."""
        conn = redis.Redis.from_url(self.settings.redis_url)
        marker = f"{self.settings.queue_name}:periodic:{func}"
        if conn.set(marker, "1", nx=True, ex=max(1, int(every_s))):
            jobs.make_queue(self.settings, conn).enqueue(func, job_timeout=jobs.JOB_TIMEOUT_S)


class ConcurrentWorker(SimpleWorker):
    """A SimpleWorker that runs up to `concurrency` jobs at once in threads of this process.

    Jobs mostly wait on Chatwoot, Groq and Azure; running them side by side in one process keeps one warm
    copy of the model and the embedded store (which a single process must own) while many conversations
    are answered at once. Job timeouts use a timer instead of SIGALRM, which only works in the main thread.

    A slot is taken before a job is dequeued, so the main loop never holds a job it cannot start, and a
    stop request can end the loop wherever it waits.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(
        self,
        *args: Any,
        concurrency: int = 8,
        shutdown_grace_s: float = 5.0,
        on_overdue: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._running: set[Future[None]] = set()
        self._handing_over = False
        self.shutdown_grace_s = shutdown_grace_s
        self.on_overdue = on_overdue

    def subscribe(self) -> None:
        """RQ's command channel, polled every second instead of every 60 s.

        redis-py 8 joins the pub/sub thread when it stops, and rq polls with a 60 s timeout, so a
        stopping worker (a SIGTERM from Swarm, the end of a burst) could wait a minute for that poll."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def _shutdown(self) -> None:
        """Stop now, busy or not (RQ waits for a busy worker's job, which here is only handed to a thread):
        the running jobs are drained, or cancelled after the grace period, in teardown."""
        self._stop_requested = True
        self.set_shutdown_requested_date()
        if not self._handing_over:
            raise StopRequested()

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        while not self._slots.acquire(timeout=SLOT_POLL_S):
            if self._stop_requested:
                raise StopRequested()
        try:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        except BaseException:
            self._slots.release()
            raise
        if result is None:
            self._slots.release()
        else:
            self._handing_over = True  # a job is out of Redis: no stop may interrupt until a thread has it
        return result

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            execution = self.prepare_execution(job)

            def run() -> None:
                try:
                    self.perform_job(job, queue, execution)
                finally:
                    self._slots.release()

            future = self._pool.submit(run)
            self._running.add(future)
            future.add_done_callback(self._running.discard)
        finally:
            self._handing_over = False
        if self._stop_requested:
            raise StopRequested()

    def drain(self) -> None:
        """Wait for the jobs still running; when stopping, only for the grace period, then cancel them."""
        if self._stop_requested and self._running:
            _, overdue = wait(list(self._running), timeout=self.shutdown_grace_s)
            if overdue and self.on_overdue is not None:
                log.warning("stopping: cancelling jobs still running", extra={"count": len(overdue)})
                self.on_overdue()
        self._pool.shutdown(wait=True)
        self._pool = ThreadPoolExecutor(max_workers=self._pool._max_workers, thread_name_prefix="job")

    def teardown(self) -> None:
        self.drain()
        super().teardown()


def next_scheduled_in(queue: Queue) -> float | None:
    """Seconds until the queue's next delayed job is due (0 if overdue), or None when none is scheduled."""
    registry = ScheduledJobRegistry(queue=queue)
    ids = registry.get_job_ids(0, 0)
    if not ids:
        return None
    when = registry.get_scheduled_time(ids[0])
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def warm_up(rt: jobs.Runtime) -> None:
    """Load the embedding model and open the knowledge store before the first guest waits for them."""

    try:
        rt.run(rt.context().warm_up())
    except Exception as exc:  # the worker still serves the integrations without knowledge
        log.warning("knowledge not loaded at start", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})


def run_worker(
    settings: Settings, *, burst: bool = False, metrics_port: int | None = None, runtime: jobs.Runtime | None = None
) -> None:
    """Process jobs until stopped (or, with burst, until the queue is empty).

    `runtime` lets a caller (the demo, tests) hand over a prepared runtime; it is closed at the end."""
    rt = runtime or jobs.Runtime(settings)
    jobs.install_runtime(rt)
    sweeper = Sweeper(settings)
    try:
        sweeper.run_once()  # pick up anything left while no worker ran
        if not burst:
            warm_up(rt)
            sweeper.start()
            if metrics_port:
                start_http_server(metrics_port)
        conn = redis.Redis.from_url(settings.redis_url)
        queue = jobs.make_queue(settings, conn)
        worker = ConcurrentWorker(
            [queue],
            connection=conn,
            concurrency=settings.worker_concurrency,
            shutdown_grace_s=settings.worker_shutdown_grace_s,
            on_overdue=rt.cancel_all,
            maintenance_interval=MAINTENANCE_INTERVAL_S,
        )
        overdue_since: float | None = None
        while True:
            worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
            # In burst mode, jobs that finished last may have queued follow-ups (a retry, the rest of a burst,
            # a job deferred a moment because its conversation was busy).
            if not burst or worker._stop_requested:
                break
            if queue.count == 0:
                soon = next_scheduled_in(queue)
                if soon is None or soon > BURST_WAITS_FOR_S:
                    break  # nothing due soon
                if soon == 0:  # due but not moved yet (RQ's lock was busy, or a slow machine): try again shortly
                    overdue_since = overdue_since or time.monotonic()
                    if time.monotonic() - overdue_since > BURST_WAITS_FOR_S:
                        break  # overdue for long: another scheduler holds RQ's lock and will move it
                    soon = 0.1
                else:
                    overdue_since = None
                time.sleep(soon)
    finally:
        sweeper.stopping.set()
        rt.close()
        jobs.install_runtime(None)
