"""One record -> the row a webhook would give, or the rule it breaks (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.migration.records import CallRecord, MessageRecord, Rejected, RoomRecord, content, fingerprint, to_record

RESERVATION = {
    "_id": "r1",
    "status": "confirmed",
    "checkIn": "2025-01-01T15:00:00Z",
    "checkOut": "2025-01-03T10:00:00Z",
    "listingId": "L1",
}


def test_reservation_without_listing_is_refused_as_incomplete() -> None:
    record = to_record("reservation", {k: v for k, v in RESERVATION.items() if k != "listingId"}, None)

    assert record == Rejected("required", "missing listingId", "r1")


def test_call_document_with_iso_dates_is_an_api_snapshot() -> None:
    record = to_record(
        "call",
        {
            "_id": "65a0",
            "id": 77,
            "started_at": "2025-01-01T10:00:00Z",
            "ended_at": 1735725700000,
            "duration": 100,
            "raw_digits": "+44 7700 900123",
        },
        None,
    )

    assert isinstance(record, CallRecord)
    snap = record.snapshot
    assert (snap.event, snap.caller_e164, snap.started_at, snap.ended_at) == (
        "api.call",
        "+447700900123",
        datetime(2025, 1, 1, 10, 0, tzinfo=UTC),
        datetime(2025, 1, 1, 10, 1, 40, tzinfo=UTC),
    )


def test_negative_call_duration_is_refused() -> None:
    assert to_record("call", {"id": 5, "duration": -3}, None) == Rejected(
        "negative_duration", "duration -3 s is negative", "5"
    )


def test_ai_events_are_refused_as_not_imported() -> None:
    event = {"event": "summary.created", "timestamp": 1735725700, "data": {"id": 1, "call_id": 5}}

    assert to_record("call", event, None) == Rejected(
        "unsupported", "Aircall event summary.created is not imported", "1"
    )


def test_storage_id_of_a_call_event_is_not_part_of_its_content() -> None:
    event = {"event": "call.ended", "timestamp": 1, "data": {"id": 5}}

    assert fingerprint("call", content("call", {"_id": "a", **event})) == fingerprint(
        "call", content("call", {"_id": "b", **event})
    )


def test_legacy_guesty_event_unwraps_its_reservation() -> None:
    record = to_record("guesty_event", {"event": "reservation.updated", "reservation": RESERVATION}, None)

    assert record.key == "r1" and record.kind == "reservation"


def test_rocketchat_room_and_messages_become_archive_rows() -> None:
    room = to_record(
        "room",
        {
            "_id": "R1",
            "t": "l",
            "fname": "Rita",
            "ts": "2024-01-01T10:00:00Z",
            "v": {
                "token": "t",
                "phone": [{"phoneNumber": "+351 912 345 678"}],
                "visitorEmails": [{"address": "Rita@Example.com"}],
            },
        },
        None,
    )
    guest = to_record("message", {"_id": "m1", "rid": "R1", "msg": "Olá", "token": "t", "u": {"username": "x"}}, None)
    system = to_record("message", {"_id": "m2", "rid": "R1", "t": "livechat-close", "u": {"name": "Ana"}}, None)

    assert isinstance(room, RoomRecord)
    assert (room.contact_name, room.contact_email, room.contact_phone) == ("Rita", "rita@example.com", "+351912345678")
    assert isinstance(guest, MessageRecord) and isinstance(system, MessageRecord)
    assert (guest.author_kind, guest.body, system.author_kind) == ("guest", "Olá", "system")
