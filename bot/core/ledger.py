"""The event ledger: every inbound webhook as a row of operational_events, and its life cycle.

Status moves received -> processing -> done, or -> failed (retried at next_attempt_at, or given up when
next_attempt_at is NULL). Unknown event types are stored as ignored. The SQL lives here so the web
intake, the job runner, the sweeper and the CLI all agree on what each status means.

A claim holds a short lease (`locked_until`) that the running worker renews while the job runs
(`renew`); a worker that dies stops renewing, so its claims are visible as expired within seconds. A claim
found expired is a crash: it is not counted as an attempt but in `crashes`, and after `max_crashes` of
them the event is failed ("crashed N times") instead of being run again. Attempts count only runs that
ended in a real failure or success: deferring, a busy subject and a shutdown give the attempt back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

STATUSES = ("received", "processing", "done", "failed", "ignored")
LEASE_SECONDS = 15.0  # a claim not renewed for this long belongs to a dead worker (renewed every third of it)
# A queued event not started after this long is queued again: a worker killed between taking a job from
# Redis and claiming its event leaves nothing else to find it by. A second job for an event that was only
# slow to start is harmless (its claim finds the event taken and skips).
REQUEUE_AFTER_SECONDS = 30


@dataclass(frozen=True)
class StoredEvent:
    """A row of operational_events, as handlers see it."""

    id: int
    source: str
    event_type: str
    dedupe_key: str
    subject: str | None
    payload: dict[str, Any]
    received_at: datetime
    attempts: int


@dataclass(frozen=True)
class Delivery:
    """A verified webhook, ready to be stored."""

    source: str
    event_type: str
    dedupe_key: str
    subject: str | None
    payload: dict[str, Any]


INSERT_SQL = """
INSERT INTO operational_events (source, event_type, dedupe_key, subject, payload, status, enqueued_at)
VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s = 'received' THEN now() END)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


