"""`sidecar worker`: RQ's SimpleWorker with the scheduler, plus a sweeper thread.

SimpleWorker runs jobs in this process instead of forking a work horse per job, so the embedding model,
the Qdrant store and the HTTP connection pools stay warm between jobs (a fork per job would reload the
model or share broken sockets). Run several worker replicas for parallelism; jobs touching the same
conversation or call are serialised by an advisory lock, not by the number of workers.
"""

from __future__ import annotations

import logging
import threading

import psycopg
import redis
from prometheus_client import start_http_server
from rq import SimpleWorker

from bot import jobs
from config.settings import Settings

log = logging.getLogger("sidecar.worker")


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
        while not self.stopping.wait(self.settings.sweep_interval_s):
            try:
                self.run_once()
            except (psycopg.Error, redis.RedisError) as exc:
                log.warning("sweep failed", extra={"error": str(exc)[:200]})


def run_worker(settings: Settings, *, burst: bool = False, metrics_port: int | None = None) -> None:
    """Process jobs until stopped (or, with burst, until the queue is empty)."""
    rt = jobs.Runtime(settings)
    jobs.install_runtime(rt)
    sweeper = Sweeper(settings)
    try:
        sweeper.run_once()  # pick up anything left while no worker ran
        if not burst:
            sweeper.start()
            if metrics_port:
                start_http_server(metrics_port)
        conn = redis.Redis.from_url(settings.redis_url)
        worker = SimpleWorker([jobs.make_queue(settings, conn)], connection=conn)
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
    finally:
        sweeper.stopping.set()
        rt.close()
        jobs.install_runtime(None)
