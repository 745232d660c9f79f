"""Typed Guesty payloads: webhook envelopes and the reservation, listing and guest objects.

Parse at the edge, every field optional: deliveries vary by generation (legacy `reservation.new` carries
the whole reservation, the 2026 `.v2` events are lean and carry little more than ids) and the Open API
returns the same objects with more or fewer fields depending on the projection. The v2 envelope's exact
shape is not documented, so the id is looked for in each place integrators have seen it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

# Statuses after which a reservation no longer holds the dates (Guesty spells it "canceled").
CANCELED_STATUSES = frozenset({"canceled", "cancelled", "declined", "closed", "expired"})

RESERVATION_EVENTS = frozenset(
    {
        "reservation.new",
        "reservation.updated",
        "reservation_update_shortlist",
        "reservation.created.v2",
        "reservation.updated.v2",
    }
)
LISTING_EVENTS = frozenset({"listing.new", "listing.updated", "listing.removed"})
GUEST_EVENTS = frozenset({"guest.created", "guest.updated"})  # guest.deleted: bookings keep their guest
SUPPORTED_EVENTS = RESERVATION_EVENTS | LISTING_EVENTS | GUEST_EVENTS


class GuestyModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Address(GuestyModel):
    full: str | None = None
    street: str | None = None
    city: str | None = None
    zipcode: str | None = None
    state: str | None = None
    country: str | None = None
    lat: float | None = None
    lng: float | None = None

    def one_line(self) -> str | None:
        if self.full:
            return self.full
        parts = [p for p in (self.street, self.zipcode, self.city, self.country) if p]
        return ", ".join(parts) or None


class PublicDescription(GuestyModel):
    summary: str | None = None
    space: str | None = None
    access: str | None = None
    neighborhood: str | None = None
    transit: str | None = None
    notes: str | None = None
    interaction_with_guests: str | None = Field(default=None, alias="interactionWithGuests")
    house_rules: str | None = Field(default=None, alias="houseRules")


class Listing(GuestyModel):
    """A Guesty listing (property). The Wi-Fi and door-code fields are not in Guesty's published
    listing example; they are read when an account carries them (names seen in integrations) [U]."""

    id: str | None = Field(default=None, alias="_id")
    nickname: str | None = None
    title: str | None = None
    active: bool | None = None
    is_listed: bool | None = Field(default=None, alias="isListed")
    property_type: str | None = Field(default=None, alias="propertyType")
    room_type: str | None = Field(default=None, alias="roomType")
    accommodates: int | None = None
    bedrooms: float | None = None
    bathrooms: float | None = None
    timezone: str | None = None
    default_check_in_time: str | None = Field(default=None, alias="defaultCheckInTime")
    default_check_out_time: str | None = Field(default=None, alias="defaultCheckOutTime")
    address: Address | None = None
    public_description: PublicDescription | None = Field(default=None, alias="publicDescription")
    amenities: list[str] = Field(default_factory=list)
    wifi_name: str | None = Field(default=None, validation_alias=AliasChoices("wifiName", "wifi_name"))
    wifi_password: str | None = Field(default=None, validation_alias=AliasChoices("wifiPassword", "wifi_password"))
    door_code: str | None = Field(default=None, validation_alias=AliasChoices("doorCode", "door_code"))
    keybox_code: str | None = Field(
        default=None, validation_alias=AliasChoices("keyboxCode", "lockboxCode", "keyBoxCode", "keybox_code")
    )
    last_updated_at: datetime | None = Field(default=None, alias="lastUpdatedAt")

    @field_validator("amenities", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> list[str]:
        return [str(v) for v in value if isinstance(v, str) and v.strip()] if isinstance(value, list) else []

    @property
    def display_name(self) -> str | None:
        return self.title or self.nickname


class Integration(GuestyModel):
    id: str | None = Field(default=None, alias="_id")
    platform: str | None = None


class Money(GuestyModel):
    currency: str | None = None
    total_price: float | None = Field(default=None, alias="totalPrice")
    sub_total_price: float | None = Field(default=None, alias="subTotalPrice")
    fare_accommodation: float | None = Field(default=None, alias="fareAccommodation")
    fare_cleaning: float | None = Field(default=None, alias="fareCleaning")
    host_payout: float | None = Field(default=None, alias="hostPayout")
    total_paid: float | None = Field(default=None, alias="totalPaid")
    balance_due: float | None = Field(default=None, alias="balanceDue")

    def guest_total(self) -> float | None:
        """What the stay costs the guest: the total when given, else the subtotal, else fare + cleaning."""
        if self.total_price is not None:
            return self.total_price
        if self.sub_total_price is not None:
            return self.sub_total_price
        if self.fare_accommodation is not None:
            return self.fare_accommodation + (self.fare_cleaning or 0)
        return None


def _contact_values(value: Any, key: str) -> list[str]:
    """Guesty lists emails/phones as strings or as objects with the value under `key`."""
    out: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        elif isinstance(item, dict) and isinstance(item.get(key), str) and item[key].strip():
            out.append(item[key].strip())
    return out


class Guest(GuestyModel):
    id: str | None = Field(default=None, alias="_id")
    full_name: str | None = Field(default=None, alias="fullName")
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    email: str | None = None
    phone: str | None = None
    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)

    @field_validator("emails", mode="before")
    @classmethod
    def _emails(cls, value: Any) -> list[str]:
        return _contact_values(value, "email")

    @field_validator("phones", mode="before")
    @classmethod
    def _phones(cls, value: Any) -> list[str]:
        return _contact_values(value, "phone")

    @property
    def name(self) -> str | None:
        if self.full_name:
            return self.full_name.strip() or None
        joined = " ".join(p for p in (self.first_name, self.last_name) if p).strip()
        return joined or None

    @property
    def best_email(self) -> str | None:
        return self.email or (self.emails[0] if self.emails else None)

    @property
    def best_phone(self) -> str | None:
        return self.phone or (self.phones[0] if self.phones else None)


class ListingRef(GuestyModel):
    """The listing summary embedded in many reservation deliveries."""

    id: str | None = Field(default=None, alias="_id")
    nickname: str | None = None
    title: str | None = None
    timezone: str | None = None
    address: Address | None = None


class Reservation(GuestyModel):
    id: str | None = Field(default=None, validation_alias=AliasChoices("_id", "id"))
    confirmation_code: str | None = Field(default=None, alias="confirmationCode")
    status: str | None = None
    source: str | None = None
    integration: Integration | None = None
    listing_id: str | None = Field(default=None, alias="listingId")
    listing: ListingRef | None = None
    guest_id: str | None = Field(default=None, alias="guestId")
    guest: Guest | None = None
    check_in: datetime | None = Field(default=None, alias="checkIn")
    check_out: datetime | None = Field(default=None, alias="checkOut")
    check_in_local: date | None = Field(default=None, alias="checkInDateLocalized")
    check_out_local: date | None = Field(default=None, alias="checkOutDateLocalized")
    planned_arrival: str | None = Field(default=None, alias="plannedArrival")
    planned_departure: str | None = Field(default=None, alias="plannedDeparture")
    nights_count: int | None = Field(default=None, alias="nightsCount")
    guests_count: int | None = Field(default=None, alias="guestsCount")
    money: Money | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")
    last_updated_at: datetime | None = Field(default=None, alias="lastUpdatedAt")

    @property
    def effective_listing_id(self) -> str | None:
        return self.listing_id or (self.listing.id if self.listing else None)

    @property
    def is_partial(self) -> bool:
        """Too little to mirror: the v2 events and some projections carry only ids and a status."""
        return not (self.id and self.status and self.check_in and self.check_out and self.effective_listing_id)

    @property
    def channel(self) -> str | None:
        return (self.integration.platform if self.integration else None) or self.source


def _first_str(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class ReservationEvent(GuestyModel):
    """Any reservation event, legacy (`reservation` object) or v2 (`data` with ids, `publishedAt`)."""

    event: str
    reservation: Reservation | None = None
    data: dict[str, Any] | None = None
    reservation_id_field: str | None = Field(default=None, alias="reservationId")
    published_at: datetime | None = Field(default=None, alias="publishedAt")

    @property
    def is_v2(self) -> bool:
        return self.event.endswith(".v2")

    def reservation_id(self) -> str | None:
        data = _dict(self.data)
        nested = _dict(data.get("reservation"))
        return _first_str(
            self.reservation.id if self.reservation else None,
            self.reservation_id_field,
            nested.get("_id"),
            nested.get("id"),
            data.get("reservationId"),
            data.get("_id"),
            data.get("id"),
        )

    def ordering_stamp(self) -> datetime | None:
        """When this version of the reservation was made: lastUpdatedAt (legacy) or publishedAt (v2)."""
        if self.reservation and self.reservation.last_updated_at:
            return self.reservation.last_updated_at
        if self.published_at:
            return self.published_at
        raw = _dict(self.data).get("publishedAt")
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return None
        return None


class ListingEvent(GuestyModel):
    event: str
    listing: Listing | None = None
    listing_id_field: str | None = Field(default=None, alias="listingId")
    data: dict[str, Any] | None = None

    def listing_id(self) -> str | None:
        data = _dict(self.data)
        return _first_str(
            self.listing.id if self.listing else None,
            self.listing_id_field,
            _dict(data.get("listing")).get("_id"),
            _dict(data.get("listing")).get("id"),
            data.get("listingId"),
            data.get("_id"),
        )


class GuestEvent(GuestyModel):
    event: str
    guest: Guest | None = None
