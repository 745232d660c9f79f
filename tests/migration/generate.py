"""Generated exports of an old system's history, with planted defects, for the import tests and bench/imports.py.

`make_history(n)` builds about 2.6·n records (n reservations, n call events, n/2 messages, n/10 rooms,
n/20 listings) with Python datetimes; the writers encode them as mongoexport (relaxed or canonical
Extended JSON, JSON lines or array), mongodump (.bson) or Firestore REST documents (array or
documents.list page). The defects, and what `sidecar validate` must say about them, are in PLANTED.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId, json_util

BASE = datetime(2024, 1, 1, 15, 0, tzinfo=UTC)

# (check, rule, kind, id) that validate reports for the planted defects.
PLANTED = {
    ("import", "duplicate", "reservation", "res-dup"),
    ("import", "duplicate", "call", "9000001"),
    ("relationships", "missing_listing", "reservation", "res-orphan"),
    ("import", "check_out_before_check_in", "reservation", "res-backwards"),
    ("import", "malformed_date", "reservation", "res-baddate"),
    ("import", "malformed_date", "call", "9000002"),
}


@dataclass
class History:
    collections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Expected rows in the target tables (the defective records excluded).
    expected: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(docs) for docs in self.collections.values())


def make_history(n: int, seed: int = 7) -> History:
    rng = random.Random(seed)
    n_listings = max(3, n // 20)
    listings = [_listing(i) for i in range(n_listings)]
    reservations = [_reservation(i, n_listings, rng) for i in range(n)]
    planted_res = [
        {**_reservation(n + 1, n_listings, rng), "_id": "res-dup"},
        {**_reservation(n + 2, n_listings, rng), "_id": "res-orphan", "listingId": "lst-missing"},
        {**_reservation(n + 3, n_listings, rng), "_id": "res-backwards"},
        {**_reservation(n + 4, n_listings, rng), "_id": "res-baddate", "checkIn": "2025-02-30T15:00:00Z"},
    ]
    backwards = planted_res[2]
    backwards["checkIn"], backwards["checkOut"] = backwards["checkOut"], backwards["checkIn"]
    reservations += [*planted_res, dict(planted_res[0])]  # the duplicate: the same document again
    calls = [_call_event(7_000_000 + i, rng) for i in range(n - 3)]
    dup = _call_event(9_000_001, rng)
    bad = _call_event(9_000_002, rng)
    bad["data"]["started_at"] = "not-a-date"
    calls += [dup, dict(dup), bad]
    n_rooms = max(2, n // 10)
    rooms = [_room(i) for i in range(n_rooms)]
    messages = [_message(i, n_rooms) for i in range(n // 2)]
    history = History(
        {
            "guesty_listings": listings,
            "guesty_reservations": reservations,
            "aircall_events": calls,
            "rocketchat_room": rooms,
            "rocketchat_message": messages,
        }
    )
    history.expected = {
        "listing": n_listings,
        "reservation": n + 2,
        "call": n - 3 + 1,
        "room": n_rooms,
        "message": n // 2,
    }
    return history


def _listing(i: int) -> dict[str, Any]:
    return {
        "_id": f"lst-{i:04d}",
        "title": f"Flat {i}",
        "nickname": f"flat-{i}",
        "timezone": "Europe/Lisbon",
        "defaultCheckInTime": "15:00",
        "defaultCheckOutTime": "11:00",
        "accommodates": 2 + i % 4,
        "address": {"full": f"Rua das Flores {i + 1}, Lisboa"},
        "amenities": ["Wifi", "Kitchen"],
        "publicDescription": {"summary": f"A bright flat number {i} near the river."},
        "lastUpdatedAt": BASE,
    }


def _reservation(i: int, n_listings: int, rng: random.Random) -> dict[str, Any]:
    check_in = BASE + timedelta(days=7 * (i // n_listings))
    status = "canceled" if rng.random() < 0.1 else "confirmed"
    return {
        "_id": f"res-{i:06d}",
        "confirmationCode": f"GY-{i:06d}",
        "status": status,
        "listingId": f"lst-{i % n_listings:04d}",
        "checkIn": check_in,
        "checkOut": check_in + timedelta(days=3, hours=-4),
        "guestsCount": 1 + i % 4,
        "guest": {
            "_id": f"g-{i}",
            "fullName": f"Guest {i}",
            "email": f"Guest{i}@Example.com",
            "phone": f"+44 7700 9{i % 100000:05d}",
        },
        "money": {"currency": "EUR", "totalPrice": 300 + i % 200},
        "lastUpdatedAt": check_in - timedelta(days=30),
    }


def _call_event(call_id: int, rng: random.Random) -> dict[str, Any]:
    started = int((BASE + timedelta(minutes=17 * (call_id % 100000))).timestamp())
    answered = rng.random() < 0.7
    digits = "anonymous" if call_id % 13 == 0 else f"+44 7700 9{call_id % 100000:05d}"
    data: dict[str, Any] = {
        "id": call_id,
        "direction": "inbound",
        "status": "done",
        "started_at": started,
        "answered_at": started + 10 if answered else None,
        "ended_at": started + 130,
        "duration": 130,
        "raw_digits": digits,
        "user": {"id": 1, "name": "Ana"},
    }
    if not answered:
        data["missed_call_reason"] = "no_available_agent"
    return {"resource": "call", "event": "call.ended", "timestamp": started + 131, "data": data}


def _room(i: int) -> dict[str, Any]:
    opened = BASE + timedelta(hours=5 * i)
    return {
        "_id": f"room-{i}",
        "t": "l",
        "fname": f"Visitor {i}",
        "ts": opened,
        "lm": opened + timedelta(minutes=9),
        "closedAt": opened + timedelta(minutes=30),
        "v": {
            "_id": f"vis-{i}",
            "username": f"guest-{i}",
            "token": f"tok-{i}",
            "phone": [{"phoneNumber": f"+351 912 {i % 1000:03d} 000"}],
            "visitorEmails": [{"address": f"visitor{i}@example.com"}],
        },
    }


def _message(i: int, n_rooms: int) -> dict[str, Any]:
    guest = i % 2 == 0
    return {
        "_id": f"msg-{i}",
        "rid": f"room-{i % n_rooms}",
        "msg": f"Message {i}",
        "ts": BASE + timedelta(hours=5 * (i % n_rooms), minutes=i % 30),
        "u": {
            "_id": "vis" if guest else "agent-1",
            "username": "guest" if guest else "ana",
            "name": None if guest else "Ana",
        },
        **({"token": f"tok-{i % n_rooms}"} if guest else {}),
    }


# ------------------------------------------------------------------------------------------ writers


def _with_object_ids(collection: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call events stored by an old function get Mongo's own ObjectId; other documents keep their ids."""
    if collection != "aircall_events":
        return docs
    return [{"_id": ObjectId(f"{i:024x}"), **doc} for i, doc in enumerate(docs)]


