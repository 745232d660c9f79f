"""Run an import: files -> batches of records -> rows, ledger and checkpoint, one transaction per batch.

A batch commits its rows, its ledger entries, its errors and the file's checkpoint together, so a run
stopped anywhere (Ctrl-C, a crash, a lost connection) resumes after its last committed batch and never
applies a record twice. A record already in the ledger at the same place is skipped (a re-run changes
nothing); the same content at another place is a duplicate and goes to import_errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bot.migration import ledger, targets
from bot.migration.ledger import Applied, Checkpoint, Failure
from bot.migration.mapping import Mapping
from bot.migration.records import Mapped, Rejected, content, fingerprint, to_record
from bot.migration.sources import Format, SourceFile, SourceRecord, count, discover, fingerprint_file, read

BATCH_SIZE = 500
IMPORT_LOCK_CLASS = 72_721  # two-integer advisory lock per source file: one run imports a file at a time
OUTCOMES = ("inserted", "updated", "unchanged", "older", "duplicate", "rejected")
WRITERS: dict[str, Callable[[psycopg.Connection, Any], list[str]]] = {
    "call": targets.write_calls,
    "reservation": targets.write_reservations,
    "listing": targets.write_listings,
    "room": targets.write_rooms,
    "message": targets.write_messages,
}


@dataclass
class FileReport:
    source: str
    records: int = 0  # records read in this run
    resumed_at: int = 0
    status: str = "imported"  # imported | already imported | not mapped
    collections_skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportReport:
    """What one run did, per kind and outcome, and per file."""

    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)
    new_errors: int = 0
    linked: int = 0

    def add(self, kind: str, outcome: str, n: int = 1) -> None:
        self.outcomes.setdefault(kind, Counter())[outcome] += n

    @property
    def changes(self) -> int:
        """Rows written and errors recorded: 0 means the run changed nothing."""
        return sum(c["inserted"] + c["updated"] for c in self.outcomes.values()) + self.new_errors + self.linked


Progress = Callable[[int], None]


def import_path(
    dsn: str,
    fmt: Format,
    path: Path,
    mapping: Mapping,
    *,
    batch_size: int = BATCH_SIZE,
    restart: bool = False,
    progress: Callable[[int, int], Progress] | None = None,
) -> ImportReport:
    """Import every export file at `path`. `progress(done, total)` makes a callback advanced per batch.

    restart: ignore the checkpoints and read every file from the top (the ledger still keeps it exact).
    """
    report = ImportReport()
    files = discover(path, fmt)
    with psycopg.connect(dsn) as conn:
        plans = []
        for file in files:
            size, digest = fingerprint_file(file.path)
            cp = ledger.load_checkpoint(conn, file.source)
            start = 0
            if cp is not None and cp.holds_for(size, digest) and not restart:
                if cp.finished:
                    report.files.append(FileReport(file.source, status="already imported", resumed_at=cp.position))
                    continue
                start = cp.position
            plans.append((file, size, digest, start))
        conn.rollback()
        totals = [count(f) for f, *_ in plans]
        advance = progress(sum(s for *_, s in plans), sum(totals)) if progress else None
        for file, size, digest, start in plans:
            report.files.append(_import_file(conn, file, size, digest, start, mapping, batch_size, report, advance))
        if any(k in report.outcomes for k in ("listing", "reservation")):
            report.linked = targets.link_reservations(conn)
            conn.commit()
    return report


def _batches(records: Iterator[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    batch: list[SourceRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _import_file(
    conn: psycopg.Connection,
    file: SourceFile,
    size: int,
    digest: str,
    start: int,
    mapping: Mapping,
    batch_size: int,
    report: ImportReport,
    advance: Progress | None,
) -> FileReport:
    done = FileReport(file.source, resumed_at=start)
    locked = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (IMPORT_LOCK_CLASS, file.source)).fetchone()
    conn.commit()
    if not (locked and locked[0]):
        done.status = "being imported by another run"
        return done
    try:
        return _import_locked(conn, file, size, digest, start, mapping, batch_size, report, advance, done)
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (IMPORT_LOCK_CLASS, file.source))
        conn.commit()


def _import_locked(
    conn: psycopg.Connection,
    file: SourceFile,
    size: int,
    digest: str,
    start: int,
    mapping: Mapping,
    batch_size: int,
    report: ImportReport,
    advance: Progress | None,
    done: FileReport,
) -> FileReport:
    position, last_id = start, None
    for batch in _batches(read(file, start), batch_size):
        _apply_batch(conn, file.source, batch, mapping, report, done)
        position, last_id = batch[-1].position + 1, batch[-1].source_id
        ledger.save_checkpoint(conn, Checkpoint(file.source, size, digest, position, last_id, False))
        conn.commit()
        done.records += len(batch)
        if advance:
            advance(len(batch))
    if done.records and sum(done.collections_skipped.values()) == done.records:
        # Nothing here was ours to import: no checkpoint, so a mapping added later picks the file up.
        done.status = "not mapped"
        ledger.forget_checkpoint(conn, file.source)
    else:
        ledger.save_checkpoint(conn, Checkpoint(file.source, size, digest, position, last_id, True))
    conn.commit()
    return done


def _apply_batch(
    conn: psycopg.Connection,
    source: str,
    batch: Sequence[SourceRecord],
    mapping: Mapping,
    report: ImportReport,
    done: FileReport,
) -> None:
    failures: list[Failure] = []
    accepted: list[tuple[SourceRecord, str, Mapped]] = []  # (record, fingerprint, row)
    for record in batch:
        kind = mapping.kind_of(record.collection)
        if kind is None:
            done.collections_skipped[record.collection] += 1
            continue
        if record.data is None:
            failures.append(
                Failure(
                    record.position,
                    record.collection,
                    kind,
                    record.source_id,
                    "unreadable",
                    record.error or "unreadable",
                    {},
                )
            )
            report.add(kind, "rejected")
            continue
        data = mapping.rename(kind, record.data)
        mapped = to_record(kind, data, record.source_id)
        if isinstance(mapped, Rejected):
            failures.append(
                Failure(record.position, record.collection, kind, mapped.key, mapped.rule, mapped.reason, record.data)
            )
            report.add(kind, "rejected")
            continue
        accepted.append((record, fingerprint(mapped.kind, content(kind, data)), mapped))

    seen = ledger.known(conn, [(m.kind, fp) for _, fp, m in accepted])
    fresh: dict[str, list[tuple[SourceRecord, str, Mapped]]] = {}
    for record, fp, mapped in accepted:
        first = seen.get((mapped.kind, fp))
        if first == (source, record.position):
            report.add(mapped.kind, "unchanged")
            continue
        if first is not None:
            failures.append(
                Failure(
                    record.position,
                    record.collection,
                    mapped.kind,
                    mapped.key,
                    "duplicate",
                    f"duplicate of {first[0]} record {first[1]}",
                    record.data or {},
                )
            )
            report.add(mapped.kind, "duplicate")
            continue
        seen[(mapped.kind, fp)] = (source, record.position)
        fresh.setdefault(mapped.kind, []).append((record, fp, mapped))

    applied: list[Applied] = []
    for kind, items in fresh.items():
        outcomes = WRITERS[kind](conn, [m for _, _, m in items])
        for (record, fp, mapped), outcome in zip(items, outcomes, strict=True):
            applied.append(Applied(kind, fp, mapped.key, record.position, outcome))
            report.add(kind, outcome)
    ledger.record_applied(conn, source, applied)
    report.new_errors += ledger.record_failures(conn, source, failures)
