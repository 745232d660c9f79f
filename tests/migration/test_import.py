"""Importing generated exports with planted defects, in every format: validate names each defect, the counts
match, a second run changes nothing, and an interrupted run resumes where it stopped."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest

from bot.migration.importer import import_path
from bot.migration.mapping import Mapping
from bot.migration.validate import validate
from tests.migration.generate import PLANTED, History


def defects(dsn: str) -> set[tuple[str, str, str, str]]:
    with psycopg.connect(dsn) as conn:
        return {(d.check, d.rule, d.kind, d.id) for d in validate(conn).defects}


def table_counts(dsn: str) -> dict[str, int]:
    tables = {
        "listing": "properties",
        "reservation": "reservations",
        "call": "call_records",
        "room": "archived_conversations",
        "message": "archived_messages",
    }
    with psycopg.connect(dsn) as conn:
        return {kind: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for kind, t in tables.items()}


def test_import_reports_each_planted_defect_by_id_and_counts_match(
    clean_db: str, export: tuple[str, Path], history: History
) -> None:
    fmt, folder = export
    report = import_path(clean_db, fmt, folder, Mapping())  # type: ignore[arg-type]

    assert defects(clean_db) == PLANTED
    assert table_counts(clean_db) == history.expected
    with psycopg.connect(clean_db) as conn:
        counts = {c.kind: c for c in validate(conn).counts}
    assert all(c.ok for c in counts.values())
    assert (counts["reservation"].source_records, counts["reservation"].duplicates, counts["reservation"].rejected) == (
        len(history.collections["guesty_reservations"]),
        1,
        2,
    )
    assert (counts["call"].source_records, counts["call"].duplicates, counts["call"].rejected) == (
        len(history.collections["aircall_events"]),
        1,
        1,
    )
    assert report.outcomes["reservation"]["inserted"] == history.expected["reservation"]
    assert report.new_errors == 5


def test_second_import_changes_nothing_and_says_so(clean_db: str, export: tuple[str, Path]) -> None:
    fmt, folder = export
    import_path(clean_db, fmt, folder, Mapping())  # type: ignore[arg-type]
    with psycopg.connect(clean_db) as conn:
        before = conn.execute("SELECT max(updated_at) FROM reservations").fetchone()

    again = import_path(clean_db, fmt, folder, Mapping())  # type: ignore[arg-type]
    from_top = import_path(clean_db, fmt, folder, Mapping(), restart=True)  # type: ignore[arg-type]

    assert again.changes == 0 and again.outcomes == {}
    assert {f.status for f in again.files} == {"already imported"}
    assert from_top.changes == 0
    assert {k: set(+c) for k, c in from_top.outcomes.items()} == {
        "listing": {"unchanged"},
        "reservation": {"unchanged", "duplicate", "rejected"},
        "call": {"unchanged", "duplicate", "rejected"},
        "room": {"unchanged"},
        "message": {"unchanged"},
    }
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT max(updated_at) FROM reservations").fetchone() == before
        assert conn.execute("SELECT count(*) FROM import_errors").fetchone() == (5,)


class Interrupted(Exception):
    pass


def test_interrupted_import_resumes_after_its_last_batch(clean_db: str, history: History, tmp_path: Path) -> None:
    from tests.migration.generate import write_mongodump

    folder = write_mongodump(history, tmp_path / "dump")
    batches = Counter[str]()

    def crash_after_two_batches(done: int, total: int):  # type: ignore[no-untyped-def]
        def advance(n: int) -> None:
            batches["seen"] += 1
            if batches["seen"] == 2:
                raise Interrupted

        return advance

    with pytest.raises(Interrupted):
        import_path(clean_db, "mongodb", folder, Mapping(), batch_size=10, progress=crash_after_two_batches)
    with psycopg.connect(clean_db) as conn:
        stopped = conn.execute("SELECT source, position, finished FROM import_checkpoints").fetchall()
    assert stopped == [("mongodb:aircall_events.bson", 20, False)]

    resumed = import_path(clean_db, "mongodb", folder, Mapping(), batch_size=10)

    assert [(f.source, f.resumed_at) for f in resumed.files][:2] == [
        ("mongodb:aircall_events.bson", 20),
        ("mongodb:guesty_listings.bson", 0),
    ]
    # 20 calls went in before the crash; the other 18 good ones (of 20 records left) now, none twice.
    assert resumed.outcomes["call"] == Counter({"inserted": 18, "duplicate": 1, "rejected": 1})
    assert defects(clean_db) == PLANTED
    assert table_counts(clean_db) == history.expected


def test_unmapped_collection_is_reported_and_picked_up_once_mapped(clean_db: str, tmp_path: Path) -> None:
    from bot.migration.mapping import mapping_from

    (tmp_path / "phone_log.json").write_text(
        '{"id": 501, "duration": 30, "raw_digits": "anonymous"}\n', encoding="utf-8"
    )

    skipped = import_path(clean_db, "mongodb", tmp_path, Mapping())
    mapped = import_path(clean_db, "mongodb", tmp_path, mapping_from({"collections": {"phone_log": "call"}}))

    assert [(f.status, dict(f.collections_skipped)) for f in skipped.files] == [("not mapped", {"phone_log": 1})]
    assert mapped.outcomes == {"call": Counter({"inserted": 1})}


def test_reservations_imported_before_their_listings_are_linked_afterwards(
    clean_db: str, history: History, tmp_path: Path
) -> None:
    from tests.migration.generate import write_mongoexport

    folder = write_mongoexport(history, tmp_path / "export")
    import_path(clean_db, "mongodb", folder / "guesty_reservations.json", Mapping())
    with psycopg.connect(clean_db) as conn:
        unlinked = conn.execute("SELECT count(*) FROM reservations WHERE property_code IS NULL").fetchone()

    report = import_path(clean_db, "mongodb", folder / "guesty_listings.json", Mapping())

    assert unlinked == (history.expected["reservation"],)
    assert report.linked == history.expected["reservation"] - 1  # all but the one whose listing is missing
    assert ("relationships", "missing_listing", "reservation", "res-orphan") in defects(clean_db)
