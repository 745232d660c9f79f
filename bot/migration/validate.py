"""`sidecar validate`: is what we hold complete and sound? Counts source against target, then checks
integrity, relationships, schema and business rules, and names every defect by its record's id.

Checks read the target tables whoever wrote them (an import, a webhook, an UPDATE by hand); the import's
own refusals (import_errors) are defects too until someone fixes the source and imports it again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from bot.core.db import migration_files
from integrations.chatwoot.contacts import ANONYMOUS

E164 = r"^\+[1-9][0-9]{6,14}$"

# kind -> (table, key column as text)
TARGETS: dict[str, tuple[str, str]] = {
    "listing": ("properties", "guesty_listing_id"),
    "reservation": ("reservations", "guesty_id"),
    "call": ("call_records", "aircall_call_id::text"),
    "room": ("archived_conversations", "room_id"),
    "message": ("archived_messages", "message_id"),
}

# (check, rule, kind, SQL returning (id, detail)): each row is one defect.
ROW_CHECKS: tuple[tuple[str, str, str, str], ...] = (
    (
        "integrity",
        "missing_dates",
        "reservation",
        "SELECT guesty_id, 'no check-in or check-out date' FROM reservations"
        " WHERE check_in_at IS NULL OR check_out_at IS NULL",
    ),
    (
        "integrity",
        "email_not_normalised",
        "reservation",
        "SELECT guesty_id, 'guest email ' || guest_email || ' is not lower-case and trimmed' FROM reservations"
        " WHERE guest_email IS DISTINCT FROM lower(btrim(guest_email))",
    ),
    (
        "integrity",
        "phone_not_e164",
        "reservation",
        f"SELECT guesty_id, 'guest phone ' || guest_phone || ' is not E.164' FROM reservations"
        f" WHERE guest_phone !~ '{E164}'",
    ),
    (
        "integrity",
        "phone_unreadable",
        "reservation",
        "SELECT guesty_id, 'guest phone ' || (raw->'guest'->>'phone') || ' could not be read as a number'"
        " FROM reservations WHERE guest_phone IS NULL AND coalesce(raw->'guest'->>'phone', '') <> ''",
    ),
    (
        "integrity",
        "phone_not_e164",
        "call",
        f"SELECT aircall_call_id::text, 'caller ' || caller_e164 || ' is not E.164' FROM call_records"
        f" WHERE caller_e164 !~ '{E164}'",
    ),
    (
        "relationships",
        "missing_listing",
        "reservation",
        "SELECT r.guesty_id, 'listing ' || r.listing_id || ' is not among the properties' FROM reservations r"
        " WHERE r.listing_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM properties p WHERE p.guesty_listing_id = r.listing_id)",
    ),
    (
        "relationships",
        "no_listing",
        "reservation",
        "SELECT guesty_id, 'no listing and no property' FROM reservations"
        " WHERE listing_id IS NULL AND property_code IS NULL",
    ),
    (
        "relationships",
        "unresolvable_caller",
        "call",
        "SELECT aircall_call_id::text, 'caller ' || coalesce(raw->>'raw_digits', '(no number)')"
        " || ' is neither a phone number nor marked anonymous' FROM call_records"
        " WHERE last_event IS NOT NULL AND caller_e164 IS NULL"
        " AND lower(btrim(coalesce(raw->>'raw_digits', ''))) <> ALL(%(anonymous)s)",
    ),
    (
        "relationships",
        "missing_room",
        "message",
        "SELECT m.message_id, 'room ' || m.room_id || ' is not in the archive' FROM archived_messages m"
        " WHERE NOT EXISTS (SELECT 1 FROM archived_conversations c WHERE c.room_id = m.room_id)",
    ),
    (
        "business",
        "check_out_before_check_in",
        "reservation",
        "SELECT guesty_id, 'check-out ' || check_out_at || ' is not after check-in ' || check_in_at"
        " FROM reservations WHERE check_out_at <= check_in_at",
    ),
    (
        "business",
        "overlapping_stays",
        "reservation",
        "SELECT a.guesty_id, 'confirmed stay overlaps ' || b.guesty_id || ' on listing ' || a.listing_id"
        " FROM reservations a JOIN reservations b ON b.listing_id = a.listing_id"
        " AND b.check_in_at < a.check_out_at AND b.check_out_at > a.check_in_at AND a.guesty_id < b.guesty_id"
        " WHERE a.status = 'confirmed' AND b.status = 'confirmed'"
        " AND a.check_out_at > a.check_in_at AND b.check_out_at > b.check_in_at",
    ),
    (
        "business",
        "negative_duration",
        "call",
        "SELECT aircall_call_id::text, 'duration ' || duration_s || ' s is negative' FROM call_records"
        " WHERE duration_s < 0",
    ),
    (
        "business",
        "ended_before_started",
        "call",
        "SELECT aircall_call_id::text, 'ended ' || ended_at || ' before it started ' || started_at"
        " FROM call_records WHERE ended_at < started_at",
    ),
)


@dataclass(frozen=True)
class Defect:
    check: str  # counts | integrity | relationships | schema | business | import
    rule: str
    kind: str
    id: str
    detail: str


@dataclass(frozen=True)
class Count:
    """One kind: records read from the sources and what became of them, against the rows we hold."""

    kind: str
    source_records: int  # distinct records read (applied + duplicates + rejected)
    duplicates: int
    rejected: int
    source_keys: int  # distinct ids among the applied records
    in_target: int  # of those, how many have their row
    target_rows: int  # every row of the table, whoever wrote it

    @property
    def ok(self) -> bool:
        return self.in_target == self.source_keys


@dataclass
class Validation:
    counts: list[Count] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.defects

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": [{**asdict(c), "ok": c.ok} for c in self.counts],
            "defects": [asdict(d) for d in self.defects],
        }


def validate(conn: psycopg.Connection) -> Validation:
    """Run every check; the connection only reads."""
    result = Validation()
    result.defects += _schema(conn)
    if any(d.rule == "missing_migration" for d in result.defects):
        return result
    for kind, (table, key) in TARGETS.items():
        count, missing = _count(conn, kind, table, key)
        result.counts.append(count)
        result.defects += [
            Defect("counts", "missing_row", kind, rid, f"imported, but no row in {table}") for rid in missing
        ]
    for check, rule, kind, sql in ROW_CHECKS:
        rows = conn.execute(sql, {"anonymous": sorted(ANONYMOUS)} if "%(anonymous)s" in sql else None).fetchall()
        result.defects += [Defect(check, rule, kind, str(rid), str(detail)) for rid, detail in rows]
    for rule, kind, rid, detail in conn.execute(
        "SELECT rule, coalesce(kind, collection), coalesce(record_key, source || '#' || position), reason"
        " FROM import_errors ORDER BY source, position"
    ).fetchall():
        result.defects.append(Defect("import", rule, kind, rid, detail))
    return result


def _schema(conn: psycopg.Connection) -> list[Defect]:
    applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    return [
        Defect("schema", "missing_migration", "database", name, "run `sidecar db upgrade`")
        for name, _ in migration_files()
        if name not in applied
    ]


def _count(conn: psycopg.Connection, kind: str, table: str, key: str) -> tuple[Count, list[str]]:
    applied, keys = conn.execute(
        "SELECT count(*), count(DISTINCT record_key) FROM import_records WHERE kind = %s", (kind,)
    ).fetchone() or (0, 0)
    duplicates, rejected = conn.execute(
        "SELECT count(*) FILTER (WHERE rule = 'duplicate'), count(*) FILTER (WHERE rule <> 'duplicate')"
        " FROM import_errors WHERE kind = %s",
        (kind,),
    ).fetchone() or (0, 0)
    missing = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT i.record_key FROM import_records i WHERE i.kind = %s"
            f" AND NOT EXISTS (SELECT 1 FROM {table} t WHERE {key} = i.record_key) ORDER BY 1",
            (kind,),
        )
    ]
    (total,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
    count = Count(kind, applied + duplicates + rejected, duplicates, rejected, keys, keys - len(missing), total)
    return count, missing
