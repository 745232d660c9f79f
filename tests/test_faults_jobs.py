"""Faults in the job machinery: workers killed or stopped mid-job, handlers that hang, busy conversations,
web processes that die before queuing, and databases or Redis connections that go away.

Workers that must die are real `sidecar worker` processes (tests/fault_worker.py) on this test's own queue
and database; nothing here asserts on how long anything took, only on what state it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from bot.context import JobContext
from bot.core import ledger
from bot.core.ledger import Delivery, StoredEvent
from bot.service import jobs, registry
from bot.service.cli import main as cli
from bot.service.worker import Sweeper, run_worker
from tests.conftest import REDIS_URL, end_sessions, load_fixture, make_settings

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = "chatwoot/message_created.incoming_audio_webwidget.json"
WAIT_S = 60.0  # an upper bound for a state to appear on a loaded machine, never an expectation


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def settings(clean_db: str, queue_name: str) -> Any:
    return make_settings(clean_db, queue_name, JOB_LEASE_S="1")


@pytest.fixture
def done_handler(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """In this process, message_created just succeeds (and says which events it ran)."""
    ran: list[int] = []

    async def handler(ctx: JobContext, event: StoredEvent) -> str:
        ran.append(event.id)
        return "done"

    monkeypatch.setitem(registry.handlers(), "chatwoot", dict(registry.handlers()["chatwoot"], message_created=handler))
    return ran


def store(settings: Any, *, queue: bool = True) -> int:
    """A delivery as the web intake stores it; queued unless the web process 'died' right after the insert."""
    payload = load_fixture(PAYLOAD)
    delivery = Delivery("chatwoot", "message_created", f"test:{payload['id']}", "conversation:57", payload)
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        event_id = ledger.insert(conn, delivery, known=True)
    assert event_id is not None
    if queue:
        jobs.enqueue(jobs.make_queue(settings), event_id)
    return event_id


def row(settings: Any, event_id: int) -> tuple[Any, ...]:
    with psycopg.connect(settings.database_dsn) as conn:
        found = conn.execute(
            "SELECT status, attempts, crashes, last_error FROM operational_events WHERE id = %s", (event_id,)
        ).fetchone()
    assert found is not None
    return tuple(found)


def attempts(settings: Any, event_id: int) -> list[tuple[int, str | None]]:
    with psycopg.connect(settings.database_dsn) as conn:
        return [
            tuple(r)
            for r in conn.execute(  # type: ignore[misc]
                "SELECT attempt, outcome FROM job_attempts WHERE event_id = %s ORDER BY id", (event_id,)
            )
        ]


@pytest.fixture
def worker_process(settings: Any, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `sidecar worker` (tests/fault_worker.py) with a handler busy while the flag file exists."""
    started: list[subprocess.Popen[bytes]] = []
    flag = tmp_path / "busy"
    flag.touch()

    def start() -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_dsn,
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": settings.queue_name,
            "SPEECH_BACKEND": "local",
            "JOB_LEASE_S": "1",
            "JOB_BACKOFF_BASE_S": "0",
            "SWEEP_GRACE_S": "0",
            "WORKER_SHUTDOWN_GRACE_S": "1",
            "QDRANT_PATH": str(tmp_path / "qdrant"),
            "FAULT_BUSY_FLAG": str(flag),
        }
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_worker", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: RQ's scheduler runs in a child process that a kill -9
        )  # of the worker leaves behind; the teardown ends the whole group
        started.append(proc)
        return proc

    yield start
    flag.unlink(missing_ok=True)
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def running(settings: Any, event_id: int) -> bool:
    return attempts(settings, event_id) == [(1, None)] and row(settings, event_id)[0] == "processing"


