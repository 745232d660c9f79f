"""Pure transforms: Guesty objects -> database rows, Chatwoot notes and attributes, knowledge sections.

Nothing here does I/O, so every rule (what counts as a change, the exact note texts, which listing facts
are access details) is tested to the letter without a database or a network.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.knowledge.models import Document, Section
from integrations.chatwoot.contacts import normalize_email, normalize_phone
from integrations.guesty.models import CANCELED_STATUSES, Listing, ListingRef, Reservation

# --------------------------------------------------------------------------- note templates

NOTE_CREATED = (
    "New Guesty booking {code} at {property}: check-in {check_in}, check-out {check_out}, {guests}, "
    "status {status}, via {channel}."
)
NOTE_CHANGED = "Guesty booking {code} at {property} changed: {changes}."
NOTE_CANCELED = "Guesty booking {code} at {property} ({check_in} to {check_out}) is now {status}."
CHANGE_CHECK_IN = "check-in {old} → {new}"
CHANGE_CHECK_OUT = "check-out {old} → {new}"
CHANGE_GUESTS = "guests {old} → {new}"
CHANGE_STATUS = "status {old} → {new}"
UNKNOWN = "?"

# --------------------------------------------------------------------------- reservations


@dataclass(frozen=True)
class ReservationRow:
    """The values we mirror into `reservations` (property_code is resolved by the handler)."""

    guesty_id: str
    confirmation_code: str | None
    listing_id: str | None
    guest_id: str | None
    status: str
    check_in_at: datetime | None
    check_out_at: datetime | None
    check_in_local: date | None
    check_out_local: date | None
    planned_arrival: str | None
    planned_departure: str | None
    guest_name: str | None
    guest_email: str | None
    guest_phone: str | None
    guests_count: int | None
    channel: str | None
    currency: str | None
    total_price: float | None
    source_updated_at: datetime | None
    raw: dict[str, Any]

    @property
    def code(self) -> str:
        return self.confirmation_code or self.guesty_id


@dataclass(frozen=True)
class StoredReservation:
    """What the note rules compare against: the row as it was before this event."""

    status: str
    check_in_local: date | None
    check_out_local: date | None
    guests_count: int | None
    source_updated_at: datetime | None


@dataclass(frozen=True)
class PlannedNote:
    """A private note to post once: reply_key is the ledger key that makes redelivery harmless."""

    reply_key: str
    kind: str  # created | changed | canceled
    text: str


def is_canceled(status: str | None) -> bool:
    return (status or "").lower() in CANCELED_STATUSES


def local_date(moment: datetime | None, timezone: str | None) -> date | None:
    """The calendar date at the listing, for payloads without checkInDateLocalized."""
    if moment is None:
        return None
    try:
        zone = ZoneInfo(timezone) if timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return moment.astimezone(zone).date() if zone else moment.date()


def reservation_row(res: Reservation, *, stamp: datetime | None, timezone: str | None = None,
                    raw: dict[str, Any] | None = None, default_region: str | None = None) -> ReservationRow:
    """Map a full reservation to its row. `stamp` orders versions (lastUpdatedAt, or v2 publishedAt)."""
    if not res.id or not res.status:
        raise ValueError("a reservation needs an _id and a status to be mirrored")
    zone = timezone or (res.listing.timezone if res.listing else None)
    guest = res.guest
    email = normalize_email(guest.best_email) if guest else None
    phone = normalize_phone(guest.best_phone, default_region) if guest and guest.best_phone else None
    money = res.money
    total = money.guest_total() if money else None
    return ReservationRow(
        guesty_id=res.id,
        confirmation_code=res.confirmation_code,
        listing_id=res.effective_listing_id,
        guest_id=res.guest_id or (guest.id if guest else None),
        status=res.status.lower(),
        check_in_at=res.check_in,
        check_out_at=res.check_out,
        check_in_local=res.check_in_local or local_date(res.check_in, zone),
        check_out_local=res.check_out_local or local_date(res.check_out, zone),
        planned_arrival=res.planned_arrival,
        planned_departure=res.planned_departure,
        guest_name=guest.name if guest else None,
        guest_email=email,
        guest_phone=phone,
        guests_count=res.guests_count,
        channel=res.channel,
        currency=money.currency if money else None,
        total_price=round(total, 2) if total is not None else None,
        source_updated_at=res.last_updated_at or stamp,
        raw=raw if raw is not None else res.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


def is_stale(stamp: datetime | None, stored: datetime | None) -> bool:
    """Only move forward: an event older than what we hold changes nothing (equal = redelivery)."""
    return stamp is not None and stored is not None and stamp < stored


def status_change(previous: StoredReservation | None, row: ReservationRow) -> tuple[str | None, str] | None:
    """(from, to) when the status moves (from None for a reservation seen for the first time)."""
    before = previous.status if previous else None
    return None if before == row.status else (before, row.status)


def _signature(*parts: Any) -> str:
    blob = json.dumps([str(p) if p is not None else None for p in parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _fmt(value: Any) -> str:
    return UNKNOWN if value is None else (value.isoformat() if isinstance(value, date) else str(value))


def guests_text(count: int | None) -> str:
    if count is None:
        return "guests not given"
    return "1 guest" if count == 1 else f"{count} guests"


def plan_notes(previous: StoredReservation | None, row: ReservationRow, property_name: str | None) -> list[PlannedNote]:
    """The private note this version deserves: created, canceled, or changed (dates, guests, status)."""
    fields = {"code": row.code, "property": property_name or row.listing_id or UNKNOWN,
              "check_in": _fmt(row.check_in_local), "check_out": _fmt(row.check_out_local),
              "guests": guests_text(row.guests_count), "status": row.status, "channel": row.channel or UNKNOWN}
    prefix = f"guesty:{row.guesty_id}"
    if previous is None:
        if is_canceled(row.status):
            return [PlannedNote(f"{prefix}:canceled:{_signature(row.status, row.source_updated_at)}", "canceled",
                                NOTE_CANCELED.format(**fields))]
        return [PlannedNote(f"{prefix}:created", "created", NOTE_CREATED.format(**fields))]
    if is_canceled(row.status):
        if is_canceled(previous.status):
            return []
        return [PlannedNote(f"{prefix}:canceled:{_signature(row.status, row.source_updated_at)}", "canceled",
                            NOTE_CANCELED.format(**fields))]
    changes = []
    if previous.check_in_local != row.check_in_local:
        changes.append(CHANGE_CHECK_IN.format(old=_fmt(previous.check_in_local), new=_fmt(row.check_in_local)))
    if previous.check_out_local != row.check_out_local:
        changes.append(CHANGE_CHECK_OUT.format(old=_fmt(previous.check_out_local), new=_fmt(row.check_out_local)))
    if previous.guests_count != row.guests_count and row.guests_count is not None:
        changes.append(CHANGE_GUESTS.format(old=_fmt(previous.guests_count), new=_fmt(row.guests_count)))
    if previous.status != row.status:
        changes.append(CHANGE_STATUS.format(old=previous.status, new=row.status))
    if not changes:
        return []
    signature = _signature(previous.status, previous.check_in_local, previous.check_out_local,
                           previous.guests_count, row.status, row.check_in_local, row.check_out_local,
                           row.guests_count, row.source_updated_at)
    return [PlannedNote(f"{prefix}:changed:{signature}", "changed",
                        NOTE_CHANGED.format(**fields, changes="; ".join(changes)))]


def contact_attributes(*, code: str, property_name: str | None, check_in: date | None, check_out: date | None,
                       status: str, guests_count: int | None) -> dict[str, Any]:
    """Chatwoot contact custom attributes describing the guest's booking (update_contact merges them)."""
    return {
        "reservation_code": code,
        "property_name": property_name,
        "check_in": check_in.isoformat() if check_in else None,
        "check_out": check_out.isoformat() if check_out else None,
        "reservation_status": status,
        "guests_count": guests_count,
    }


