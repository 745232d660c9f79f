"""Write one batch of imported rows into the mirrors' tables, by the mirrors' own rules.

Calls are folded with Aircall's `merge` (so events in any order give the webhook path's record),
reservations and listings go through Guesty's handler SQL under the same advisory locks, older versions
never overwrite newer ones, and a row that would not change is not written at all: each record's outcome
(inserted, updated, unchanged, older) is what a re-run reports. Nothing is posted to Chatwoot and no
notes are planned: history is mirrored silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bot.migration.records import CallRecord, ListingRecord, MessageRecord, ReservationRecord, RoomRecord
from integrations.aircall.store import MERGED_COLUMNS, SELECT_SQL, state_from_row
from integrations.aircall.transforms import CallState, merge
from integrations.guesty.handlers import (
    LISTING_LOCK_CLASS,
    PROPERTY_CODE_SQL,
    RESERVATION_LOCK_CLASS,
    UPSERT_PROPERTY_SQL,
    UPSERT_RESERVATION_SQL,
)
from integrations.guesty.stays import instant, stay_stage
from integrations.guesty.transforms import is_stale

_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, hashtext(k)) FROM unnest(%s::text[]) AS k ORDER BY k"


def _lock(conn: psycopg.Connection, lock_class: int, keys: Sequence[str]) -> None:
    conn.execute(_LOCK_SQL, (lock_class, sorted(set(keys)))).fetchall()


def _outcome(before: Any, after: Any) -> str:
    return "inserted" if before is None else "updated"


# ---------------------------------------------------------------------------------------------- calls


def write_calls(conn: psycopg.Connection, records: Sequence[CallRecord]) -> list[str]:
    """Fold each call event into its record (row-locked); only records that changed are written."""
    ids = sorted({r.snapshot.aircall_call_id for r in records})
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(SELECT_SQL.replace("= %s", "= ANY(%s)") + " ORDER BY aircall_call_id FOR UPDATE", (ids,))
        stored: dict[int, CallState] = {row["aircall_call_id"]: state_from_row(row) for row in cur.fetchall()}
    current: dict[int, CallState] = dict(stored)
    outcomes = []
    for record in records:
        cid = record.snapshot.aircall_call_id
        before = current.get(cid)
        after = merge(before, record.snapshot)
        if before is not None and after == before and after.raw == before.raw:
            outcomes.append("unchanged")
            continue
        outcomes.append(_outcome(before, after))
        current[cid] = after
    changed = [state for cid, state in current.items() if stored.get(cid) is not state]
    if changed:
        new = [s for s in changed if s.aircall_call_id not in stored]
        with conn.cursor() as cur:
            if new:
                cur.executemany(
                    "INSERT INTO call_records (aircall_call_id) VALUES (%s) ON CONFLICT DO NOTHING",
                    [(s.aircall_call_id,) for s in new],
                )
            assignments = ", ".join(f"{name} = %({name})s" for name in MERGED_COLUMNS)
            cur.executemany(
                f"UPDATE call_records SET {assignments}, updated_at = now() WHERE aircall_call_id = %(id)s",
                [_call_values(s) for s in changed],
            )
    return outcomes


def _call_values(state: CallState) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(state, name) for name in MERGED_COLUMNS}
    values["tags"] = list(state.tags)
    values["raw"] = Jsonb(state.raw)
    values["id"] = state.aircall_call_id
    return values


# --------------------------------------------------------------------------------------- reservations


def write_reservations(
    conn: psycopg.Connection, records: Sequence[ReservationRecord], *, now: datetime | None = None
) -> list[str]:
    """Upsert reservations by the webhook handler's SQL; older versions and identical ones are skipped."""
    now = now or datetime.now(UTC)
    ids = [r.key for r in records]
    _lock(conn, RESERVATION_LOCK_CLASS, ids)
    rows = conn.execute(
        "SELECT guesty_id, raw, source_updated_at FROM reservations WHERE guesty_id = ANY(%s) FOR UPDATE",
        (sorted(set(ids)),),
    ).fetchall()
    current: dict[str, tuple[dict[str, Any], datetime | None]] = {gid: (raw, stamp) for gid, raw, stamp in rows}
    listing_ids = sorted({r.row.listing_id for r in records if r.row.listing_id})
    codes: dict[str, str] = dict(
        conn.execute(
            "SELECT guesty_listing_id, code FROM properties WHERE guesty_listing_id = ANY(%s)", (listing_ids,)
        ).fetchall()
    )
    outcomes, writes = [], []
    for record in records:
        row = record.row
        before = current.get(row.guesty_id)
        if before is not None and is_stale(row.source_updated_at, before[1]):
            outcomes.append("older")
            continue
        if before is not None and before[0] == row.raw and before[1] == (row.source_updated_at or before[1]):
            outcomes.append("unchanged")
            continue
        outcomes.append(_outcome(before, row))
        stage = stay_stage(
            row.status,
            instant(row.check_in_at, row.check_in_local),
            instant(row.check_out_at, row.check_out_local),
            now,
        )
        # Shallow on purpose: asdict() would deep-copy every payload.
        values = {f.name: getattr(row, f.name) for f in fields(row)}
        writes.append(
            {**values, "property_code": codes.get(row.listing_id or ""), "stay_stage": stage, "raw": Jsonb(row.raw)}
        )
        current[row.guesty_id] = (row.raw, row.source_updated_at or (before[1] if before else None))
    if writes:
        with conn.cursor() as cur:
            cur.executemany(UPSERT_RESERVATION_SQL, writes)
    return outcomes