def test_a_killed_workers_claim_is_swept_by_its_lease_and_counted_as_a_crash_not_an_attempt(
    settings: Any, worker_process: Any, tmp_path: Path, done_handler: list[int]
) -> None:
    event_id = store(settings)
    worker = worker_process()
    wait_for("the job to start", lambda: running(settings, event_id))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    (tmp_path / "busy").unlink()

    # Nobody renews the lease any more: the sweeper sees the claim expire and queues the event again.
    assert wait_for("the sweeper to take the claim back", lambda: Sweeper(settings).run_once()) == [event_id]
    run_worker(settings, burst=True)
    assert done_handler == [event_id]
    assert row(settings, event_id) == ("done", 1, 1, None)
    assert attempts(settings, event_id) == [(1, None), (1, "done")]  # the killed run never ended


def test_an_event_that_keeps_killing_its_worker_fails_and_is_listed(
    settings: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = store(settings, queue=False)
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:  # two crashed claims already
        conn.execute(
            "UPDATE operational_events SET status = 'processing', attempts = 1, crashes = 2,"
            " locked_until = now() - interval '1 second' WHERE id = %s",
            (event_id,),
        )
    assert Sweeper(settings).run_once() == []
    assert row(settings, event_id) == ("failed", 1, 3, "crashed 3 times: the worker died while processing it")
    for key, value in {
        "DATABASE_URL": settings.database_dsn,
        "QUEUE_NAME": settings.queue_name,
        "SPEECH_BACKEND": "local",
    }.items():
        monkeypatch.setenv(key, value)
    assert cli(["events", "list", "--failed"]) == 0
    assert "gave up: crashed 3 times" in capsys.readouterr().out
    assert cli(["events", "replay", str(event_id)]) == 0  # once the cause is fixed: a fresh budget
    assert row(settings, event_id)[:3] == ("received", 0, 0)


def test_sigterm_stops_the_worker_mid_job_and_the_event_goes_back_on_the_queue(
    settings: Any, worker_process: Any, tmp_path: Path, done_handler: list[int]
) -> None:
    event_id = store(settings)
    worker = worker_process()
    wait_for("the job to start", lambda: running(settings, event_id))
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=WAIT_S) == 0
    assert row(settings, event_id) == ("received", 0, 0, None)  # given back, not counted
    assert attempts(settings, event_id) == [(1, "requeued")]
    assert jobs.make_queue(settings).count == 1  # already queued for the next worker

    (tmp_path / "busy").unlink()
    run_worker(settings, burst=True)
    assert done_handler == [event_id]
    assert row(settings, event_id) == ("done", 1, 0, None)


def test_an_event_stored_by_a_web_process_that_died_before_queuing_is_swept_at_once(
    settings: Any, done_handler: list[int]
) -> None:
    orphan = store(settings, queue=False)  # the row says queued (enqueued_at is set) but Redis has no job
    queued = Delivery("chatwoot", "message_created", "test:queued", "conversation:58", load_fixture(PAYLOAD))
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        queued_id = ledger.insert(conn, queued, known=True)
    assert queued_id is not None
    jobs.enqueue(jobs.make_queue(settings), queued_id)
    assert Sweeper(settings).run_once() == [orphan]  # the queued one has its job
    assert Sweeper(settings).run_once() == []
    run_worker(settings, burst=True)
    assert sorted(done_handler) == [orphan, queued_id]


def test_a_busy_conversation_defers_the_job_at_once_without_counting_an_attempt(
    settings: Any, done_handler: list[int]
) -> None:
    event_id = store(settings, queue=False)
    rt = jobs.Runtime(settings)
    jobs.install_runtime(rt)
    try:
        with psycopg.connect(settings.database_dsn, autocommit=True) as other:  # another job has conversation 57
            other.execute("SELECT pg_advisory_lock(hashtext('conversation:57'))")
            assert jobs.run_event(event_id) == "busy"
            assert row(settings, event_id) == ("received", 0, 0, None)
            assert attempts(settings, event_id) == []
            other.execute("SELECT pg_advisory_unlock(hashtext('conversation:57'))")
        assert jobs.run_event(event_id) == "done"
    finally:
        rt.close()
        jobs.install_runtime(None)
    assert row(settings, event_id) == ("done", 1, 0, None)


