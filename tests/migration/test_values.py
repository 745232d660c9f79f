"""Old systems' typed values become one plain shape: Extended JSON (relaxed and canonical), BSON, Firestore."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import bson
import pytest

from bot.migration.sources import SourceFile, count, read
from bot.migration.values import FirestoreValueError, firestore_fields, from_extended_json


def test_canonical_extended_json_becomes_plain_values() -> None:
    text = (
        '{"_id": {"$oid": "5f1d7f1e2a3b4c5d6e7f8091"}, "at": {"$date": {"$numberLong": "1700000000000"}},'
        ' "n": {"$numberLong": "12"}, "i": {"$numberInt": "3"}, "f": {"$numberDouble": "1.5"},'
        ' "price": {"$numberDecimal": "12.50"}, "whole": {"$numberDecimal": "300"}}'
    )

    assert from_extended_json(text) == {
        "_id": "5f1d7f1e2a3b4c5d6e7f8091",
        "at": "2023-11-14T22:13:20Z",
        "n": 12,
        "i": 3,
        "f": 1.5,
        "price": 12.5,
        "whole": 300,
    }


def test_relaxed_extended_json_dates_keep_their_milliseconds() -> None:
    assert from_extended_json('{"at": {"$date": "2024-05-01T10:00:00.123Z"}, "n": 7}') == {
        "at": "2024-05-01T10:00:00.123Z",
        "n": 7,
    }


def test_firestore_typed_values_become_plain_values() -> None:
    fields = {
        "s": {"stringValue": "x"},
        "i": {"integerValue": "5"},
        "d": {"doubleValue": 2.5},
        "b": {"booleanValue": True},
        "z": {"nullValue": None},
        "t": {"timestampValue": "2024-05-01T10:00:00.123456Z"},
        "m": {"mapValue": {"fields": {"inner": {"integerValue": "1"}}}},
        "a": {"arrayValue": {"values": [{"stringValue": "p"}, {"integerValue": "2"}]}},
        "empty": {"arrayValue": {}},
        "r": {"referenceValue": "projects/p/databases/(default)/documents/listings/l1"},
        "g": {"geoPointValue": {"latitude": 38.7, "longitude": -9.1}},
    }

    assert firestore_fields(fields) == {
        "s": "x",
        "i": 5,
        "d": 2.5,
        "b": True,
        "z": None,
        "t": "2024-05-01T10:00:00.123Z",
        "m": {"inner": 1},
        "a": ["p", 2],
        "empty": [],
        "r": "projects/p/databases/(default)/documents/listings/l1",
        "g": {"latitude": 38.7, "longitude": -9.1},
    }


def test_unknown_firestore_value_type_is_refused_by_name() -> None:
    with pytest.raises(FirestoreValueError, match="unknown Firestore value type 'vectorValue'"):
        firestore_fields({"v": {"vectorValue": {}}})


def test_bson_file_reads_from_any_position_and_counts_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "calls.bson"
    path.write_bytes(b"".join(bson.encode({"_id": i, "at": datetime(2024, 1, 1, tzinfo=UTC)}) for i in range(5)))
    file = SourceFile(path, "mongodb")

    records = list(read(file, start=3))

    assert count(file) == 5
    assert [(r.position, r.collection, r.source_id, r.data) for r in records] == [
        (3, "calls", "3", {"_id": 3, "at": "2024-01-01T00:00:00Z"}),
        (4, "calls", "4", {"_id": 4, "at": "2024-01-01T00:00:00Z"}),
    ]


def test_a_bad_json_line_is_one_unreadable_record(tmp_path: Path) -> None:
    path = tmp_path / "reservations.json"
    path.write_text('{"_id": "a"}\n{"_id": \n{"_id": "c"}\n', encoding="utf-8")

    records = list(read(SourceFile(path, "mongodb")))

    assert [(r.position, r.source_id, r.error is not None) for r in records] == [
        (0, "a", False),
        (1, None, True),
        (2, "c", False),
    ]


def test_firestore_collection_and_id_come_from_the_document_name(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(
        '[{"name": "projects/p/databases/(default)/documents/listings/l1/reviews/r9",'
        ' "fields": {"stars": {"integerValue": "5"}}}]',
        encoding="utf-8",
    )

    (record,) = read(SourceFile(path, "firestore"))

    assert (record.collection, record.source_id, record.data) == ("reviews", "r9", {"stars": 5})


def test_pretty_mongoexport_without_array_reads_document_by_document(tmp_path: Path) -> None:
    path = tmp_path / "guesty_listings.json"
    path.write_text(
        '{\n  "_id": "l1",\n  "at": {"$date": "2024-01-01T00:00:00Z"}\n}\n{\n  "_id": "l2"\n}\n', encoding="utf-8"
    )
    file = SourceFile(path, "mongodb")

    assert count(file) == 2
    assert [(r.source_id, r.data) for r in read(file, start=0)] == [
        ("l1", {"_id": "l1", "at": "2024-01-01T00:00:00Z"}),
        ("l2", {"_id": "l2"}),
    ]