# ------------------------------------------------------------------------------------------- listings


def write_listings(conn: psycopg.Connection, records: Sequence[ListingRecord]) -> list[str]:
    """Upsert properties by the webhook handler's SQL (same code rule); the feed re-indexes what changed."""
    ids = [r.key for r in records]
    _lock(conn, LISTING_LOCK_CLASS, ids)
    rows = conn.execute(
        "SELECT guesty_listing_id, code, raw, source_updated_at, active FROM properties"
        " WHERE guesty_listing_id = ANY(%s) FOR UPDATE",
        (sorted(set(ids)),),
    ).fetchall()
    current = {lid: (code, raw, stamp, active) for lid, code, raw, stamp, active in rows}
    outcomes = []
    for record in records:
        prop = record.row
        before = current.get(prop.guesty_listing_id)
        if before is not None and is_stale(prop.source_updated_at, before[2]):
            outcomes.append("older")
            continue
        if (
            before is not None
            and before[1] == prop.raw
            and before[3] == prop.active
            and before[2] == (prop.source_updated_at or before[2])
        ):
            outcomes.append("unchanged")
            continue
        code = before[0] if before is not None else _new_code(conn, prop.nickname, prop.guesty_listing_id)
        conn.execute(
            UPSERT_PROPERTY_SQL,
            {
                "code": code,
                "lid": prop.guesty_listing_id,
                "name": prop.name,
                "nickname": prop.nickname,
                "address": prop.address,
                "timezone": prop.timezone,
                "in": prop.check_in_time,
                "out": prop.check_out_time,
                "active": prop.active,
                "raw": Jsonb(prop.raw),
                "stamp": prop.source_updated_at,
            },
        )
        outcomes.append(_outcome(before, prop))
        current[prop.guesty_listing_id] = (
            code,
            prop.raw,
            prop.source_updated_at or (before[2] if before else None),
            prop.active,
        )
    return outcomes


def _new_code(conn: psycopg.Connection, nickname: str | None, listing_id: str) -> str:
    if nickname:
        row = conn.execute(PROPERTY_CODE_SQL, {"n": nickname}).fetchone()
        if row is not None:
            return str(row[0])
    return listing_id


def link_reservations(conn: psycopg.Connection) -> int:
    """Give reservations imported before their listing the property code the listing now has."""
    cur = conn.execute(
        "UPDATE reservations r SET property_code = p.code, updated_at = now() FROM properties p"
        " WHERE r.property_code IS NULL AND r.listing_id = p.guesty_listing_id"
    )
    return cur.rowcount


# ------------------------------------------------------------------------------------------ archive


def write_rooms(conn: psycopg.Connection, records: Sequence[RoomRecord]) -> list[str]:
    columns = (
        "room_type",
        "name",
        "contact_name",
        "contact_email",
        "contact_phone",
        "started_at",
        "last_message_at",
        "closed_at",
    )
    return _write_archive(
        conn, "archived_conversations", "room_id", columns, records, extra={"source_system": "rocketchat"}
    )


def write_messages(conn: psycopg.Connection, records: Sequence[MessageRecord]) -> list[str]:
    columns = ("room_id", "author", "author_kind", "body", "sent_at")
    return _write_archive(conn, "archived_messages", "message_id", columns, records)


def _write_archive(
    conn: psycopg.Connection,
    table: str,
    key: str,
    columns: Sequence[str],
    records: Sequence[RoomRecord] | Sequence[MessageRecord],
    extra: dict[str, str] | None = None,
) -> list[str]:
    stored: dict[str, Any] = dict(
        conn.execute(
            f"SELECT {key}, raw FROM {table} WHERE {key} = ANY(%s)", (sorted({r.key for r in records}),)
        ).fetchall()
    )
    outcomes, writes = [], {}
    for record in records:
        before = stored.get(record.key)
        if before == record.raw:
            outcomes.append("unchanged")
            continue
        outcomes.append(_outcome(before, record))
        stored[record.key] = record.raw
        writes[record.key] = {
            **{c: getattr(record, c) for c in columns},
            **(extra or {}),
            key: record.key,
            "raw": Jsonb(record.raw),
        }
    if writes:
        names = [key, *columns, *(extra or {}), "raw"]
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != key)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(f'%({n})s' for n in names)})"
                f" ON CONFLICT ({key}) DO UPDATE SET {updates}, updated_at = now()",
                list(writes.values()),
            )
    return outcomes
