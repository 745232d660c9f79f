"""Pure: one plain source record -> the row our mirrors would write for it, or the rule it breaks.

Calls go through Aircall's own `snapshot` (a call document counts as an API read of the call, a stored
webhook delivery as that event), reservations and listings through Guesty's `reservation_row` and
`property_row`, so an imported record means exactly what the same payload means as a webhook. What no
webhook could carry is refused here with a rule name: a malformed date, a check-out before its check-in,
a negative duration, a record without its id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from integrations.aircall.models import AircallCall, AircallWebhook
from integrations.aircall.transforms import API_SNAPSHOT, CALL_EVENTS, CallSnapshot, snapshot
from integrations.chatwoot.contacts import normalize_email, normalize_phone
from integrations.guesty.models import LISTING_EVENTS, RESERVATION_EVENTS, Listing, Reservation, ReservationEvent
from integrations.guesty.transforms import PropertyRow, ReservationRow, property_row, reservation_row

CALL_TIME_FIELDS = ("started_at", "answered_at", "ended_at")
SYSTEM_AUTHOR = "system"


@dataclass(frozen=True)
class Rejected:
    """A record that breaks a rule: kept in import_errors with the rule and the reason."""

    rule: str  # malformed_date | unreadable | required | check_out_before_check_in | negative_duration | ...
    reason: str
    key: str | None = None


@dataclass(frozen=True)
class CallRecord:
    key: str
    snapshot: CallSnapshot
    kind: str = "call"


@dataclass(frozen=True)
class ReservationRecord:
    key: str
    row: ReservationRow
    kind: str = "reservation"


@dataclass(frozen=True)
class ListingRecord:
    key: str
    row: PropertyRow
    kind: str = "listing"


@dataclass(frozen=True)
class RoomRecord:
    """A RocketChat room as a row of archived_conversations."""

    key: str
    room_type: str | None
    name: str | None
    contact_name: str | None
    contact_email: str | None
    contact_phone: str | None
    started_at: datetime | None
    last_message_at: datetime | None
    closed_at: datetime | None
    raw: dict[str, Any]
    kind: str = "room"


@dataclass(frozen=True)
class MessageRecord:
    """A RocketChat message as a row of archived_messages."""

    key: str
    room_id: str
    author: str | None
    author_kind: str  # guest | agent | system
    body: str | None
    sent_at: datetime | None
    raw: dict[str, Any]
    kind: str = "message"


Mapped = CallRecord | ReservationRecord | ListingRecord | RoomRecord | MessageRecord


class _Malformed(ValueError):
    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


def fingerprint(kind: str, data: dict[str, Any]) -> str:
    """What makes two records the same record: their kind and content, whatever their place."""
    blob = json.dumps([kind, data], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def content(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The part of a record that says something: a storage `_id` next to Aircall's own id is not."""
    if kind == "call" and "_id" in data and ("id" in data or "data" in data):
        return {k: v for k, v in data.items() if k != "_id"}
    return data


def to_record(kind: str, data: dict[str, Any], source_id: str | None) -> Mapped | Rejected:
    """The row for one record of `kind` (after the mapping's renames)."""
    try:
        if kind == "call":
            return _call(data, source_id)
        if kind == "reservation":
            return _reservation(data, source_id, stamp=None)
        if kind == "listing":
            return _listing(data, source_id)
        if kind == "guesty_event":
            return _guesty_event(data, source_id)
        if kind == "room":
            return _room(data, source_id)
        if kind == "message":
            return _message(data, source_id)
    except _Malformed as exc:
        return Rejected(exc.rule, exc.reason, _guess_key(kind, data, source_id))
    except ValidationError as exc:
        return Rejected(*_explain(exc), _guess_key(kind, data, source_id))
    raise ValueError(f"unknown kind {kind!r}")


# ---------------------------------------------------------------------------------------------- calls


def _call(data: dict[str, Any], source_id: str | None) -> CallRecord | Rejected:
    data = content("call", data)
    if isinstance(data.get("event"), str) and isinstance(data.get("data"), dict):
        envelope = AircallWebhook.model_validate({**data, "timestamp": _unix(data.get("timestamp"), "timestamp")})
        if envelope.event not in CALL_EVENTS:
            return Rejected(
                "unsupported", f"Aircall event {envelope.event} is not imported", _str(envelope.data.get("id"))
            )
        event, stamp, call_data = envelope.event, envelope.timestamp, envelope.data
    else:
        event, call_data, stamp = API_SNAPSHOT, data, 0
    call_data = {**call_data, **{f: _unix(call_data[f], f) for f in CALL_TIME_FIELDS if f in call_data}}
    if "id" not in call_data and source_id and source_id.isdigit():
        call_data["id"] = int(source_id)
    call = AircallCall.model_validate(call_data)
    if event == API_SNAPSHOT:
        stamp = max((t for t in (call.ended_at, call.answered_at, call.started_at) if t), default=0)
    if call.duration is not None and call.duration < 0:
        return Rejected("negative_duration", f"duration {call.duration} s is negative", str(call.id))
    if call.started_at and call.ended_at and call.ended_at < call.started_at:
        return Rejected("ended_before_started", "the call ended before it started", str(call.id))
    return CallRecord(str(call.id), snapshot(call, event, stamp, call_data))


