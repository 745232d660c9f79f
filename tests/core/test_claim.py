"""The claim: one statement takes the subject's lock, claims the event and opens its attempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bot.core import ledger
from bot.core.ledger import Delivery


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(clean_db, autocommit=True) as c:
        yield c


def store(conn: psycopg.Connection[Any], message_id: int, subject: str | None = "conversation:7") -> int:
    delivery = Delivery("chatwoot", "message_created", f"chatwoot:message_created:{message_id}", subject, {})
    event_id = ledger.insert(conn, delivery, known=True)
    assert event_id is not None
    return event_id


def state(conn: psycopg.Connection[Any], event_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status, attempts, crashes, last_error, locked_until IS NOT NULL FROM operational_events WHERE id = %s",
        (event_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def attempts(conn: psycopg.Connection[Any], event_id: int) -> list[tuple[int, int]]:
    rows = conn.execute("SELECT id, attempt FROM job_attempts WHERE event_id = %s ORDER BY id", (event_id,))
    return [(int(r[0]), int(r[1])) for r in rows]


def holds_lock(conn: psycopg.Connection[Any], subject: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        " AND objid = hashtext(%s)::oid",
        (subject,),
    ).fetchone()
    return bool(row and row[0])


def test_a_free_subject_is_locked_claimed_and_its_attempt_opened_with_the_older_events(
    conn: psycopg.Connection[Any],
) -> None:
    older, event_id = store(conn, 1), store(conn, 2)
    subject, locked, claimed = ledger.lock_and_claim(conn, event_id)
    assert (subject, locked) == ("conversation:7", True)
    assert claimed is not None
    assert claimed.event.id == event_id and claimed.event.attempts == 1
    assert claimed.older_ids == [older]
    assert attempts(conn, event_id) == [(claimed.attempt_id, 1)]
    assert state(conn, event_id) == ("processing", 1, 0, None, True)
    assert holds_lock(conn, "conversation:7")
    ledger.unlock(conn, subject)
    assert not holds_lock(conn, "conversation:7")


def test_a_busy_subject_leaves_the_event_untouched(conn: psycopg.Connection[Any], clean_db: str) -> None:
    event_id = store(conn, 1)
    with psycopg.connect(clean_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('conversation:7'))")
        assert ledger.lock_and_claim(conn, event_id) == ("conversation:7", False, None)
    assert state(conn, event_id) == ("received", 0, 0, None, False)
    assert attempts(conn, event_id) == []


def test_an_event_without_a_subject_needs_no_lock_and_a_missing_one_gives_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    event_id = store(conn, 1, subject=None)
    subject, locked, claimed = ledger.lock_and_claim(conn, event_id)
    assert (subject, locked) == (None, True) and claimed is not None
    assert ledger.lock_and_claim(conn, 999_999) == (None, True, None)


def test_a_claimed_or_finished_event_is_not_claimed_again(conn: psycopg.Connection[Any]) -> None:
    event_id = store(conn, 1)
    assert ledger.claim(conn, event_id) is not None
    assert ledger.claim(conn, event_id) is None  # a live worker holds it
    ledger.finish(conn, event_id, "done")
    assert ledger.claim(conn, event_id) is None
    assert len(attempts(conn, event_id)) == 1


def expire(conn: psycopg.Connection[Any], event_id: int, crashes: int) -> None:
    conn.execute(
        "UPDATE operational_events SET status = 'processing', attempts = 1, crashes = %s,"
        " locked_until = now() - interval '1 second' WHERE id = %s",
        (crashes, event_id),
    )


def test_taking_over_an_expired_claim_counts_a_crash_not_an_attempt(conn: psycopg.Connection[Any]) -> None:
    event_id = store(conn, 1)
    expire(conn, event_id, crashes=1)
    claimed = ledger.claim(conn, event_id, max_crashes=3)
    assert claimed is not None and claimed.event.attempts == 1
    assert state(conn, event_id) == ("processing", 1, 2, None, True)
    assert attempts(conn, event_id) == [(claimed.attempt_id, 1)]


def test_the_claim_that_would_be_the_last_crash_fails_the_event_instead(conn: psycopg.Connection[Any]) -> None:
    event_id = store(conn, 1)
    expire(conn, event_id, crashes=2)
    subject, locked, claimed = ledger.lock_and_claim(conn, event_id, max_crashes=3)
    assert (locked, claimed) == (True, None)
    assert state(conn, event_id) == (
        "failed",
        1,
        3,
        "crashed 3 times: the worker died while processing it",
        False,
    )
    assert attempts(conn, event_id) == []
    ledger.unlock(conn, subject)
