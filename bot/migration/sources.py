"""Read export files into plain records, one at a time, from any position (so a run can resume).

MongoDB: `mongoexport` output (JSON lines or one JSON array, relaxed or canonical Extended JSON) and
`mongodump` `.bson` files; the collection is the file's name (`calls.json`, `dump/db/calls.bson`).
Firestore: REST `Document`s (`name`, `fields`) as a JSON array, JSON lines, or a `documents.list` page
({"documents": [...], "nextPageToken": ...}); the collection is the parent of each document's name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import bson

from bot.migration.values import firestore_fields, from_extended_json, plain

Format = Literal["mongodb", "firestore"]
SUFFIXES: dict[str, tuple[str, ...]] = {
    "mongodb": (".json", ".jsonl", ".ndjson", ".bson"),
    "firestore": (".json", ".jsonl", ".ndjson"),
}


class SourceError(ValueError):
    """A file that cannot be read as the format it was given as."""


@dataclass(frozen=True)
class SourceRecord:
    """One document of an export: where it is, which collection it belongs to, its id and its fields."""

    position: int  # 0-based index in its file
    collection: str
    source_id: str | None  # MongoDB `_id`, or the Firestore document id
    data: dict[str, Any] | None  # None when the record could not be decoded (`error` says why)
    error: str | None = None


@dataclass(frozen=True)
class SourceFile:
    path: Path
    fmt: Format

    @property
    def source(self) -> str:
        """The file's name in checkpoints and the ledger: moving the export folder keeps it."""
        return f"{self.fmt}:{self.path.name}"

    @property
    def collection(self) -> str:
        name = self.path.name
        for suffix in (".metadata.json", *SUFFIXES[self.fmt]):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return self.path.stem


def discover(path: Path, fmt: Format) -> list[SourceFile]:
    """The export files at PATH: the file itself, or every file of the format under the folder, sorted."""
    if path.is_file():
        return [SourceFile(path, fmt)]
    if not path.is_dir():
        raise SourceError(f"{path} is neither a file nor a folder")
    found = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name.endswith(SUFFIXES[fmt]) and not p.name.endswith(".metadata.json")
    ]
    return [SourceFile(p, fmt) for p in found]