async def insert_async(conn: psycopg.AsyncConnection[Any], delivery: Delivery, *, known: bool) -> int | None:
    """Store a delivery; return its id, or None when the dedupe key was seen before."""
    status = "received" if known else "ignored"
    cur = await conn.execute(
        INSERT_SQL,
        (
            delivery.source,
            delivery.event_type,
            delivery.dedupe_key,
            delivery.subject,
            Jsonb(delivery.payload),
            status,
            status,
        ),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else None


def insert(conn: psycopg.Connection[Any], delivery: Delivery, *, known: bool) -> int | None:
    """Synchronous twin of insert_async, for jobs that record internal events."""
    status = "received" if known else "ignored"
    row = conn.execute(
        INSERT_SQL,
        (
            delivery.source,
            delivery.event_type,
            delivery.dedupe_key,
            delivery.subject,
            Jsonb(delivery.payload),
            status,
            status,
        ),
    ).fetchone()
    return int(row[0]) if row else None


async def mark_not_enqueued(conn: psycopg.AsyncConnection[Any], event_id: int) -> None:
    """Redis refused the job: leave the row for the sweeper."""
    await conn.execute("UPDATE operational_events SET enqueued_at = NULL WHERE id = %s", (event_id,))


@dataclass(frozen=True)
class Claim:
    """An event taken for processing: the row, its job_attempts row, and the earlier events of its subject
    that are due and waiting to run (not deferred), to be processed first."""

    event: StoredEvent
    attempt_id: int
    older_ids: list[int]


# One round trip takes the subject's lock, claims the event (or gives it up after its last crash) and opens
# the attempt: the reply path waits for each statement a job makes before the handler runs. The CTE that
# takes the lock is evaluated once, before the UPDATE reads it, and the UPDATE changes nothing unless the
# lock is ours. Taking over an expired claim counts a crash, not an attempt; the claim that would be crash
# number `max_crashes` fails the event instead ("crashed N times").
CLAIM_SQL = """
WITH ev AS (
    SELECT subject,
           CASE WHEN NOT %(lock)s OR subject IS NULL THEN true
                ELSE pg_try_advisory_lock(hashtext(subject)) END AS locked
      FROM operational_events WHERE id = %(id)s
), taken AS (
    UPDATE operational_events
       SET status = CASE WHEN status = 'processing' AND crashes + 1 >= %(max_crashes)s THEN 'failed'
                         ELSE 'processing' END,
           attempts = attempts + CASE WHEN status = 'processing' THEN 0 ELSE 1 END,
           crashes = crashes + CASE WHEN status = 'processing' THEN 1 ELSE 0 END,
           locked_until = CASE WHEN status = 'processing' AND crashes + 1 >= %(max_crashes)s THEN NULL
                               ELSE now() + make_interval(secs => %(lease_s)s) END,
           next_attempt_at = CASE WHEN status = 'processing' AND crashes + 1 >= %(max_crashes)s THEN NULL
                                  ELSE next_attempt_at END,
           last_error = CASE WHEN status = 'processing' AND crashes + 1 >= %(max_crashes)s
                             THEN format('crashed %%s times: the worker died while processing it', crashes + 1)
                             ELSE last_error END
     WHERE id = %(id)s
       AND (SELECT locked FROM ev)
       AND (status = 'received'
            OR (status = 'failed' AND next_attempt_at <= now() + interval '1 second')
            OR (status = 'processing' AND locked_until < now()))
    RETURNING id, source, event_type, dedupe_key, subject, payload, received_at, attempts, status,
              ARRAY(SELECT o.id FROM operational_events o
                     WHERE o.subject = operational_events.subject AND o.id < operational_events.id
                       AND o.status = 'received' AND (o.enqueued_at IS NULL OR o.enqueued_at <= now())
                     ORDER BY o.id) AS older
), attempt AS (
    INSERT INTO job_attempts (event_id, attempt)
    SELECT id, attempts FROM taken WHERE status = 'processing'
    RETURNING id
)
SELECT ev.subject, ev.locked, taken.*, (SELECT id FROM attempt)
  FROM ev LEFT JOIN taken ON true
"""


def lock_and_claim(
    conn: psycopg.Connection[Any], event_id: int, *, max_crashes: int = 3, lease_s: float = LEASE_SECONDS
) -> tuple[str | None, bool, Claim | None]:
    """(subject, locked, claim): take the subject's session lock (release it with `unlock`) and, when it
    was free, claim the event. The claim is None when the event is done, ignored, given up, held by a live
    worker, or crashed once too often (it is failed here). An event with no subject needs no lock; one that
    does not exist gives (None, True, None)."""
    return _claim(conn, event_id, lock=True, max_crashes=max_crashes, lease_s=lease_s)


def claim(
    conn: psycopg.Connection[Any], event_id: int, *, max_crashes: int = 3, lease_s: float = LEASE_SECONDS
) -> Claim | None:
    """Claim an event whose subject's lock the caller already holds (see `lock_and_claim`)."""
    return _claim(conn, event_id, lock=False, max_crashes=max_crashes, lease_s=lease_s)[2]


def _claim(
    conn: psycopg.Connection[Any], event_id: int, *, lock: bool, max_crashes: int, lease_s: float
) -> tuple[str | None, bool, Claim | None]:
    row = conn.execute(
        CLAIM_SQL, {"id": event_id, "lock": lock, "max_crashes": max_crashes, "lease_s": lease_s}
    ).fetchone()
    if row is None:
        return None, True, None
    subject, locked, taken, attempt_id = row[0], bool(row[1]), row[2:12], row[12]
    if taken[0] is None or taken[8] != "processing":
        return subject, locked, None
    return subject, locked, Claim(StoredEvent(*taken[:8]), int(attempt_id), [int(i) for i in taken[9]])


def unlock(conn: psycopg.Connection[Any], subject: str | None) -> None:
    """Release a subject's lock taken by `lock_and_claim`."""
    if subject and not conn.broken:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (subject,))


