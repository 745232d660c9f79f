"""A mapping file names the operator's collections and fields; the defaults cover the usual names."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.migration.mapping import Mapping, MappingError, load_mapping
from bot.migration.records import ReservationRecord, to_record


def test_default_mapping_knows_the_usual_collection_names() -> None:
    mapping = Mapping()

    assert [
        mapping.kind_of(c)
        for c in ("aircall_events", "Reservations", "guesty_listings", "rocketchat_room", "rocketchat_message", "users")
    ] == ["call", "reservation", "listing", "room", "message", None]


def test_toml_mapping_renames_fields_before_the_guesty_rules_apply(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(
        '[collections]\nbookings = "reservation"\n\n[fields.reservation]\ncheckIn = "arrival"\n'
        'checkOut = "departure"\n"guest.fullName" = "customer.name"\nlistingId = "flat"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    old = {
        "_id": "b1",
        "status": "confirmed",
        "arrival": "2025-03-01T15:00:00Z",
        "departure": "2025-03-04T10:00:00Z",
        "customer": {"name": "Rita Sousa"},
        "flat": "lst-1",
    }

    record = to_record("reservation", mapping.rename("reservation", old), None)

    assert mapping.kind_of("bookings") == "reservation"
    assert isinstance(record, ReservationRecord)
    assert (record.row.guest_name, record.row.listing_id, str(record.row.check_in_local)) == (
        "Rita Sousa",
        "lst-1",
        "2025-03-01",
    )


def test_yaml_mapping_extends_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("collections:\n  phone_log: call\n", encoding="utf-8")

    mapping = load_mapping(path)

    assert (mapping.kind_of("phone_log"), mapping.kind_of("calls")) == ("call", "call")


def test_unknown_kind_in_a_mapping_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[collections]\nphone_log = "calls"\n', encoding="utf-8")

    with pytest.raises(MappingError, match=r"collections.phone_log = 'calls'; use one of call, reservation"):
        load_mapping(path)