def fingerprint_file(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file: a checkpoint holds only for the very file it was made for."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return path.stat().st_size, digest.hexdigest()


def read(file: SourceFile, start: int = 0) -> Iterator[SourceRecord]:
    """The file's records from position `start` on."""
    if file.fmt == "mongodb" and file.path.suffix == ".bson":
        yield from _bson_records(file, start)
    elif file.fmt == "mongodb":
        for position, item in _json_items(file.path, start):
            yield _mongo_record(file.collection, position, item)
    else:
        for position, item in _json_items(file.path, start, unwrap="documents"):
            yield _firestore_record(file.collection, position, item)


def count(file: SourceFile) -> int:
    """How many records the file holds (for the progress bar), without decoding them."""
    if file.fmt == "mongodb" and file.path.suffix == ".bson":
        return sum(1 for _ in _bson_frames(file.path))
    if _is_json_lines(file.path, "documents" if file.fmt == "firestore" else None):
        with file.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    return sum(1 for _ in _json_items(file.path, 0, unwrap="documents" if file.fmt == "firestore" else None))


# ------------------------------------------------------------------------------------------------ JSON


def _is_json_lines(path: Path, unwrap: str | None = None) -> bool:
    """JSON lines, or one JSON document (an array, or a page such as {"documents": [...]})?"""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
        if head.startswith(b"["):
            return False
        if not head.startswith(b"{"):
            return True
        if unwrap and re.match(rb'\{\s*"' + re.escape(unwrap.encode()) + rb'"\s*:\s*\[', head):
            return False
        first = head.split(b"\n", 1)[0] if b"\n" in head else head + handle.readline()
    try:
        value = json.loads(first)
    except ValueError:
        return False  # one document spread over many lines
    return not (unwrap and isinstance(value, dict) and isinstance(value.get(unwrap), list))


@functools.lru_cache(maxsize=1)
def _load(path: Path, size: int, mtime: float) -> Any:
    """A whole-file JSON document, parsed once for counting and reading (size and mtime key the cache)."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        if "Extra data" not in str(exc):
            raise SourceError(f"{path.name}: not JSON lines, a JSON array or a documents page ({exc})") from None
    return _concatenated(path.name, text)


def _concatenated(name: str, text: str) -> list[Any]:
    """Documents one after another, each over many lines (`mongoexport --pretty` without --jsonArray)."""
    decoder, at = json.JSONDecoder(), 0
    items: list[Any] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return items
        try:
            item, at = decoder.raw_decode(text, at)
        except ValueError as exc:
            raise SourceError(f"{name}: document {len(items)} is not JSON ({exc})") from None
        items.append(item)


def _json_items(path: Path, start: int, unwrap: str | None = None) -> Iterator[tuple[int, str | Any]]:
    """(position, item): raw text lines for JSON lines (decoded by the caller, so one bad line is one
    bad record), parsed values for a JSON array or a {"documents": [...]} page."""
    if _is_json_lines(path, unwrap):
        with path.open("r", encoding="utf-8") as handle:
            position = 0
            for line in handle:
                if not line.strip():
                    continue
                if position >= start:
                    yield position, line
                position += 1
        return
    stat = path.stat()
    loaded = _load(path, stat.st_size, stat.st_mtime)
    if isinstance(loaded, dict) and unwrap and isinstance(loaded.get(unwrap), list):
        items = loaded[unwrap]
    elif isinstance(loaded, list):
        items = loaded
    else:
        raise SourceError(f"{path.name}: expected a JSON array" + (f" or {{{unwrap!r}: [...]}}" if unwrap else ""))
    for position in range(start, len(items)):
        yield position, items[position]


def _mongo_record(collection: str, position: int, item: str | Any) -> SourceRecord:
    try:
        data = from_extended_json(item) if isinstance(item, str) else plain(_ext(item))
    except (ValueError, TypeError) as exc:
        return SourceRecord(position, collection, None, None, f"not Extended JSON: {exc}")
    if not isinstance(data, dict):
        return SourceRecord(position, collection, None, None, "not a document")
    return SourceRecord(position, collection, _str_id(data.get("_id")), data)


def _ext(item: Any) -> Any:
    """An already-parsed JSON array element, decoded as Extended JSON ($date, $oid ...)."""
    return bson.json_util.loads(json.dumps(item), json_options=bson.json_util.JSONOptions(tz_aware=True))


def _firestore_record(collection: str, position: int, item: str | Any) -> SourceRecord:
    try:
        document = json.loads(item) if isinstance(item, str) else item
        if not isinstance(document, dict) or ("fields" not in document and "name" not in document):
            raise ValueError("not a Firestore Document (no name, no fields)")
        data = firestore_fields(document.get("fields") or {})
    except (ValueError, TypeError, AttributeError) as exc:
        return SourceRecord(position, collection, None, None, f"unreadable Firestore document: {exc}")
    name = str(document.get("name") or "")
    parts = name.split("/documents/", 1)[-1].split("/") if name else []
    doc_id = parts[-1] if parts else None
    own_collection = parts[-2] if len(parts) >= 2 else collection
    return SourceRecord(position, own_collection, doc_id, data)


def _str_id(value: Any) -> str | None:
    return None if value is None else str(value)


# ------------------------------------------------------------------------------------------------ BSON


def _bson_frames(path: Path, start: int = 0) -> Iterator[tuple[int, bytes | None]]:
    """(position, raw document bytes) of a mongodump file; bytes of skipped documents are not read."""
    with path.open("rb") as handle:
        position = 0
        while True:
            head = handle.read(4)
            if not head:
                return
            if len(head) < 4:
                raise SourceError(f"{path.name}: truncated after {position} documents")
            (size,) = struct.unpack("<i", head)
            if size < 5:
                raise SourceError(f"{path.name}: corrupt document length at document {position}")
            if position < start:
                handle.seek(size - 4, 1)
                yield position, None
            else:
                body = handle.read(size - 4)
                if len(body) < size - 4:
                    raise SourceError(f"{path.name}: truncated document {position}")
                yield position, head + body
            position += 1


def _bson_records(file: SourceFile, start: int) -> Iterator[SourceRecord]:
    options: bson.CodecOptions[dict[str, Any]] = bson.CodecOptions(tz_aware=True, tzinfo=None)
    for position, frame in _bson_frames(file.path, start):
        if frame is None:
            continue
        try:
            data = plain(bson.decode(frame, codec_options=options))
        except (bson.errors.InvalidBSON, ValueError, OverflowError) as exc:
            yield SourceRecord(position, file.collection, None, None, f"invalid BSON: {exc}")
            continue
        yield SourceRecord(position, file.collection, _str_id(data.get("_id")), data)