def test_a_handler_running_over_the_job_timeout_is_cancelled_and_retried(
    clean_db: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(clean_db, queue_name, JOB_TIMEOUT_S="0.2")
    seen: list[str] = []

    async def hangs(ctx: JobContext, event: StoredEvent) -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "done"

    monkeypatch.setitem(registry.handlers(), "chatwoot", dict(registry.handlers()["chatwoot"], message_created=hangs))
    event_id = store(settings, queue=False)
    rt = jobs.Runtime(settings)
    jobs.install_runtime(rt)
    try:
        assert jobs.run_event(event_id) == "failed"
    finally:
        rt.close()
        jobs.install_runtime(None)
    assert seen == ["cancelled"]  # the work itself stopped, not just the wait for it
    assert row(settings, event_id) == ("failed", 1, 0, "timed out after 0.2s")


def test_a_lease_is_renewed_while_the_job_runs_and_let_go_once_it_ends(settings: Any) -> None:
    event_id = store(settings, queue=False)
    leases = jobs.Leases(settings)
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        assert ledger.claim(conn, event_id, lease_s=0.001) is not None
        leases.hold(event_id)
        assert leases.renew_once() == [event_id]
        still = conn.execute("SELECT locked_until > now() FROM operational_events WHERE id = %s", (event_id,))
        assert still.fetchone() == (True,)
        leases.release(event_id)
        assert leases.renew_once() == []


def test_a_job_thread_reconnects_after_its_database_connection_was_killed(
    settings: Any, done_handler: list[int]
) -> None:
    event_id = store(settings, queue=False)
    rt = jobs.Runtime(settings)
    jobs.install_runtime(rt)
    try:
        pid = rt.conn().info.backend_pid
        assert end_sessions(settings.database_dsn, "pid = %s", (pid,)) == [pid]  # as a Postgres restart does
        assert jobs.run_event(event_id) == "database unavailable"  # queued again, nothing lost
        assert jobs.run_event(event_id) == "done"
        assert rt.conn().info.backend_pid != pid
    finally:
        rt.close()
        jobs.install_runtime(None)


def test_the_job_context_pool_replaces_connections_killed_under_it(settings: Any) -> None:
    async def scenario() -> int:
        ctx = await JobContext.open(settings)
        try:
            async with ctx.db.connection() as conn:
                cur = await conn.execute("SELECT pg_backend_pid()")
                first = (await cur.fetchone() or (0,))[0]
            assert end_sessions(settings.database_dsn, "application_name = ''")
            async with ctx.db.connection() as conn:
                cur = await conn.execute("SELECT 1")
                assert await cur.fetchone() == (1,)
            return int(first)
        finally:
            await ctx.close()

    assert asyncio.run(scenario()) > 0


def test_queuing_survives_a_dropped_redis_connection(settings: Any) -> None:
    queue = jobs.make_queue(settings)
    queue.connection.ping()
    client_id = queue.connection.client_id()
    redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=client_id)
    jobs.enqueue(queue, 4242)
    assert queue.count == 1


def test_a_retry_stuck_behind_a_dead_workers_scheduler_lock_is_queued_by_the_sweeper(
    settings: Any, done_handler: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rq.scheduler import RQScheduler

    queue = jobs.make_queue(settings)
    # A worker died holding RQ's scheduler lock (it lives 61 s): no one moves delayed jobs meanwhile.
    queue.connection.set(RQScheduler.get_locking_key(queue.name), "dead-worker", ex=120)
    monkeypatch.setattr(jobs, "SCHEDULE_SLACK_S", 0)  # its mark lasts a second past the due time
    event_id = store(settings, queue=False)
    jobs.enqueue(queue, event_id, delay_s=0.01)  # a retry, waiting in RQ's scheduled registry
    wait_for("the retry's mark to lapse", lambda: not queue.connection.exists(jobs.queued_mark(queue, event_id)))
    assert Sweeper(settings).run_once() == [event_id]
    run_worker(settings, burst=True)
    assert done_handler == [event_id]
    assert row(settings, event_id)[:2] == ("done", 1)