# --------------------------------------------------------------------------- listings


@dataclass(frozen=True)
class PropertyRow:
    """The values we mirror into `properties` (the code is chosen by the handler)."""

    guesty_listing_id: str
    name: str
    nickname: str | None
    address: str | None
    timezone: str | None
    check_in_time: str | None
    check_out_time: str | None
    active: bool
    source_updated_at: datetime | None
    raw: dict[str, Any]


def property_row(listing: Listing | ListingRef, raw: dict[str, Any] | None = None) -> PropertyRow:
    """A listing (full, or the summary embedded in a reservation) as a property row."""
    if not listing.id:
        raise ValueError("a listing needs an _id to be mirrored")
    full = listing if isinstance(listing, Listing) else None
    return PropertyRow(
        guesty_listing_id=listing.id,
        name=listing.title or listing.nickname or listing.id,
        nickname=listing.nickname,
        address=listing.address.one_line() if listing.address else None,
        timezone=listing.timezone,
        check_in_time=full.default_check_in_time if full else None,
        check_out_time=full.default_check_out_time if full else None,
        active=not (full and full.active is False),
        source_updated_at=full.last_updated_at if full else None,
        raw=raw if raw is not None else listing.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


def listing_source(listing_id: str) -> str:
    """The knowledge document id of a listing (vector_references.source)."""
    return f"guesty:listing:{listing_id}"


_PARKING = re.compile(r"\bpark(?:ing)?\b|\bgarage\b", re.IGNORECASE)
_WIFI = re.compile(r"wi-?fi|wireless|internet", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _plural(count: float | None, word: str) -> str | None:
    if count is None:
        return None
    number = int(count) if float(count).is_integer() else count
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _paragraphs(*texts: str | None) -> str:
    return "\n\n".join(t.strip() for t in texts if t and t.strip())


def listing_sections(listing: Listing) -> tuple[Section, ...]:
    """Listing facts as knowledge sections; Wi-Fi passwords and door/key-box codes are marked access, the
    exact address private (its own section, so the neighbourhood and transit stay open).

    Other sections are unmarked; the knowledge layer still flags a code an operator typed into a public
    description by hand (a marking can add the gate, never remove it).
    """
    desc = listing.public_description
    sections: list[Section] = []

    def add(heading: str, text: str, access: bool = False, private: bool = False) -> None:
        if text.strip():
            sections.append(Section(heading=heading, text=text.strip(), is_access=access, is_private=private))

    size = ", ".join(p for p in (
        f"up to {listing.accommodates} guests" if listing.accommodates else None,
        _plural(listing.bedrooms, "bedroom"), _plural(listing.bathrooms, "bathroom")) if p)
    kind = listing.property_type or "Property"
    if listing.room_type:
        kind = f"{kind} ({listing.room_type})"
    headline = (f"{listing.display_name}: {kind}" + (f", {size}" if size else "") + ".") if listing.display_name else ""
    add("Overview", _paragraphs(headline, desc.summary if desc else None, desc.space if desc else None))
    address = listing.address.one_line() if listing.address else None
    add("Address", f"Address: {address}" if address else "", private=True)
    add("Neighbourhood", _paragraphs(
        desc.neighborhood if desc else None,
        f"Getting around: {desc.transit}" if desc and desc.transit else None))
    times = [f"Check-in from {listing.default_check_in_time}." if listing.default_check_in_time else "",
             f"Check-out by {listing.default_check_out_time}." if listing.default_check_out_time else ""]
    add("Check-in and check-out", " ".join(t for t in times if t))
    add("Arrival and access", (desc.access or "") if desc else "")
    if listing.amenities:
        add("Amenities", "Amenities: " + ", ".join(listing.amenities) + ".")
    add("House rules", (desc.house_rules or "") if desc else "")
    parking_amenities = [a for a in listing.amenities if _PARKING.search(a)]
    parking_sentences = [s.strip() for t in ((desc.transit, desc.notes, desc.space) if desc else ())
                         if t for s in _SENTENCE.split(t) if _PARKING.search(s)]
    add("Parking", _paragraphs(
        ("Parking: " + ", ".join(parking_amenities) + ".") if parking_amenities else None, *parking_sentences))
    if listing.wifi_name or listing.wifi_password or any(_WIFI.search(a) for a in listing.amenities):
        add("Wi-Fi", "Wi-Fi is available at the property.")
    if listing.wifi_password:
        network = f"Wi-Fi network: {listing.wifi_name}\n" if listing.wifi_name else ""
        add("Wi-Fi network and password", f"{network}Wi-Fi password: {listing.wifi_password}", access=True)
    codes = [f"Door code: {listing.door_code}" if listing.door_code else "",
             f"Key box code: {listing.keybox_code}" if listing.keybox_code else ""]
    add("Door and key-box codes", "\n".join(c for c in codes if c), access=True)
    add("Other notes", _paragraphs(desc.notes if desc else None,
                                   desc.interaction_with_guests if desc else None))
    return tuple(sections)


def listing_document(listing: Listing, property_code: str) -> Document:
    """The knowledge document for one listing: the property's own facts, replaced on every update."""
    if not listing.id:
        raise ValueError("a listing needs an _id to be indexed")
    return Document(source=listing_source(listing.id), property_code=property_code, language=None,
                    sections=listing_sections(listing), title=listing.display_name)
