"""Pure transforms: each fixture gives exactly these rows, notes and knowledge sections."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.knowledge.chunking import chunk_document
from bot.knowledge.models import Section
from integrations.guesty.models import Listing, Reservation, ReservationEvent
from integrations.guesty.tests.conftest import load
from integrations.guesty.transforms import (
    PlannedNote,
    ReservationRow,
    StoredReservation,
    access_fields,
    contact_attributes,
    is_stale,
    listing_document,
    listing_sections,
    local_date,
    plan_notes,
    property_row,
    reservation_row,
    status_change,
)

RID = "6941c3a7e2b1f40012d8a5c3"
PROPERTY = "Sunny 2BR in Alfama with river view"


def row_of(name: str) -> ReservationRow:
    event = ReservationEvent.model_validate(load(name))
    assert event.reservation is not None
    return reservation_row(event.reservation, stamp=event.ordering_stamp())


def stored(name: str) -> StoredReservation:
    row = row_of(name)
    return StoredReservation(
        row.status, row.check_in_local, row.check_out_local, row.guests_count, row.source_updated_at
    )


def test_new_reservation_maps_to_its_row() -> None:
    row = row_of("reservation.new")
    assert (row.guesty_id, row.confirmation_code, row.listing_id, row.guest_id) == (
        RID,
        "HM4KQZ8X2T",
        "64f0b21c9d3e7a0035c1e982",
        "6941c3a6e2b1f40012d8a5b9",
    )
    assert row.status == "confirmed"
    assert row.check_in_at == datetime(2026, 2, 13, 15, 0, tzinfo=UTC)
    assert row.check_out_at == datetime(2026, 2, 17, 10, 0, tzinfo=UTC)
    assert (row.check_in_local, row.check_out_local) == (date(2026, 2, 13), date(2026, 2, 17))
    assert (row.planned_arrival, row.planned_departure) == ("15:00", "10:00")
    assert (row.guest_name, row.guest_email, row.guest_phone) == (
        "Oliver Bennett",
        "oliver.bennett@example.co.uk",
        "+447700900123",
    )
    assert (row.guests_count, row.channel, row.currency, row.total_price) == (2, "airbnb2", "EUR", 580.0)
    assert row.source_updated_at == datetime(2026, 1, 9, 11, 42, 16, 2000, tzinfo=UTC)
    assert row.raw["confirmationCode"] == "HM4KQZ8X2T"


def test_canceled_reservation_prices_fare_plus_cleaning_without_subtotal() -> None:
    row = row_of("reservation.updated-canceled")
    assert (row.status, row.total_price, row.guest_name) == ("canceled", 580.0, "Oliver Bennett")


def test_local_dates_fall_back_to_the_listing_time_zone() -> None:
    late = datetime(2026, 2, 13, 23, 30, tzinfo=UTC)
    assert local_date(late, "Europe/Lisbon") == date(2026, 2, 13)
    assert local_date(late, "Europe/Berlin") == date(2026, 2, 14)
    assert local_date(late, "Not/AZone") == date(2026, 2, 13)
    res = Reservation.model_validate(
        {**load("reservation.new")["reservation"], "checkInDateLocalized": None, "checkIn": "2026-02-13T23:30:00Z"}
    )
    assert reservation_row(res, stamp=None, timezone="Asia/Tokyo").check_in_local == date(2026, 2, 14)


def test_national_phone_needs_a_region() -> None:
    data = load("reservation.new")["reservation"]
    data["guest"]["phone"] = "912 345 678"
    res = Reservation.model_validate(data)
    assert reservation_row(res, stamp=None, default_region="PT").guest_phone == "+351912345678"


def test_reservation_without_status_cannot_be_mirrored() -> None:
    with pytest.raises(ValueError, match="status"):
        reservation_row(Reservation.model_validate({"_id": RID}), stamp=None)


def test_created_note_text() -> None:
    assert plan_notes(None, row_of("reservation.new"), PROPERTY) == [
        PlannedNote(
            f"guesty:{RID}:created",
            "created",
            "New Guesty booking HM4KQZ8X2T at Sunny 2BR in Alfama with river view: check-in 2026-02-13, "
            "check-out 2026-02-17, 2 guests, status confirmed, via airbnb2.",
        )
    ]


def test_cancellation_note_text() -> None:
    notes = plan_notes(stored("reservation.new"), row_of("reservation.updated-canceled"), PROPERTY)
    assert [(n.kind, n.text) for n in notes] == [
        (
            "canceled",
            "Guesty booking HM4KQZ8X2T at Sunny 2BR in Alfama with river view (2026-02-13 to 2026-02-17) "
            "is now canceled.",
        )
    ]
    assert notes[0].reply_key.startswith(f"guesty:{RID}:canceled:")


def test_date_and_guest_change_note_text() -> None:
    notes = plan_notes(stored("reservation.new"), row_of("reservation.updated-dates"), PROPERTY)
    assert [(n.kind, n.text) for n in notes] == [
        (
            "changed",
            "Guesty booking HM4KQZ8X2T at Sunny 2BR in Alfama with river view changed: "
            "check-in 2026-02-13 → 2026-02-14; check-out 2026-02-17 → 2026-02-18; guests 2 → 3.",
        )
    ]


def test_status_change_note_and_distinct_keys_per_change() -> None:
    inquiry = StoredReservation("inquiry", date(2026, 2, 13), date(2026, 2, 17), 2, None)
    notes = plan_notes(inquiry, row_of("reservation.new"), None)
    assert notes[0].text == (
        "Guesty booking HM4KQZ8X2T at 64f0b21c9d3e7a0035c1e982 changed: status inquiry → confirmed."
    )
    dates = plan_notes(stored("reservation.new"), row_of("reservation.updated-dates"), PROPERTY)
    assert notes[0].reply_key != dates[0].reply_key


def test_nothing_to_say_when_nothing_changed_or_already_canceled() -> None:
    assert plan_notes(stored("reservation.new"), row_of("reservation.new"), PROPERTY) == []
    assert plan_notes(stored("reservation.updated-canceled"), row_of("reservation.updated-canceled"), PROPERTY) == []


def test_first_sight_of_a_canceled_booking_is_a_cancellation_note() -> None:
    notes = plan_notes(None, row_of("reservation.updated-canceled"), PROPERTY)
    assert [n.kind for n in notes] == ["canceled"]


def test_status_change_history() -> None:
    assert status_change(None, row_of("reservation.new")) == (None, "confirmed")
    assert status_change(stored("reservation.new"), row_of("reservation.updated-canceled")) == ("confirmed", "canceled")
    assert status_change(stored("reservation.new"), row_of("reservation.updated-dates")) is None


def test_only_forward() -> None:
    older, newer = datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 21, tzinfo=UTC)
    assert is_stale(older, newer)
    assert not is_stale(newer, older)
    assert not is_stale(newer, newer)  # a redelivery is reapplied (idempotently)
    assert not is_stale(None, newer) and not is_stale(older, None)


def test_v2_events_give_the_id_and_publication_time() -> None:
    created = ReservationEvent.model_validate(load("reservation.created.v2"))
    updated = ReservationEvent.model_validate(load("reservation.updated.v2"))
    assert (created.reservation_id(), updated.reservation_id()) == (RID, RID)
    assert created.is_v2 and updated.is_v2
    assert updated.ordering_stamp() == datetime(2026, 1, 21, 8, 3, 58, 310000, tzinfo=UTC)
    nested = ReservationEvent.model_validate(
        {"event": "reservation.updated.v2", "data": {"publishedAt": "2026-01-22T00:00:00Z", "_id": RID}}
    )
    assert (nested.reservation_id(), nested.ordering_stamp()) == (RID, datetime(2026, 1, 22, tzinfo=UTC))


def test_contact_attributes() -> None:
    row = row_of("reservation.new")
    assert contact_attributes(
        code=row.code,
        property_name=PROPERTY,
        check_in=row.check_in_local,
        check_out=row.check_out_local,
        status=row.status,
        guests_count=row.guests_count,
    ) == {
        "reservation_code": "HM4KQZ8X2T",
        "property_name": PROPERTY,
        "check_in": "2026-02-13",
        "check_out": "2026-02-17",
        "reservation_status": "confirmed",
        "guests_count": 2,
    }


def test_listing_property_row() -> None:
    listing = Listing.model_validate(load("listing.updated")["listing"])
    prop = property_row(listing)
    assert (prop.guesty_listing_id, prop.name, prop.nickname, prop.timezone) == (
        "64f0b21c9d3e7a0035c1e982",
        PROPERTY,
        "LIS-Alfama-2B",
        "Europe/Lisbon",
    )
    assert (prop.address, prop.check_in_time, prop.check_out_time, prop.active) == (
        "Rua de São Miguel 12, 1100-544 Lisboa, Portugal",
        "15:00",
        "10:00",
        True,
    )
    assert prop.source_updated_at == datetime(2026, 1, 20, 17, 25, 3, 510000, tzinfo=UTC)


def test_listing_sections_gate_the_arrival_text_as_a_whole() -> None:
    listing = Listing.model_validate(load("listing.updated")["listing"])
    assert listing_sections(listing) == (
        Section(
            "Overview",
            "Sunny 2BR in Alfama with river view: Apartment (Entire home/apartment), up to 4 guests, "
            "2 bedrooms, 1 bathroom.\n\nBright two-bedroom flat on a quiet Alfama lane, five minutes "
            "from the tram 28 stop.\n\nTwo double bedrooms, open kitchen, balcony facing the Tagus.",
        ),
        Section("Address", "Address: Rua de São Miguel 12, 1100-544 Lisboa, Portugal", is_private=True),
        Section("Neighbourhood", "Historic Alfama, close to Miradouro de Santa Luzia."),
        Section("Check-in and check-out", "Check-in from 15:00. Check-out by 10:00."),
        Section(
            "Arrival and access",
            "Self check-in with a keypad on the street door; the code is sent 48 hours before arrival.",
            is_access=True,
        ),
        Section("Amenities", "Amenities: Wireless Internet, Kitchen, Washer, Air conditioning, Elevator."),
        Section("House rules", "No parties. Quiet hours 22:00-08:00. No smoking indoors."),
        Section("Wi-Fi", "Wi-Fi is available at the property."),
    )


def test_listing_sections_mark_wifi_password_and_codes_as_access() -> None:
    listing = Listing.model_validate(load("listing.new-access")["listing"])
    sections = {s.heading: s for s in listing_sections(listing)}
    assert sections["Wi-Fi network and password"] == Section(
        "Wi-Fi network and password", "Wi-Fi network: Ribeira-Guest\nWi-Fi password: douro-sunset-77", is_access=True
    )
    assert sections["Door and key-box codes"] == Section(
        "Door and key-box codes", "Door code: 4821#\nKey box code: 0930", is_access=True
    )
    assert sections["Parking"] == Section(
        "Parking",
        "Parking: Paid parking off premises.\n\nStreet parking is hard to find; the Garagem Ribeira car "
        "park is 200 m away.",
    )
    assert sections["Overview"].text.startswith(
        "Riverside studio in Ribeira: Apartment (Entire home/apartment), up to 2 guests, 0 bedrooms, 1 bathroom."
    )
    assert [s.heading for s in listing_sections(listing) if s.is_access] == [
        "Wi-Fi network and password",
        "Door and key-box codes",
    ]
    # The exact address is alone in the one private section; neighbourhood and transit stay open.
    assert [(s.heading, s.text) for s in listing_sections(listing) if s.is_private] == [
        ("Address", "Address: Cais da Ribeira 22, 4050-510 Porto, Portugal")
    ]
    assert not any("Cais da Ribeira 22" in s.text for s in listing_sections(listing) if not s.is_private)
    # No secret leaks into an unmarked section.
    for section in listing_sections(listing):
        if not section.is_access:
            assert "douro-sunset-77" not in section.text and "4821" not in section.text


def test_listing_document_is_the_property_knowledge() -> None:
    listing = Listing.model_validate(load("listing.updated")["listing"])
    doc = listing_document(listing, "lis-alfama-2b")
    assert (doc.source, doc.property_code, doc.title) == (
        "guesty:listing:64f0b21c9d3e7a0035c1e982",
        "lis-alfama-2b",
        PROPERTY,
    )
    assert len(doc.sections) == 8


def test_arrival_fields_outside_the_typed_model_are_access_sections() -> None:
    raw = load("listing.updated-arrival")["listing"]
    assert access_fields(raw) == [
        ("Check in instructions", "Key safe to the left of the Haustür; open it with 1 9 7 3."),
        ("Gate code", "5520"),
        ("WLAN-Passwort", "Spree!Blick"),
    ]
    listing = Listing.model_validate(raw)
    sections = {s.heading: s for s in listing_sections(listing, raw)}
    assert sections["Check in instructions"].is_access and sections["Gate code"].is_access
    assert sections["WLAN-Passwort"] == Section("WLAN-Passwort", "Spree!Blick", is_access=True)
    # What guests may use is in the access field too: gated with it (the module docstring says why).
    assert sections["Arrival and access"].is_access
    # Unnamed, unrelated and flag-valued custom fields are not indexed.
    assert not any(t in s.text for s in sections.values() for t in ("Bell 3B", "Extra towels", "True"))
    # Without the raw listing only the typed fields count.
    assert "Gate code" not in {s.heading for s in listing_sections(listing)}
    assert listing_document(listing, "ber-mitte-3", raw).sections == tuple(sections.values())


def test_a_code_typed_into_open_listing_text_is_still_gated_by_the_knowledge_layer() -> None:
    raw = load("listing.updated-arrival")["listing"]
    document = listing_document(Listing.model_validate(raw), "ber-mitte-3", raw)
    gates = {c.heading: c.gate for c in chunk_document(document, collection="kb", model_id="m")}
    assert gates["Other notes"] == "access"  # "Door: 4821" in publicDescription.notes
    assert gates["Overview"] == gates["House rules"] == gates["Check-in and check-out"] == "open"
    for section in document.sections:
        if not section.is_access and gates[section.heading or ""] == "open":
            assert not any(secret in section.text for secret in ("4821", "1 9 7 3", "5520", "Spree!Blick"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ({}, []),
        ({"arrivalInstructions": "Ring 3B.", "defaultCheckInTime": "15:00"}, [("Arrival instructions", "Ring 3B.")]),
        ({"alarmPin": 9911, "countryCode": "PT", "keyFeatures": "Balcony"}, [("Alarm pin", "9911")]),
        (
            {
                "customFields": [
                    {"name": "Postal code", "value": "1100-148"},
                    {"name": "Código do portão", "value": "77"},
                ]
            },
            [("Código do portão", "77")],
        ),
        ({"customFields": "not a list"}, []),
        ({"customFields": [{"name": "Check-in instructions", "value": {"nested": 1}}, "junk"]}, []),
    ],
)
def test_access_fields_by_name(raw: dict[str, object] | None, expected: list[tuple[str, str]]) -> None:
    assert access_fields(raw) == expected
