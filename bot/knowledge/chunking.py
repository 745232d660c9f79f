"""Cutting documents into chunks: one heading section at a time, bounded in size, with overlap.

Sections are never merged: a chunk answers one topic ("Check-out", "Parking"), which keeps retrieval
precise and keeps an access section (a door code) from dragging its neighbours behind the gate.
A section longer than `max_chars` is cut at paragraph, then sentence, then word boundaries, and each
piece repeats the tail of the previous one (`overlap` characters at most) so a fact that straddles a
cut is still found whole in one of the two pieces.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable

from bot.knowledge.access import (
    has_heading_marker,
    has_private_marker,
    looks_like_private_address,
    section_is_access,
    strip_heading_marker,
)
from bot.knowledge.models import GATE_ACCESS, GATE_PRIVATE, Chunk, Document, Section, gate_of

MAX_CHARS = 1000
OVERLAP = 150
HEADING_SEPARATOR = " > "
POINT_NAMESPACE = uuid.UUID("6f1d2c1e-5b7a-4b8e-9a51-3c0f7e1a2d44")  # fixed: point ids must stay stable

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
PARAGRAPH, SPACE = "\n\n", " "
Unit = tuple[str, str]  # (separator before it, text): a paragraph, a sentence, or a run of words


def split_markdown(
    body: str, *, title: str | None = None, access: bool = False, private: bool = False
) -> list[Section]:
    """Sections of a Markdown body, each headed by its heading path ("Guide > Arrival > Parking").

    Text before the first heading goes under `title`. A heading marked `[access]` makes its section and
    all its subsections access details; `access` (front matter) applies to every section of the file.
    `[private]` and `private` do the same for the private gate.
    """
    sections: list[Section] = []
    path: list[tuple[int, str, bool, bool]] = []  # (level, heading, marked access, marked private)
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip()
        lines.clear()
        if not text:
            return
        heading = HEADING_SEPARATOR.join(h for _, h, _, _ in path) if path else title
        marked = access or any(m for _, _, m, _ in path)
        marked_private = private or any(m for _, _, _, m in path)
        sections.append(Section(heading=heading or None, text=text, is_access=marked, is_private=marked_private))

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level, raw = len(match.group(1)), match.group(2)
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, strip_heading_marker(raw), has_heading_marker(raw), has_private_marker(raw)))
    flush()
    return sections


def split_text(text: str, *, max_chars: int = MAX_CHARS, overlap: int = OVERLAP) -> list[str]:
    """Pieces of at most `max_chars` characters, each starting with up to `overlap` characters that
    end the previous piece (whole sentences or words where possible)."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    if overlap >= max_chars // 2:
        raise ValueError("overlap must be less than half of max_chars")
    units = list(_units(text, max_chars - overlap - len(PARAGRAPH)))
    pieces: list[str] = []
    current: list[Unit] = []
    for unit in units:
        if current and len(_join([*current, unit])) > max_chars:
            pieces.append(_join(current))
            current = _tail(current, overlap)
            while current and len(_join([*current, unit])) > max_chars:
                current = current[1:]
        current.append(unit)
    if current:
        pieces.append(_join(current))
    return pieces


def _units(text: str, limit: int) -> Iterable[Unit]:
    """Paragraphs, or sentences of long paragraphs, or word runs of long sentences; each <= limit."""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            yield PARAGRAPH, paragraph
            continue
        parts = [
            piece
            for sentence in _SENTENCE_END.split(paragraph)
            for piece in ([sentence] if len(sentence) <= limit else _word_runs(sentence, limit))
        ]
        yield PARAGRAPH, parts[0]
        for part in parts[1:]:
            yield SPACE, part


def _word_runs(sentence: str, limit: int) -> list[str]:
    runs: list[str] = []
    run = ""
    for word in sentence.split():
        while len(word) > limit:  # a URL or a token without spaces: cut it hard
            if run:
                runs.append(run)
                run = ""
            runs.append(word[:limit])
            word = word[limit:]
        if run and len(run) + 1 + len(word) > limit:
            runs.append(run)
            run = word
        else:
            run = f"{run} {word}" if run else word
    if run:
        runs.append(run)
    return runs


def _join(units: list[Unit]) -> str:
    """The units as text; the first one's separator is dropped (it starts the piece)."""
    return units[0][1] + "".join(sep + text for sep, text in units[1:]) if units else ""


def _tail(units: list[Unit], overlap: int) -> list[Unit]:
    """The last units of a piece that fit in `overlap` characters; else the last words of the last unit."""
    tail: list[Unit] = []
    for unit in reversed(units):
        if len(_join([unit, *tail])) > overlap:
            break
        tail.insert(0, unit)
    if tail or overlap <= 0:
        return tail
    words = units[-1][1].split()
    kept: list[str] = []
    while words and len(" ".join([words[-1], *kept])) <= overlap:
        kept.insert(0, words.pop())
    return [(SPACE, " ".join(kept))] if kept else []


def content_hash(
    model_id: str,
    property_code: str | None,
    language: str | None,
    heading: str | None,
    gate: str,
    text: str,
) -> str:
    """Hash of everything a stored chunk depends on, so a change of text, metadata (the gate too) or model
    re-embeds it. Open and access chunks hash the gate as the boolean they always did (their points stay
    put on upgrade); private chunks hash "private"."""
    marker: str | bool = gate if gate == GATE_PRIVATE else gate == GATE_ACCESS
    blob = json.dumps([model_id, property_code, language, heading, marker, text], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def point_id(collection: str, source: str, chunk_index: int, digest: str) -> str:
    """Deterministic point id: the same chunk always lands on the same point, a changed one on a new one."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{collection}\x1f{source}\x1f{chunk_index}\x1f{digest}"))


def chunk_document(
    document: Document, *, collection: str, model_id: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP
) -> list[Chunk]:
    """The chunks of a document, numbered in order, with their gate, hash and point id."""
    chunks: list[Chunk] = []
    for section in document.sections:
        # Decided per section, not per piece: the piece after a cut may hold the code without its label.
        # The heading path counts too: "## Wi-Fi password" gates its body whatever it says (see access.py).
        labelled = f"{section.heading}: {section.text}" if section.heading else section.text
        is_access = section.is_access or section_is_access(section.heading, section.text)
        is_private = not is_access and (section.is_private or looks_like_private_address(labelled))
        gate = gate_of(is_access, is_private)
        for text in split_text(section.text, max_chars=max_chars, overlap=overlap):
            index = len(chunks)
            digest = content_hash(model_id, document.property_code, document.language, section.heading, gate, text)
            chunks.append(
                Chunk(
                    source=document.source,
                    chunk_index=index,
                    property_code=document.property_code,
                    language=document.language,
                    heading=section.heading,
                    text=text,
                    is_access=is_access,
                    content_hash=digest,
                    point_id=point_id(collection, document.source, index, digest),
                    is_private=is_private,
                )
            )
    return chunks
