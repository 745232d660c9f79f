"""What the import remembers (one owner for import_checkpoints, import_records and import_errors):
where each file stands, which records were applied, and which ones broke a rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Checkpoint:
    source: str
    file_size: int
    file_digest: str
    position: int
    last_id: str | None
    finished: bool

    def holds_for(self, size: int, digest: str) -> bool:
        return self.file_size == size and self.file_digest == digest


@dataclass(frozen=True)
class Applied:
    """A record written (or found already there) in the target: goes into import_records."""

    kind: str
    fingerprint: str
    key: str
    position: int
    outcome: str  # inserted | updated | unchanged | older


@dataclass(frozen=True)
class Failure:
    """A record refused by a rule, a duplicate included: goes into import_errors."""

    position: int
    collection: str
    kind: str | None
    key: str | None
    rule: str
    reason: str
    record: dict[str, Any]


def load_checkpoint(conn: psycopg.Connection, source: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT source, file_size, file_digest, position, last_id, finished FROM import_checkpoints WHERE source = %s",
        (source,),
    ).fetchone()
    return Checkpoint(*row) if row else None


def save_checkpoint(conn: psycopg.Connection, cp: Checkpoint) -> None:
    conn.execute(
        """
        INSERT INTO import_checkpoints (source, file_size, file_digest, position, last_id, finished, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, now())
        ON CONFLICT (source) DO UPDATE SET file_size = EXCLUDED.file_size, file_digest = EXCLUDED.file_digest,
            position = EXCLUDED.position, last_id = EXCLUDED.last_id, finished = EXCLUDED.finished,
            updated_at = now()
        """,
        (cp.source, cp.file_size, cp.file_digest, cp.position, cp.last_id, cp.finished),
    )


def forget_checkpoint(conn: psycopg.Connection, source: str) -> None:
    conn.execute("DELETE FROM import_checkpoints WHERE source = %s", (source,))


def known(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int]]:
    """(kind, fingerprint) -> (source, position) of the records already applied, among `pairs`."""
    kinds, prints = zip(*pairs, strict=True) if pairs else ((), ())
    rows = conn.execute(
        "SELECT r.kind, r.fingerprint, r.source, r.position FROM import_records r"
        " JOIN unnest(%s::text[], %s::text[]) AS q(kind, fingerprint) USING (kind, fingerprint)",
        (list(kinds), list(prints)),
    ).fetchall()
    return {(k, f): (s, p) for k, f, s, p in rows}


def record_applied(conn: psycopg.Connection, source: str, applied: Sequence[Applied]) -> None:
    if not applied:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO import_records (kind, fingerprint, record_key, source, position, outcome)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (kind, fingerprint) DO NOTHING",
            [(a.kind, a.fingerprint, a.key, source, a.position, a.outcome) for a in applied],
        )


def record_failures(conn: psycopg.Connection, source: str, failures: Sequence[Failure]) -> int:
    """Store the failures not stored yet (a re-run finds its own); returns how many are new."""
    if not failures:
        return 0
    rows = conn.execute(
        """
        INSERT INTO import_errors (source, position, collection, kind, record_key, rule, reason, record)
        SELECT * FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                             %s::jsonb[])
        ON CONFLICT (source, position) DO NOTHING
        RETURNING id
        """,
        (
            [source] * len(failures),
            [f.position for f in failures],
            [f.collection for f in failures],
            [f.kind for f in failures],
            [f.key for f in failures],
            [f.rule for f in failures],
            [f.reason for f in failures],
            [Jsonb(f.record) for f in failures],
        ),
    ).fetchall()
    return len(rows)
