"""Workers: events are processed once, failures retry then wait for a replay, the sweeper loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from bot.context import JobContext
from bot.core.ledger import StoredEvent
from bot.service import jobs, registry
from bot.service.app import create_app
from bot.service.cli import main as cli
from bot.service.worker import Sweeper, run_worker
from tests.conftest import load_fixture, make_settings
from tests.webhooks import chatwoot_request

SECRET = "bot-secret-for-tests"
CALLS: list[int] = []


@pytest.fixture
def settings(clean_db: str, queue_name: str) -> Any:
    return make_settings(clean_db, queue_name)


@pytest.fixture
def counting_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Replace the message_created handler with one that counts calls and can be told to fail."""
    control: dict[str, Any] = {"fail": False}
    CALLS.clear()

    async def handler(ctx: JobContext, event: StoredEvent) -> str:
        CALLS.append(event.id)
        if control["fail"]:
            raise RuntimeError("upstream exploded")
        return "done"

    table = dict(registry.handlers()["chatwoot"], message_created=handler)
    monkeypatch.setitem(registry.handlers(), "chatwoot", table)
    yield control


def deliver(settings: Any, payload: dict[str, Any]) -> int:
    body, headers = chatwoot_request(payload, SECRET)
    with TestClient(create_app(settings)) as c:
        resp = c.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return int(resp.json().get("id", 0))


def event_row(dsn: str, event_id: int) -> tuple[Any, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT status, attempts, last_error IS NOT NULL, next_attempt_at IS NOT NULL"
            " FROM operational_events WHERE id = %s",
            (event_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_delivery_is_processed_by_the_worker(settings: Any, counting_handler: dict[str, Any]) -> None:
    event_id = deliver(settings, load_fixture("chatwoot/message_created.incoming_audio_webwidget.json"))
    run_worker(settings, burst=True)
    assert [event_id] == CALLS
    assert event_row(settings.database_dsn, event_id) == ("done", 1, False, False)


def test_duplicate_delivery_is_processed_once(settings: Any, counting_handler: dict[str, Any]) -> None:
    payload = load_fixture("chatwoot/message_created.incoming_audio_webwidget.json")
    event_id = deliver(settings, payload)
    deliver(settings, payload)
    jobs.enqueue(jobs.make_queue(settings), event_id)  # a stray second job for the same event
    run_worker(settings, burst=True)
    assert [event_id] == CALLS


def test_failing_job_retries_then_gives_up_and_can_be_replayed(
    settings: Any,
    counting_handler: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting_handler["fail"] = True
    event_id = deliver(settings, load_fixture("chatwoot/message_created.incoming_audio_webwidget.json"))
    run_worker(settings, burst=True)
    assert [event_id] * settings.job_max_attempts == CALLS  # backoff 0 in tests: retries run at once
    assert event_row(settings.database_dsn, event_id) == ("failed", 3, True, False)
    with psycopg.connect(settings.database_dsn) as conn:
        outcomes = [
            r[0] for r in conn.execute("SELECT outcome FROM job_attempts WHERE event_id = %s ORDER BY id", (event_id,))
        ]
    assert outcomes == ["failed", "failed", "failed"]

    for key, value in {
        "DATABASE_URL": settings.database_dsn,
        "QUEUE_NAME": settings.queue_name,
        "SPEECH_BACKEND": "local",
    }.items():
        monkeypatch.setenv(key, value)
    assert cli(["events", "list", "--failed"]) == 0
    listing = capsys.readouterr().out
    assert "gave up: RuntimeError: upstream exploded" in listing and str(event_id) in listing

    counting_handler["fail"] = False
    assert cli(["events", "replay", str(event_id)]) == 0
    run_worker(settings, burst=True)
    assert event_row(settings.database_dsn, event_id) == ("done", 1, False, False)


def test_failed_attempt_schedules_a_retry_with_backoff(
    clean_db: str, queue_name: str, counting_handler: dict[str, Any]
) -> None:
    settings = make_settings(clean_db, queue_name, JOB_BACKOFF_BASE_S="30")
    counting_handler["fail"] = True
    event_id = deliver(settings, load_fixture("chatwoot/message_created.incoming_audio_webwidget.json"))
    run_worker(settings, burst=True)
    assert [event_id] == CALLS  # the retry waits 30 s in RQ's scheduled registry
    assert event_row(clean_db, event_id) == ("failed", 1, True, True)
    from rq.registry import ScheduledJobRegistry

    assert ScheduledJobRegistry(queue=jobs.make_queue(settings)).count == 1


def test_event_stored_while_redis_was_down_is_swept_and_processed(
    clean_db: str, queue_name: str, counting_handler: dict[str, Any]
) -> None:
    down = make_settings(clean_db, queue_name, REDIS_URL="redis://127.0.0.1:1/0")
    event_id = deliver(down, load_fixture("chatwoot/message_created.incoming_audio_webwidget.json"))
    assert event_row(clean_db, event_id)[0] == "received"
    up = make_settings(clean_db, queue_name)
    assert Sweeper(up).run_once() == [event_id]
    assert Sweeper(up).run_once() == []  # queued once, not again on the next round
    run_worker(up, burst=True)
    assert [event_id] == CALLS
    assert event_row(clean_db, event_id)[0] == "done"


def test_processing_row_of_a_dead_worker_is_swept(settings: Any, counting_handler: dict[str, Any]) -> None:
    event_id = deliver(settings, load_fixture("chatwoot/message_created.incoming_audio_webwidget.json"))
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE operational_events SET status = 'processing', locked_until = now() - interval '1 s' WHERE id = %s",
            (event_id,),
        )
    jobs.make_queue(settings).empty()
    assert Sweeper(settings).run_once() == [event_id]
    run_worker(settings, burst=True)
    assert event_row(settings.database_dsn, event_id)[0] == "done"