def give_up_crashed(conn: psycopg.Connection[Any], max_crashes: int) -> list[int]:
    """Fail the expired claims whose next run would be crash number `max_crashes` (the sweeper's pass; a
    claim does the same for its one event)."""
    rows = conn.execute(
        """
        UPDATE operational_events
           SET status = 'failed', crashes = crashes + 1, locked_until = NULL, next_attempt_at = NULL,
               last_error = format('crashed %%s times: the worker died while processing it', crashes + 1)
         WHERE status = 'processing' AND locked_until < now() AND crashes + 1 >= %s
        RETURNING id
        """,
        (max_crashes,),
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def renew(conn: psycopg.Connection[Any], event_ids: list[int], *, lease_s: float = LEASE_SECONDS) -> None:
    """Extend the lease of events this worker is still processing."""
    conn.execute(
        "UPDATE operational_events SET locked_until = now() + make_interval(secs => %s)"
        " WHERE id = ANY(%s) AND status = 'processing'",
        (lease_s, event_ids),
    )


def finish(conn: psycopg.Connection[Any], event_id: int, status: str) -> None:
    """Record success (done, or ignored when the handler decided the event needs nothing)."""
    conn.execute(
        """
        UPDATE operational_events
           SET status = %s, processed_at = now(), last_error = NULL, next_attempt_at = NULL, locked_until = NULL
         WHERE id = %s
        """,
        (status, event_id),
    )


def defer(conn: psycopg.Connection[Any], event_id: int, seconds: float) -> None:
    """Put an event back to received without counting the attempt (to wait out a burst, a reply still
    settling, or a worker shutting down)."""
    conn.execute(
        """
        UPDATE operational_events
           SET status = 'received', attempts = greatest(attempts - 1, 0), locked_until = NULL,
               enqueued_at = now() + make_interval(secs => %s)
         WHERE id = %s
        """,
        (seconds, event_id),
    )


def fail(conn: psycopg.Connection[Any], event_id: int, error: str, retry_in: float | None) -> None:
    """Record a failure; retry_in None means the event gave up and waits for a replay."""
    conn.execute(
        """
        UPDATE operational_events
           SET status = 'failed', last_error = %s, locked_until = NULL,
               next_attempt_at = CASE WHEN %s::float8 IS NULL THEN NULL
                                      ELSE now() + make_interval(secs => %s::float8) END,
               enqueued_at = CASE WHEN %s::float8 IS NULL THEN enqueued_at
                                  ELSE now() + make_interval(secs => %s::float8) END
         WHERE id = %s
        """,
        (error[:2000], retry_in, retry_in, retry_in, retry_in, event_id),
    )


def end_attempt(conn: psycopg.Connection[Any], attempt_id: int, outcome: str, error: str | None = None) -> None:
    conn.execute(
        "UPDATE job_attempts SET finished_at = now(), outcome = %s, error = %s WHERE id = %s",
        (outcome, error[:2000] if error else None, attempt_id),
    )


def sweep_candidates(conn: psycopg.Connection[Any], *, grace_s: float, limit: int = 500) -> tuple[list[int], list[int]]:
    """Events that may have no job: (ids to check against the queue, ids that need one for sure).

    To check: received and due for longer than the grace period (stored while Redis was down, or queued
    by a web process that died before the job reached Redis), or failed with a retry time that passed. The
    caller asks Redis whether their job exists. Needing one for sure: processing under an expired lease (the
    worker died)."""
    rows = conn.execute(
        """
        SELECT id, status FROM operational_events
         WHERE (status = 'received' AND coalesce(enqueued_at, received_at) < now() - make_interval(secs => %(grace)s))
            OR (status = 'failed' AND next_attempt_at IS NOT NULL
                AND next_attempt_at < now() - make_interval(secs => %(grace)s))
            OR (status = 'processing' AND locked_until < now())
         ORDER BY id
         LIMIT %(limit)s
        """,
        {"grace": grace_s, "limit": limit},
    ).fetchall()
    check = [int(i) for i, status in rows if status != "processing"]
    expired = [int(i) for i, status in rows if status == "processing"]
    return check, expired


def mark_queued(conn: psycopg.Connection[Any], event_ids: list[int]) -> None:
    """The sweeper is queuing these now."""
    conn.execute("UPDATE operational_events SET enqueued_at = now() WHERE id = ANY(%s)", (event_ids,))


def unqueue(conn: psycopg.Connection[Any], event_ids: list[int]) -> None:
    """Queuing failed after mark_queued: leave them for the next sweep."""
    conn.execute("UPDATE operational_events SET enqueued_at = NULL WHERE id = ANY(%s)", (event_ids,))


def prepare_replay(
    conn: psycopg.Connection[Any], *, event_id: int | None = None, all_failed: bool = False
) -> list[int]:
    """Reset given-up (or any failed) events to received with a fresh budget of attempts and crashes; return
    their ids. An event whose payload was redacted (PAYLOAD_RETENTION_DAYS) is never replayed: only a stub
    is left of it, which no handler can act on."""
    params: tuple[int, ...] = ()
    if event_id is not None:
        where, params = "id = %s AND status IN ('failed', 'done', 'ignored') AND redacted_at IS NULL", (event_id,)
    elif all_failed:
        where = "status = 'failed' AND redacted_at IS NULL"
    else:
        return []
    rows = conn.execute(
        f"""
        UPDATE operational_events
           SET status = 'received', attempts = 0, crashes = 0, next_attempt_at = NULL, locked_until = NULL,
               enqueued_at = now()
         WHERE {where}
        RETURNING id
        """,
        params,
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def list_events(
    conn: psycopg.Connection[Any], *, status: str | None = None, source: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Recent events for the operator, newest first (no payloads: they can hold personal data)."""
    clauses, params = [], []
    if status:
        clauses.append("status = %s")
        params.append(status)
    if source:
        clauses.append("source = %s")
        params.append(source)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            SELECT id, source, event_type, subject, status, attempts, received_at, processed_at,
                   next_attempt_at, last_error
              FROM operational_events {where}
             ORDER BY id DESC LIMIT %s
            """,
            (*params, limit),
        )
        return list(cur.fetchall())


INSERT_SPOOLED_SQL = """
INSERT INTO operational_events (source, event_type, dedupe_key, subject, payload, status, received_at, enqueued_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s AND %s = 'received' THEN now() END)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


def insert_spooled(
    conn: psycopg.Connection[Any], delivery: Delivery, *, known: bool, received_at: datetime, queued: bool
) -> int | None:
    """Store a delivery drained from the spool, with the time it really arrived; None when seen before.

    `queued` says the caller queues its job now; otherwise enqueued_at stays NULL and the sweeper queues it.
    """
    status = "received" if known else "ignored"
    row = conn.execute(
        INSERT_SPOOLED_SQL,
        (
            delivery.source,
            delivery.event_type,
            delivery.dedupe_key,
            delivery.subject,
            Jsonb(delivery.payload),
            status,
            received_at,
            queued,
            status,
        ),
    ).fetchone()
    return int(row[0]) if row else None


REDACT_SQL = """
WITH batch AS (
    SELECT id FROM operational_events
     WHERE redacted_at IS NULL AND status IN ('done', 'ignored')
       AND received_at < now() - make_interval(days => %(days)s)
     ORDER BY received_at
     LIMIT %(batch)s
     FOR UPDATE SKIP LOCKED)
UPDATE operational_events AS e
   SET payload = jsonb_build_object('redacted', true, 'event', e.event_type, 'source', e.source),
       redacted_at = now()
  FROM batch
 WHERE e.id = batch.id
"""


def redact_payloads(conn: psycopg.Connection[Any], older_than_days: int, *, batch: int = 1000) -> int:
    """Replace the payloads of finished (done or ignored) events older than `older_than_days` with a stub.

    The row stays, with its dedupe key (so a late retry is still a duplicate), status, attempts and times;
    what the guest wrote goes. Failed and unfinished events keep their payload: a replay needs it. Works in
    batches of `batch` rows, each its own statement, so it never holds many row locks for long. 0 days: off.
    """
    if older_than_days <= 0:
        return 0
    total = 0
    while True:
        cur = conn.execute(REDACT_SQL, {"days": older_than_days, "batch": batch})
        total += cur.rowcount
        if cur.rowcount < batch:
            return total