def write_mongoexport(history: History, folder: Path, *, canonical: bool = False, array: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    options = json_util.CANONICAL_JSON_OPTIONS if canonical else json_util.RELAXED_JSON_OPTIONS
    for collection, docs in history.collections.items():
        lines = [json_util.dumps(doc, json_options=options) for doc in _with_object_ids(collection, docs)]
        text = ("[" + ",\n".join(lines) + "]\n") if array else "\n".join(lines) + "\n"
        (folder / f"{collection}.json").write_text(text, encoding="utf-8")
    return folder


def write_mongodump(history: History, folder: Path) -> Path:
    db = folder / "rocketchat"
    db.mkdir(parents=True, exist_ok=True)
    for collection, docs in history.collections.items():
        with (db / f"{collection}.bson").open("wb") as handle:
            for doc in _with_object_ids(collection, docs):
                handle.write(bson.encode(doc))
        (db / f"{collection}.metadata.json").write_text('{"indexes": []}', encoding="utf-8")
    return folder


FIRESTORE_NAMES = {
    "guesty_listings": "listings",
    "guesty_reservations": "reservations",
    "aircall_events": "aircall_events",
    "rocketchat_room": "rocketchat_room",
    "rocketchat_message": "rocketchat_message",
}


def firestore_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: firestore_value(v) for k, v in value.items()}}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [firestore_value(v) for v in value]}}
    return {"stringValue": str(value)}


def write_firestore(history: History, folder: Path, *, list_dump: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for collection, docs in history.collections.items():
        name = FIRESTORE_NAMES[collection]
        documents = []
        for i, doc in enumerate(docs):
            doc_id = str(doc.get("_id") or f"auto{i:08d}")
            if name == "aircall_events":
                doc_id = f"evt{i:08d}"  # Cloud Functions stored each delivery under an automatic id
            documents.append(
                {
                    "name": f"projects/demo/databases/(default)/documents/{name}/{doc_id}",
                    "fields": {k: firestore_value(v) for k, v in doc.items()},
                    "createTime": "2025-01-01T00:00:00Z",
                    "updateTime": "2025-01-01T00:00:00Z",
                }
            )
        body: Any = {"documents": documents, "nextPageToken": ""} if list_dump else documents
        (folder / f"{name}.json").write_text(json.dumps(body), encoding="utf-8")
    return folder
