"""Plain data of the knowledge layer: sections and chunks going in, retrieved chunks coming out."""

from __future__ import annotations

from dataclasses import dataclass, field

# The gate of a chunk, from least to most guarded: open to everyone in scope; private (an exact street
# address) for guests with a live booking of the property; access (door codes, Wi-Fi passwords) for
# guests inside their stay's access window. Access outranks private.
GATE_OPEN, GATE_PRIVATE, GATE_ACCESS = "open", "private", "access"


def gate_of(is_access: bool, is_private: bool) -> str:
    return GATE_ACCESS if is_access else GATE_PRIVATE if is_private else GATE_OPEN


@dataclass(frozen=True)
class Section:
    """A piece of a document under one heading, before it is cut to size.

    `is_access=True` is an explicit marking (front matter `access: true`, a heading marker, or a caller
    such as the Guesty listing mirror). Unmarked sections are still checked by `section_is_access`:
    a marking can add the gate, never remove it. `is_private=True` is the same for the lower gate
    (front matter `private: true`, a `[private]` heading marker, the Guesty listing's address); unmarked
    sections are checked by `looks_like_private_address`.
    """

    heading: str | None
    text: str
    is_access: bool = False
    is_private: bool = False


@dataclass(frozen=True)
class Document:
    """One unit of knowledge with its metadata: a file under the knowledge root, or a listing."""

    source: str  # path relative to the knowledge root (posix), or e.g. "guesty:listing:<id>"
    property_code: str | None  # None = shared knowledge, visible to every property
    language: str | None
    sections: tuple[Section, ...]
    title: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A bounded piece of a document, ready to embed; `content_hash` covers everything stored with it."""

    source: str
    chunk_index: int
    property_code: str | None
    language: str | None
    heading: str | None
    text: str
    is_access: bool
    content_hash: str
    point_id: str
    is_private: bool = False  # an exact address; see GATE_PRIVATE (False whenever is_access)

    @property
    def gate(self) -> str:
        return gate_of(self.is_access, self.is_private)

    @property
    def embed_text(self) -> str:
        """What the models see: the heading path gives short sections their topic ("Check-out")."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class SparseVec:
    """A sparse vector (BM25 term weights keyed by hashed token ids)."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Embedding:
    dense: list[float]
    sparse: SparseVec


@dataclass(frozen=True)
class RetrievedChunk:
    """A search hit, with enough metadata to cite it and to audit what the bot was shown."""

    text: str
    source: str
    heading: str | None
    property_code: str | None
    language: str | None
    is_access: bool
    score: float
    point_id: str
    is_private: bool = False


@dataclass(frozen=True)
class SyncReport:
    """What one sync of a set of chunks did to the store and to vector_references."""

    added: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class IngestReport:
    """Counts of an ingest run over a knowledge folder; `errors` lists files that could not be read
    (their previously stored chunks are kept, not deleted)."""

    files: int = 0
    added: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: tuple[str, ...] = field(default=())
