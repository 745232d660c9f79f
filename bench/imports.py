"""History import throughput: `sidecar import` of generated exports against a plain COPY of the same rows.

    .venv/bin/python bench/imports.py [--n 4000] [--formats mongoexport,mongodump,firestore] [--batch-size 500]

For each export format, writes a history of about 2.6·n records (n = 4000 gives ≥ 10,000: reservations,
call events, listings, RocketChat rooms and messages, with the planted defects of tests/migration) into a
fresh database with the real importer (decode, map, rules, merge, ledger, checkpoints), times it, runs it
again (every record already imported), and runs `validate`, checking that it names exactly the planted
defects and that the counts match. The baseline, measured in the same run, COPYs the same rows, already
built, into the same tables of another fresh database: no decoding, no rules, no ledger. Prints figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg.types.json import Jsonb

from bot.core import db
from bot.migration.importer import import_path
from bot.migration.mapping import Mapping
from bot.migration.records import CallRecord, ListingRecord, MessageRecord, ReservationRecord, RoomRecord, to_record
from bot.migration.validate import validate
from bot.migration.values import plain
from tests.migration.generate import (
    PLANTED,
    History,
    make_history,
    write_firestore,
    write_mongodump,
    write_mongoexport,
)

SERVER = os.environ.get("TEST_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
FORMATS: dict[str, tuple[str, Callable[[History, Path], Path]]] = {
    "mongoexport": ("mongodb", lambda h, p: write_mongoexport(h, p)),
    "mongoexport-canonical": ("mongodb", lambda h, p: write_mongoexport(h, p, canonical=True, array=True)),
    "mongodump": ("mongodb", write_mongodump),
    "firestore": ("firestore", lambda h, p: write_firestore(h, p, list_dump=True)),
}
KINDS = {
    "guesty_listings": "listing",
    "guesty_reservations": "reservation",
    "aircall_events": "call",
    "rocketchat_room": "room",
    "rocketchat_message": "message",
}


def fresh_database() -> str:
    dsn = db.with_database(SERVER, f"sidecar_bench_{uuid.uuid4().hex[:10]}")
    db.create_database(dsn)
    db.upgrade(dsn)
    return dsn


def baseline_rows(history: History) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the import writes, built up front (first version of each id wins, defects left out)."""
    rows: dict[str, dict[str, tuple[Any, ...]]] = {k: {} for k in KINDS.values()}
    for collection, docs in history.collections.items():
        kind = KINDS[collection]
        for doc in docs:
            r = to_record(kind, plain(doc), None)
            if isinstance(r, ListingRecord):
                p = r.row
                rows[kind].setdefault(
                    r.key,
                    (
                        p.guesty_listing_id,
                        p.guesty_listing_id,
                        p.name,
                        p.nickname,
                        p.address,
                        p.timezone,
                        p.check_in_time,
                        p.check_out_time,
                        Jsonb(p.raw),
                    ),
                )
            elif isinstance(r, ReservationRecord):
                s = r.row
                rows[kind].setdefault(
                    r.key,
                    (
                        s.guesty_id,
                        s.confirmation_code,
                        s.listing_id,
                        s.status,
                        s.check_in_at,
                        s.check_out_at,
                        s.guest_name,
                        s.guest_email,
                        s.guest_phone,
                        Jsonb(s.raw),
                    ),
                )
            elif isinstance(r, CallRecord):
                c = r.snapshot
                rows[kind].setdefault(
                    r.key,
                    (
                        c.aircall_call_id,
                        c.direction,
                        c.status,
                        c.caller_e164,
                        c.started_at,
                        c.ended_at,
                        c.duration_s,
                        Jsonb(c.raw),
                    ),
                )
            elif isinstance(r, RoomRecord):
                rows[kind].setdefault(r.key, (r.key, "rocketchat", r.room_type, r.name, r.started_at, Jsonb(r.raw)))
            elif isinstance(r, MessageRecord):
                rows[kind].setdefault(r.key, (r.key, r.room_id, r.author_kind, r.body, r.sent_at, Jsonb(r.raw)))
    return {k: list(v.values()) for k, v in rows.items()}


