"""`sidecar worker`: RQ's SimpleWorker with the scheduler, plus a sweeper thread.

SimpleWorker runs jobs in this process instead of forking a work horse per job, so the embedding model,
the Qdrant store and the HTTP connection pools stay warm between jobs (a fork per job would reload the
model or share broken sockets). Run several worker replicas for parallelism; jobs touching the same
conversation or call are serialised by an advisory lock, not by the number of workers.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import redis
from prometheus_client import start_http_server
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty

from bot.service import jobs, periodic
from config.settings import Settings

log = logging.getLogger("sidecar.worker")
PUBSUB_POLL_S = 1.0


class Sweeper(threading.Thread):
    """Every sweep_interval_s, queue events that were stored but have no job (Redis was down, a job
    was lost, a worker died, a retry was never scheduled)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.settings = settings
        self.stopping = threading.Event()

    def run_once(self) -> list[int]:
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
            except (psycopg.Error, redis.RedisError) as exc:
                log.warning("sweep failed", extra={"error": str(exc)[:200]})

    def queue_periodic(self, func: str) -> None:
        """Queue a periodic job once across replicas: a Redis key marks it taken for this round."""
        conn = redis.Redis.from_url(self.settings.redis_url)
        marker = f"{self.settings.queue_name}:periodic:{func}"
        if conn.set(marker, "1", nx=True, ex=int(periodic.STAY_STAGES_EVERY_S) - 60):
            jobs.make_queue(self.settings, conn).enqueue(func, job_timeout=jobs.JOB_TIMEOUT_S)


class ConcurrentWorker(SimpleWorker):
    """A SimpleWorker that runs up to `concurrency` jobs at once in threads of this process.

    Jobs mostly wait on Chatwoot, Groq and Azure; running them side by side in one process keeps one warm
    copy of the model and the embedded store (which a single process must own) while many conversations
    are answered at once. Job timeouts use a timer instead of SIGALRM, which only works in the main thread.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, concurrency: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")

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

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._slots.acquire()  # wait for a free slot before taking the job on
        execution = self.prepare_execution(job)

        def run() -> None:
            try:
                self.perform_job(job, queue, execution)
            finally:
                self._slots.release()

        self._pool.submit(run)

    def drain(self) -> None:
        """Wait for the jobs still running."""
        self._pool.shutdown(wait=True)
        self._pool = ThreadPoolExecutor(max_workers=self._pool._max_workers, thread_name_prefix="job")

    def teardown(self) -> None:
        self.drain()
        super().teardown()


def warm_up(rt: jobs.Runtime) -> None:
    """Load the embedding model and open the knowledge store before the first guest waits for them."""

    try:
        rt.run(rt.context().warm_up())
    except Exception as exc:  # the worker still serves the integrations without knowledge
        log.warning("knowledge not loaded at start", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})


def run_worker(settings: Settings, *, burst: bool = False, metrics_port: int | None = None,
               runtime: jobs.Runtime | None = None) -> None:
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
        worker = ConcurrentWorker([queue], connection=conn, concurrency=settings.worker_concurrency)
        while True:
            worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
            # In burst mode, jobs that finished last may have queued follow-ups (a retry, the rest of a burst).
            if not burst or queue.count == 0:
                break
    finally:
        sweeper.stopping.set()
        rt.close()
        jobs.install_runtime(None)
