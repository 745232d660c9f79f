"""Pure transforms: Guesty objects -> database rows, Chatwoot notes and attributes, knowledge sections.

Nothing here does I/O, so every rule (what counts as a change, the exact note texts, which listing facts
are access details) is tested to the letter without a database or a network.

Which listing sections are access details (shown only to guests inside their stay's access window):

- Gated as a whole, whatever their text says: the Wi-Fi network and password (`wifiName`/`wifiPassword`),
  the door and key-box codes (`doorCode`, `keyboxCode`/`lockboxCode`), the arrival text
  (`publicDescription.access`, "Arrival and access"), and any other listing field about arriving and getting
  in (`access_fields`): top-level instruction fields such as `checkInInstructions` or `arrivalInstructions`,
  and named custom fields such as "Check-in instructions", "Gate code" or "Wi-Fi password". Operators write
  codes into these free-text fields in every form, so no pattern is trusted to find them; the price is that
  a harmless arrival text ("self check-in with a keypad") is answered only to guests close to their stay.
  Note that channels use the `access` field for what guests may use ("the whole flat and the terrace"):
  that text is gated too; write it in `space` to keep it open.
- The exact address is private (its own section, so the neighbourhood and transit stay open).
- Everything else (`summary`, `space`, `neighborhood`, `transit`, `notes`, `houseRules`,
  `interactionWithGuests`) is unmarked; the knowledge layer still gates a section in which an operator typed
  a code or password (`bot.knowledge.access.section_is_access`): a marking can add the gate, never remove it.
  Custom fields with other names are not indexed (they are as likely internal notes as guest facts).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.knowledge.access import heading_names_credential
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


def reservation_row(
    res: Reservation,
    *,
    stamp: datetime | None,
    timezone: str | None = None,
    raw: dict[str, Any] | None = None,
    default_region: str | None = None,
) -> ReservationRow:
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
    fields = {
        "code": row.code,
        "property": property_name or row.listing_id or UNKNOWN,
        "check_in": _fmt(row.check_in_local),
        "check_out": _fmt(row.check_out_local),
        "guests": guests_text(row.guests_count),
        "status": row.status,
        "channel": row.channel or UNKNOWN,
    }
    prefix = f"guesty:{row.guesty_id}"
    if previous is None:
        if is_canceled(row.status):
            return [
                PlannedNote(
                    f"{prefix}:canceled:{_signature(row.status, row.source_updated_at)}",
                    "canceled",
                    NOTE_CANCELED.format(**fields),
                )
            ]
        return [PlannedNote(f"{prefix}:created", "created", NOTE_CREATED.format(**fields))]
    if is_canceled(row.status):
        if is_canceled(previous.status):
            return []
        return [
            PlannedNote(
                f"{prefix}:canceled:{_signature(row.status, row.source_updated_at)}",
                "canceled",
                NOTE_CANCELED.format(**fields),
            )
        ]
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
    signature = _signature(
        previous.status,
        previous.check_in_local,
        previous.check_out_local,
        previous.guests_count,
        row.status,
        row.check_in_local,
        row.check_out_local,
        row.guests_count,
        row.source_updated_at,
    )
    return [
        PlannedNote(
            f"{prefix}:changed:{signature}", "changed", NOTE_CHANGED.format(**fields, changes="; ".join(changes))
        )
    ]


def contact_attributes(
    *,
    code: str,
    property_name: str | None,
    check_in: date | None,
    check_out: date | None,
    status: str,
    guests_count: int | None,
) -> dict[str, Any]:
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


# Listing fields about arriving and getting in, by name: "checkInInstructions", "Gate code", "Wi-Fi password".
_ACCESS_FIELD_NAME = re.compile(
    r"\b(?:check[\s_-]?in|arriv\w*|access|entry|entrance|self[\s_-]?check[\s_-]?in|doors?|gates?|keys?|locks?"
    r"|lockbox|keypad|wi-?fi|wlan|password|alarm|safe|chegada|acesso|llegada|acceso|anreise|zugang"
    r"|arriv[ée]e|acc[èe]s|arrivo|accesso|chaves?|llaves?|schl[üu]ssel\w*|cl[ée]s?|chiavi|senha|contrase[ñn]a"
    r"|\w*passwort|mot\s+de\s+passe)\b",
    re.IGNORECASE,
)
# Top-level raw keys count as instructions ("checkInInstructions", not the time "defaultCheckInTime") or as
# credentials ("gateCode", "alarmPin", "wifiPass").
_INSTRUCTION_KEY = re.compile(
    r"instruction|info|detail|note|direction|guide|text|(?:door|gate|alarm|lock|key|safe|entry|access|wi-?fi|wlan)"
    r"\w*(?:code|pin|pass)|password",
    re.IGNORECASE,
)
# Raw keys the typed model already turns into sections (or that are no guest text).
_MODEL_KEYS = frozenset(
    {
        "wifiName",
        "wifi_name",
        "wifiPassword",
        "wifi_password",
        "doorCode",
        "door_code",
        "keyboxCode",
        "lockboxCode",
        "keyBoxCode",
        "keybox_code",
        "publicDescription",
        "defaultCheckInTime",
        "defaultCheckOutTime",
        "customFields",
    }
)
_CUSTOM_FIELD_NAME_KEYS = ("name", "fieldName", "displayName", "title", "label", "key")


def _field_text(value: Any) -> str | None:
    """A custom field's value as text: strings and numbers (a gate code may be stored as 4821), not flags."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        return str(value).strip() or None
    return None