COPY_SQL = {
    "listing": "COPY properties (code, guesty_listing_id, name, nickname, address, timezone, check_in_time,"
    " check_out_time, raw) FROM STDIN",
    "reservation": "COPY reservations (guesty_id, confirmation_code, listing_id, status, check_in_at, check_out_at,"
    " guest_name, guest_email, guest_phone, raw) FROM STDIN",
    "call": "COPY call_records (aircall_call_id, direction, status, caller_e164, started_at, ended_at, duration_s,"
    " raw) FROM STDIN",
    "room": "COPY archived_conversations (room_id, source_system, room_type, name, started_at, raw) FROM STDIN",
    "message": "COPY archived_messages (message_id, room_id, author_kind, body, sent_at, raw) FROM STDIN",
}


def run_baseline(history: History) -> float:
    rows = baseline_rows(history)
    dsn = fresh_database()
    try:
        started = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            for kind in ("listing", "reservation", "call", "room", "message"):
                with conn.cursor() as cur, cur.copy(COPY_SQL[kind]) as copy:
                    for row in rows[kind]:
                        copy.write_row(row)
            conn.commit()
        return time.perf_counter() - started
    finally:
        db.drop_database(dsn)


def run_format(name: str, history: History, folder: Path, batch_size: int) -> dict[str, Any]:
    fmt, write = FORMATS[name]
    export = write(history, folder / name)
    dsn = fresh_database()
    try:
        started = time.perf_counter()
        first = import_path(dsn, fmt, export, Mapping(), batch_size=batch_size)  # type: ignore[arg-type]
        took = time.perf_counter() - started
        started = time.perf_counter()
        again = import_path(dsn, fmt, export, Mapping(), batch_size=batch_size, restart=True)  # type: ignore[arg-type]
        took_again = time.perf_counter() - started
        started = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            result = validate(conn)
        took_validate = time.perf_counter() - started
        found = {(d.check, d.rule, d.kind, d.id) for d in result.defects}
        counts_ok = {c.kind: c.in_target for c in result.counts} == history.expected and all(
            c.ok for c in result.counts
        )
        return {
            "format": name,
            "import_s": took,
            "rerun_s": took_again,
            "validate_s": took_validate,
            "rerun_changes": again.changes,
            "defects_ok": found == PLANTED,
            "counts_ok": counts_ok,
            "first_changes": first.changes,
        }
    finally:
        db.drop_database(dsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="reservations (and call events); total ≈ 2.6·n records")
    parser.add_argument("--formats", default="mongoexport,mongoexport-canonical,mongodump,firestore")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    history = make_history(args.n)
    total = history.total
    calls = len(history.collections["aircall_events"])
    print(
        f"history: {total:,} records per format ({args.n:,} reservations, {calls:,} call events,"
        f" {len(history.collections['guesty_listings']):,} listings,"
        f" {len(history.collections['rocketchat_room']):,} rooms,"
        f" {len(history.collections['rocketchat_message']):,} messages)"
    )
    baseline = run_baseline(history)
    rows = sum(history.expected.values())
    print(f"baseline: COPY of the {rows:,} prebuilt rows: {baseline:.2f} s, {total / baseline:,.0f} records/s")
    print(
        f"{'format':22} {'import':>9} {'records/s':>10} {'vs COPY':>8} {'re-run':>8} {'records/s':>10}"
        f" {'validate':>9}  checks"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.formats.split(","):
            r = run_format(name, history, Path(tmp), args.batch_size)
            ok = "defects and counts as planted" if r["defects_ok"] and r["counts_ok"] else "MISMATCH"
            ok += ", re-run changed nothing" if r["rerun_changes"] == 0 else f", re-run changed {r['rerun_changes']}"
            print(
                f"{name:22} {r['import_s']:8.2f}s {total / r['import_s']:10,.0f} {baseline / r['import_s']:8.2f}"
                f" {r['rerun_s']:7.2f}s {total / r['rerun_s']:10,.0f} {r['validate_s']:8.2f}s  {ok}"
            )


if __name__ == "__main__":
    main()
