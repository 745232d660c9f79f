"""validate checks the tables whoever wrote them: rows put there by hand are judged like imported ones."""

from __future__ import annotations

import psycopg

from bot.migration.validate import validate


def test_rows_written_by_hand_are_checked_and_each_defect_named(clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn:
        conn.execute("INSERT INTO properties (code, guesty_listing_id, name) VALUES ('L1', 'L1', 'Flat')")
        conn.execute(
            """
            INSERT INTO reservations (guesty_id, property_code, listing_id, status, check_in_at, check_out_at,
                                      guest_email, guest_phone)
            VALUES ('a', 'L1', 'L1', 'confirmed', '2025-01-01 15:00Z', '2025-01-05 10:00Z', 'ok@example.com', NULL),
                   ('b', 'L1', 'L1', 'confirmed', '2025-01-04 15:00Z', '2025-01-06 10:00Z', 'Bad@Example.com ', NULL),
                   ('c', 'L1', 'L1', 'canceled',  '2025-01-02 15:00Z', '2025-01-03 10:00Z', NULL, '07700 900123'),
                   ('d', 'L1', 'L1', 'confirmed', '2025-02-05 15:00Z', '2025-02-01 10:00Z', NULL, NULL)
            """
        )
        conn.execute(
            """
            INSERT INTO call_records (aircall_call_id, caller_e164, duration_s, last_event, raw) VALUES
                (1, '+447700900123', 60, 'call.ended', '{}'),
                (2, NULL, -5, 'call.ended', '{"raw_digits": "anonymous"}'),
                (3, NULL, 10, 'call.ended', '{"raw_digits": "12"}')
            """
        )
        conn.execute("INSERT INTO archived_messages (message_id, room_id, author_kind) VALUES ('m1', 'gone', 'guest')")
        conn.commit()

        result = validate(conn)

    assert sorted((d.check, d.rule, d.kind, d.id) for d in result.defects) == [
        ("business", "check_out_before_check_in", "reservation", "d"),
        ("business", "negative_duration", "call", "2"),
        ("business", "overlapping_stays", "reservation", "a"),
        ("integrity", "email_not_normalised", "reservation", "b"),
        ("integrity", "phone_not_e164", "reservation", "c"),
        ("relationships", "missing_room", "message", "m1"),
        ("relationships", "unresolvable_caller", "call", "3"),
    ]
    overlap = next(d for d in result.defects if d.rule == "overlapping_stays")
    assert overlap.detail == "confirmed stay overlaps b on listing L1"
    assert not result.ok
