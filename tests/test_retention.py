"""PAYLOAD_RETENTION_DAYS: finished events older than that keep their row but lose their payload."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from bot.core import ledger
from bot.core.ledger import Delivery
from bot.service.cli import main as cli
from bot.service.intake import redact_once

PAYLOAD = {"event": "message_created", "id": 1, "content": "my door code is 4321", "sender": {"name": "Ana"}}


def store(conn: psycopg.Connection[Any], key: str, status: str, age_days: int) -> int:
    event_id = ledger.insert(conn, Delivery("chatwoot", "message_created", key, "conversation:57", PAYLOAD), known=True)
    assert event_id is not None
    conn.execute(
        "UPDATE operational_events SET status = %s, received_at = now() - make_interval(days => %s) WHERE id = %s",
        (status, age_days, event_id),
    )
    return event_id


def payloads(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, dict[str, Any], bool]]:
    rows = conn.execute("SELECT dedupe_key, status, payload, redacted_at IS NOT NULL FROM operational_events")
    return {key: (status, payload, redacted) for key, status, payload, redacted in rows}


def test_old_finished_payloads_become_a_stub_and_the_rest_stay(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        store(conn, "old-done", "done", 91)
        store(conn, "old-ignored", "ignored", 200)
        store(conn, "old-failed", "failed", 91)  # a replay needs it
        store(conn, "old-received", "received", 91)  # not run yet
        store(conn, "recent-done", "done", 89)
        assert ledger.redact_payloads(conn, 90) == 2
        rows = payloads(conn)
    stub = {"redacted": True, "event": "message_created", "source": "chatwoot"}
    assert rows == {
        "old-done": ("done", stub, True),
        "old-ignored": ("ignored", stub, True),
        "old-failed": ("failed", PAYLOAD, False),
        "old-received": ("received", PAYLOAD, False),
        "recent-done": ("done", PAYLOAD, False),
    }


def test_a_redacted_event_still_dedupes_a_late_retry(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        store(conn, "chatwoot:message_created:1", "done", 120)
        ledger.redact_payloads(conn, 90)
        again = Delivery("chatwoot", "message_created", "chatwoot:message_created:1", "conversation:57", PAYLOAD)
        assert ledger.insert(conn, again, known=True) is None


def test_redaction_works_in_batches_and_a_second_run_finds_nothing(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        for n in range(5):
            store(conn, f"k{n}", "done", 100)
        assert ledger.redact_payloads(conn, 90, batch=2) == 5
        assert ledger.redact_payloads(conn, 90, batch=2) == 0


def test_zero_days_turns_retention_off(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        store(conn, "old-done", "done", 4000)
        assert ledger.redact_payloads(conn, 0) == 0
        assert payloads(conn)["old-done"][2] is False


def test_the_periodic_run_redacts_once_across_replicas(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        store(conn, "old-done", "done", 91)
        conn.execute("SELECT pg_advisory_lock(727003)")  # another replica is at it
        assert redact_once(clean_db, 90) == 0
        conn.execute("SELECT pg_advisory_unlock(727003)")
    assert redact_once(clean_db, 90) == 1


def test_cli_redacts_with_the_setting_or_days_given(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("SPEECH_BACKEND", "local")
    monkeypatch.setenv("PAYLOAD_RETENTION_DAYS", "90")
    with psycopg.connect(clean_db, autocommit=True) as conn:
        store(conn, "a", "done", 91)
        store(conn, "b", "done", 31)
    assert cli(["events", "redact"]) == 0
    assert capsys.readouterr().out == "redacted the payloads of 1 finished event(s) older than 90 days\n"
    assert cli(["events", "redact", "--days", "30"]) == 0
    assert capsys.readouterr().out == "redacted the payloads of 1 finished event(s) older than 30 days\n"
    monkeypatch.setenv("PAYLOAD_RETENTION_DAYS", "0")
    assert cli(["events", "redact"]) == 0
    assert capsys.readouterr().out == "payload retention is off (PAYLOAD_RETENTION_DAYS=0): nothing redacted\n"


def test_a_redacted_event_is_never_replayed(
    clean_db: str, queue_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("QUEUE_NAME", queue_name)
    monkeypatch.setenv("SPEECH_BACKEND", "local")
    with psycopg.connect(clean_db, autocommit=True) as conn:
        old = store(conn, "old-done", "done", 120)
        recent = store(conn, "recent-done", "done", 1)
        ledger.redact_payloads(conn, 90)
        assert ledger.prepare_replay(conn, event_id=old) == []
        assert cli(["events", "replay", str(old)]) == 1
        assert capsys.readouterr().err == (
            f"sidecar: event {old} cannot be replayed: its payload was redacted (PAYLOAD_RETENTION_DAYS): "
            "nothing is left to process\n"
        )
        assert payloads(conn)["old-done"][0] == "done"
        assert cli(["events", "replay", str(recent)]) == 0
        assert capsys.readouterr().out == f"queued 1 event(s) again: {recent}\n"