def _unix(value: Any, name: str) -> int | None:
    """Seconds since the epoch from what old systems stored: seconds, milliseconds, or an ISO string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value / 1000) if value > 10**11 else int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _unix(int(text), name)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _Malformed("malformed_date", f"{name}: {value!r} is not a date") from None
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    raise _Malformed("malformed_date", f"{name}: {value!r} is not a date")


# ---------------------------------------------------------------------------------------------- Guesty


def _reservation(data: dict[str, Any], source_id: str | None, *, stamp: datetime | None) -> Mapped | Rejected:
    res = Reservation.model_validate(data)
    if res.id is None and source_id:
        res = res.model_copy(update={"id": source_id})
    missing = [
        name
        for name, value in (
            ("_id", res.id),
            ("status", res.status),
            ("checkIn", res.check_in),
            ("checkOut", res.check_out),
            ("listingId", res.effective_listing_id),
        )
        if not value
    ]
    if missing:
        return Rejected("required", "missing " + ", ".join(missing), res.id)
    assert res.check_in is not None and res.check_out is not None and res.id is not None
    if res.check_out <= res.check_in:
        return Rejected(
            "check_out_before_check_in",
            f"check-out {res.check_out.isoformat()} is not after check-in {res.check_in.isoformat()}",
            res.id,
        )
    return ReservationRecord(res.id, reservation_row(res, stamp=stamp, raw=data))


def _listing(data: dict[str, Any], source_id: str | None) -> ListingRecord | Rejected:
    listing = Listing.model_validate(data)
    if listing.id is None and source_id:
        listing = listing.model_copy(update={"id": source_id})
    if not listing.id:
        return Rejected("required", "missing _id")
    return ListingRecord(listing.id, property_row(listing, raw=data))


def _guesty_event(data: dict[str, Any], source_id: str | None) -> Mapped | Rejected:
    event = data.get("event")
    if event in RESERVATION_EVENTS:
        parsed = ReservationEvent.model_validate(data)
        inner = data.get("reservation")
        if not isinstance(inner, dict):
            return Rejected("unsupported", f"{event} carries only ids, not the reservation", parsed.reservation_id())
        return _reservation(inner, None, stamp=parsed.ordering_stamp())
    if event in ("listing.new", "listing.updated") and isinstance(data.get("listing"), dict):
        return _listing(data["listing"], None)
    reason = f"Guesty event {event} is not imported" if event in LISTING_EVENTS or event else "not a Guesty event"
    return Rejected("unsupported", reason)


# ------------------------------------------------------------------------------------------ RocketChat


def _room(data: dict[str, Any], source_id: str | None) -> RoomRecord | Rejected:
    room_id = _str(data.get("_id")) or source_id
    if not room_id:
        return Rejected("required", "missing _id")
    visitor = _dict(data.get("v"))
    emails, phones = _list(visitor.get("visitorEmails")), _list(visitor.get("phone"))
    email = next((normalize_email(e.get("address")) for e in emails if isinstance(e, dict)), None)
    phone = next((normalize_phone(p.get("phoneNumber")) for p in phones if isinstance(p, dict)), None)
    last = data.get("lm")
    return RoomRecord(
        key=room_id,
        room_type=_str(data.get("t")),
        name=_str(data.get("fname")) or _str(data.get("name")),
        contact_name=_str(visitor.get("name")) or _str(data.get("fname")) or _str(visitor.get("username")),
        contact_email=email,
        contact_phone=phone,
        started_at=_moment(data.get("ts"), "ts"),
        last_message_at=_moment(last, "lm"),
        closed_at=_moment(data.get("closedAt"), "closedAt"),
        raw=data,
    )


def _message(data: dict[str, Any], source_id: str | None) -> MessageRecord | Rejected:
    message_id = _str(data.get("_id")) or source_id
    room_id = _str(data.get("rid"))
    if not message_id or not room_id:
        return Rejected(
            "required",
            "missing " + " and ".join(n for n, v in (("_id", message_id), ("rid", room_id)) if not v),
            message_id,
        )
    user = _dict(data.get("u"))
    kind = SYSTEM_AUTHOR if data.get("t") else "guest" if data.get("token") else "agent"
    return MessageRecord(
        key=message_id,
        room_id=room_id,
        author=_str(user.get("name")) or _str(user.get("username")),
        author_kind=kind,
        body=_str(data.get("msg")),
        sent_at=_moment(data.get("ts"), "ts"),
        raw=data,
    )


# --------------------------------------------------------------------------------------------- helpers


def _moment(value: Any, name: str) -> datetime | None:
    seconds = _unix(value, name)
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _guess_key(kind: str, data: dict[str, Any], source_id: str | None) -> str | None:
    """The record's id for the error report, read leniently from what did not parse."""
    if kind == "call":
        inner = _dict(data.get("data")) or data
        return _str(inner.get("id")) or source_id
    if kind == "guesty_event":
        event = _dict(data.get("reservation")) or _dict(data.get("listing"))
        return _str(event.get("_id")) or source_id
    return _str(data.get("_id")) or _str(data.get("id")) or source_id


def _explain(exc: ValidationError) -> tuple[str, str]:
    """(rule, reason) of a payload the models refuse: a malformed date, or anything else unreadable."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    kind = str(first.get("type", ""))
    if "date" in kind or "time" in kind:
        return "malformed_date", f"{where}: {first.get('input')!r} is not a date"
    return "unreadable", f"{where}: {first.get('msg')}"
