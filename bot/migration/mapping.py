"""Which old collection is which of our kinds, and where an old system kept the fields we read.

A mapping file (YAML or TOML) extends the default below; an operator names only what differs:

    [collections]                 # their collection -> call | reservation | listing | guesty_event | room | message
    phone_log = "call"

    [fields.reservation]          # our field, as Guesty names it = their field (dotted paths reach inside)
    checkIn = "arrival"
    "guest.fullName" = "customer.name"

Fields are copied before parsing, so the renamed record goes through the same models and rules as a
webhook. Collections mapped to nothing (RocketChat's users, sessions ...) are skipped and reported, and
their records are never stored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("call", "reservation", "listing", "guesty_event", "room", "message")

DEFAULT_COLLECTIONS: dict[str, str] = {
    # Aircall: call objects, or whole webhook deliveries ({"event", "timestamp", "data"})
    "calls": "call",
    "aircall_calls": "call",
    "aircallcalls": "call",
    "aircall_events": "call",
    "aircallevents": "call",
    "call_events": "call",
    # Guesty: reservation and listing objects, or whole webhook deliveries
    "reservations": "reservation",
    "guesty_reservations": "reservation",
    "guestyreservations": "reservation",
    "listings": "listing",
    "guesty_listings": "listing",
    "guestylistings": "listing",
    "guesty_events": "guesty_event",
    "guestyevents": "guesty_event",
    "guesty_webhooks": "guesty_event",
    # RocketChat (Omnichannel): rooms and their messages
    "rocketchat_room": "room",
    "rocketchat_message": "message",
}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Mapping:
    collections: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLLECTIONS))
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> our path -> their path

    def kind_of(self, collection: str) -> str | None:
        return self.collections.get(collection) or self.collections.get(collection.lower())

    def rename(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """The record with our fields filled from theirs (a field we already have is overwritten)."""
        renames = self.fields.get(kind)
        if not renames:
            return data
        out = dict(data)
        for ours, theirs in renames.items():
            found, value = _get(data, theirs)
            if found:
                _set(out, ours, value)
        return out


def load_mapping(path: Path | None) -> Mapping:
    """The default mapping, extended by the file at `path` (.toml, .yaml or .yml) when given."""
    if path is None:
        return Mapping()
    try:
        text = path.read_text(encoding="utf-8")
        loaded = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise MappingError(f"mapping file {path}: {exc}") from None
    return mapping_from(loaded or {}, str(path))


def mapping_from(loaded: Any, where: str = "mapping") -> Mapping:
    if not isinstance(loaded, dict):
        raise MappingError(f"{where}: expected tables `collections` and `fields`")
    unknown = set(loaded) - {"collections", "fields"}
    if unknown:
        raise MappingError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
    collections = dict(DEFAULT_COLLECTIONS)
    for name, kind in (loaded.get("collections") or {}).items():
        if kind not in KINDS:
            raise MappingError(f"{where}: collections.{name} = {kind!r}; use one of {', '.join(KINDS)}")
        collections[str(name)] = str(kind)
    fields: dict[str, dict[str, str]] = {}
    for kind, renames in (loaded.get("fields") or {}).items():
        if kind not in KINDS or not isinstance(renames, dict):
            raise MappingError(f"{where}: fields.{kind} must be a table of a kind ({', '.join(KINDS)})")
        fields[str(kind)] = {str(ours): str(theirs) for ours, theirs in renames.items()}
    return Mapping(collections, fields)


def _get(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    target = data
    for part in parts[:-1]:
        inner = target.get(part)
        inner = dict(inner) if isinstance(inner, dict) else {}
        target[part] = inner
        target = inner
    target[parts[-1]] = value