def _names_access(name: str) -> bool:
    """A field name about getting in: arrival words ("Check-in instructions") or a credential ("Gate code", not
    "Country code" or "Postal code")."""
    return _ACCESS_FIELD_NAME.search(name) is not None or heading_names_credential(name)


def _humanise(key: str) -> str:
    """A raw key as a heading: "checkInInstructions" -> "Check in instructions"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_-]+", " ", key).split()
    return " ".join(words).capitalize()


def access_fields(raw: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(heading, text) of the raw listing's fields about arriving and getting in that the typed model does not
    read: top-level instruction fields ("checkInInstructions") and custom fields whose name says so ("Gate
    code", "Check-in instructions"). Custom fields given only by `fieldId` carry no name and are skipped."""
    if not raw:
        return []
    found: list[tuple[str, str]] = []
    for key, value in raw.items():
        text = _field_text(value)
        name = _humanise(key)
        if text and key not in _MODEL_KEYS and _names_access(name) and _INSTRUCTION_KEY.search(key):
            found.append((name, text))
    custom = raw.get("customFields")
    for field in custom if isinstance(custom, list) else []:
        if not isinstance(field, Mapping):
            continue
        label = next((str(field[k]) for k in _CUSTOM_FIELD_NAME_KEYS if isinstance(field.get(k), str)), "")
        text = _field_text(field.get("value"))
        if label.strip() and text and _names_access(label):
            found.append((" ".join(label.split()), text))  # a name an operator wrote: kept as written
    return found


def listing_sections(listing: Listing, raw: Mapping[str, Any] | None = None) -> tuple[Section, ...]:
    """Listing facts as knowledge sections, gated as the module docstring says: Wi-Fi, codes, the arrival text
    and the raw listing's arrival/access fields (`access_fields(raw)`) are access, the exact address private.
    """
    desc = listing.public_description
    sections: list[Section] = []

    def add(heading: str, text: str, access: bool = False, private: bool = False) -> None:
        if text.strip():
            sections.append(Section(heading=heading, text=text.strip(), is_access=access, is_private=private))

    size = ", ".join(
        p
        for p in (
            f"up to {listing.accommodates} guests" if listing.accommodates else None,
            _plural(listing.bedrooms, "bedroom"),
            _plural(listing.bathrooms, "bathroom"),
        )
        if p
    )
    kind = listing.property_type or "Property"
    if listing.room_type:
        kind = f"{kind} ({listing.room_type})"
    headline = (f"{listing.display_name}: {kind}" + (f", {size}" if size else "") + ".") if listing.display_name else ""
    add("Overview", _paragraphs(headline, desc.summary if desc else None, desc.space if desc else None))
    address = listing.address.one_line() if listing.address else None
    add("Address", f"Address: {address}" if address else "", private=True)
    add(
        "Neighbourhood",
        _paragraphs(
            desc.neighborhood if desc else None, f"Getting around: {desc.transit}" if desc and desc.transit else None
        ),
    )
    times = [
        f"Check-in from {listing.default_check_in_time}." if listing.default_check_in_time else "",
        f"Check-out by {listing.default_check_out_time}." if listing.default_check_out_time else "",
    ]
    add("Check-in and check-out", " ".join(t for t in times if t))
    add("Arrival and access", (desc.access or "") if desc else "", access=True)
    if listing.amenities:
        add("Amenities", "Amenities: " + ", ".join(listing.amenities) + ".")
    add("House rules", (desc.house_rules or "") if desc else "")
    parking_amenities = [a for a in listing.amenities if _PARKING.search(a)]
    parking_sentences = [
        s.strip()
        for t in ((desc.transit, desc.notes, desc.space) if desc else ())
        if t
        for s in _SENTENCE.split(t)
        if _PARKING.search(s)
    ]
    add(
        "Parking",
        _paragraphs(
            ("Parking: " + ", ".join(parking_amenities) + ".") if parking_amenities else None, *parking_sentences
        ),
    )
    if listing.wifi_name or listing.wifi_password or any(_WIFI.search(a) for a in listing.amenities):
        add("Wi-Fi", "Wi-Fi is available at the property.")
    if listing.wifi_password:
        network = f"Wi-Fi network: {listing.wifi_name}\n" if listing.wifi_name else ""
        add("Wi-Fi network and password", f"{network}Wi-Fi password: {listing.wifi_password}", access=True)
    codes = [
        f"Door code: {listing.door_code}" if listing.door_code else "",
        f"Key box code: {listing.keybox_code}" if listing.keybox_code else "",
    ]
    add("Door and key-box codes", "\n".join(c for c in codes if c), access=True)
    add("Other notes", _paragraphs(desc.notes if desc else None, desc.interaction_with_guests if desc else None))
    taken = {s.heading for s in sections}
    for heading, text in access_fields(raw):
        add(heading if heading not in taken else f"{heading} (listing field)", text, access=True)
    return tuple(sections)


def listing_document(listing: Listing, property_code: str, raw: Mapping[str, Any] | None = None) -> Document:
    """The knowledge document for one listing: the property's own facts, replaced on every update. `raw` (the
    listing as Guesty sent it) adds its arrival/access fields that the typed model does not read."""
    if not listing.id:
        raise ValueError("a listing needs an _id to be indexed")
    return Document(
        source=listing_source(listing.id),
        property_code=property_code,
        language=None,
        sections=listing_sections(listing, raw),
        title=listing.display_name,
    )
