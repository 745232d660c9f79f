"""Old systems' typed values as plain JSON values: MongoDB Extended JSON / BSON and Firestore's REST `Value`.

Everything downstream (mapping, fingerprints, the rows' `raw`) sees one shape whatever the source:
str, int, float, bool, None, lists and dicts, with every date as an ISO 8601 UTC string ("...Z").
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp, json_util

_EXT_JSON = json_util.JSONOptions(tz_aware=True, tzinfo=dt.UTC, uuid_representation=4)


def iso(moment: dt.datetime) -> str:
    """A moment as ISO 8601 in UTC with a Z (naive means UTC, as BSON dates are)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    text = aware.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z").replace(".000Z", "Z")


def plain(value: Any) -> Any:
    """A BSON / Extended JSON value (ObjectId, datetime, Int64, Decimal128 ...) as a plain JSON value."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, json_util.DatetimeMS):
        return iso(value.as_datetime())
    if isinstance(value, Decimal128):
        return _number(value.to_decimal())
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, Timestamp):
        return iso(value.as_datetime())
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Binary | bytes):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Regex):
        return value.pattern if isinstance(value.pattern, str) else value.pattern.decode()
    if isinstance(value, DBRef):
        return str(value.id)
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, MinKey | MaxKey):
        return None
    return str(value)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() and abs(value) < 2**63 else float(value)


def from_extended_json(text: str) -> Any:
    """Parse relaxed or canonical Extended JSON ($oid, $date, $numberLong ...) into plain values."""
    return plain(json_util.loads(text, json_options=_EXT_JSON))


# ------------------------------------------------------------------------------------------- Firestore


class FirestoreValueError(ValueError):
    """A Firestore `Value` of no known type."""


def firestore_value(value: dict[str, Any]) -> Any:
    """One Firestore REST `Value` ({"stringValue": "x"}, {"mapValue": {"fields": ...}} ...) as a plain value."""
    if not isinstance(value, dict) or len(value) != 1:
        raise FirestoreValueError(f"not a Firestore value: {json.dumps(value)[:80]}")
    ((kind, inner),) = value.items()
    if kind in ("stringValue", "referenceValue"):
        return inner
    if kind == "integerValue":
        return int(inner)
    if kind == "doubleValue":
        return float(inner)
    if kind == "booleanValue":
        return bool(inner)
    if kind == "nullValue":
        return None
    if kind == "timestampValue":
        return iso(dt.datetime.fromisoformat(str(inner).replace("Z", "+00:00")))
    if kind == "bytesValue":
        return inner
    if kind == "geoPointValue":
        return {"latitude": inner.get("latitude", 0.0), "longitude": inner.get("longitude", 0.0)}
    if kind == "mapValue":
        return firestore_fields(inner.get("fields") or {})
    if kind == "arrayValue":
        return [firestore_value(v) for v in inner.get("values") or []]
    raise FirestoreValueError(f"unknown Firestore value type {kind!r}")


def firestore_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A document's (or map's) `fields` as a plain dict."""
    return {name: firestore_value(v) for name, v in fields.items()}
