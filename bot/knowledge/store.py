"""The knowledge store interface, its access rules, and the factory choosing an adapter.

Two adapters implement `KnowledgeStore`: `EdgeStore` (Qdrant Edge, in process, on a local folder: the
embedded default) and `ServerStore` (qdrant-client against a Qdrant server when QDRANT_URL is set).
Both hold one collection with a named dense vector "dense" (cosine) and a named sparse vector "bm25"
(IDF applied by Qdrant), and answer a query with RRF over a dense and a sparse prefetch (plus a small
dense prefetch of the guest's own property, see OWN_PROPERTY_PREFETCH).

Access gating lives in the query, not in the caller: `query()` takes a `Scope`, never a raw filter,
and every adapter turns the scope into a Qdrant filter applied to both prefetches and to the fusion,
so a gated chunk is never read out of the store for a guest who may not see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import ConfigurationError
from bot.knowledge.models import GATE_ACCESS, GATE_OPEN, GATE_PRIVATE, Chunk, Embedding, RetrievedChunk

if TYPE_CHECKING:
    from config.settings import Settings

DENSE = "dense"
SPARSE = "bm25"
RRF_K = 60  # the classic constant; both adapters pass it explicitly so their rankings agree
# With a known property, a third prefetch (dense, that property's chunks only) joins the fusion: between a
# shared FAQ and the guest's own guide saying much the same, the guide wins ("check-out is at 11:00"
# beats "ask us about late check-out"). It only reorders chunks the scope already allows. Four, not more:
# a guide has only ~20 chunks, and with five the extra vote pushed shared answers (invoices, cancellation)
# out of the top 5 for questions in another language than the FAQ, where BM25 adds no vote of its own
# (cross-language recall@5 0.91 -> 0.95 on bot/knowledge/eval; three gains no more there).
OWN_PROPERTY_PREFETCH = 4
# Payload keys. `gate` is "open", "private" or "access" (see bot.knowledge.models); it is a keyword
# rather than booleans because Qdrant Edge 0.9 does not match boolean payloads (MatchValue(True) matches
# nothing), and keyword matching works in every adapter. `is_access` stays beside it for readers.
PROPERTY, GATE, SOURCE = "property", "gate", "source"
KEYWORD_INDEXES = (PROPERTY, GATE, SOURCE)


class KnowledgeStoreError(ConfigurationError):
    """The store cannot be opened or used; the message says what to change."""


class KnowledgeStoreBusy(KnowledgeStoreError):
    """The embedded store is open in another process (a running worker): hand the work to that process."""


@dataclass(frozen=True)
class Scope:
    """What one search may see.

    Chunks of `property_code` plus shared chunks (no property); only shared chunks when the property is
    unknown. Access chunks (door codes, Wi-Fi passwords) only for properties in `access_properties`;
    private chunks (exact addresses) for properties in `private_properties` or `access_properties`
    (whoever may have the door code may have the address). Never shared gated chunks: a code or an
    address always belongs to a property.
    """

    property_code: str | None
    access_properties: frozenset[str] = field(default_factory=frozenset)
    private_properties: frozenset[str] = field(default_factory=frozenset)

    @property
    def private_allowed(self) -> frozenset[str]:
        return self.private_properties | self.access_properties

    def allows(self, payload: dict[str, Any]) -> bool:
        """The same rule in Python, checked again on every hit (defence in depth)."""
        prop = payload.get(PROPERTY)
        if prop is not None and prop != self.property_code:
            return False
        gate = payload.get(GATE)
        if gate == GATE_OPEN:
            return True
        if prop is None:
            return False
        if gate == GATE_PRIVATE:
            return prop in self.private_allowed
        return prop in self.access_properties  # "access", or anything unknown: the strictest rule


@dataclass(frozen=True)
class StoreModel:
    """The embedding model a store's vectors come from: its model id and the EMBEDDING_MODEL value."""

    model_id: str
    setting: str


def model_mismatch(where: str, stored: dict[str, Any], wanted: StoreModel, fix: str) -> str | None:
    """The operator's message when a store was built with another model than the configured one, else None."""
    if stored.get("model_id") in (None, wanted.model_id):
        return None
    before = stored.get("setting") or "?"
    return (
        f"EMBEDDING_MODEL: {where} was built with {stored.get('model_id')} (EMBEDDING_MODEL={before}), not "
        f"{wanted.model_id} (EMBEDDING_MODEL={wanted.setting}); {fix} and run `sidecar ingest` again "
        f"to re-embed the knowledge, or set EMBEDDING_MODEL={before} back"
    )


@dataclass(frozen=True)
class StoredPoint:
    """A point to write: its id, both vectors, and the payload (see `chunk_payload`)."""

    point_id: str
    embedding: Embedding
    payload: dict[str, Any]


class KnowledgeStore(Protocol):
    """One collection of knowledge chunks. Implementations are kept open and reused by workers."""

    collection: str

    def upsert(self, points: Sequence[StoredPoint]) -> None: ...

    def delete(self, point_ids: Sequence[str]) -> None: ...

    def sources(self, source: str | None = None) -> dict[str, str]:
        """Point id -> `source` of every point (or of one source's points): ingest reconciles against it."""
        ...

    def query(self, embedding: Embedding, *, scope: Scope, limit: int, prefetch: int) -> list[RetrievedChunk]: ...

    def count(self) -> int: ...

    def flush(self) -> None:
        """Make writes durable and searchable at full speed (Edge: persist and build indexes)."""
        ...

    def close(self) -> None: ...


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    """The payload stored with a chunk's point."""
    return {
        "text": chunk.text,
        SOURCE: chunk.source,
        "chunk_index": chunk.chunk_index,
        "heading": chunk.heading,
        PROPERTY: chunk.property_code,
        "language": chunk.language,
        "content_hash": chunk.content_hash,
        "is_access": chunk.is_access,
        GATE: chunk.gate,
    }


def to_chunk(point_id: Any, score: float, payload: dict[str, Any]) -> RetrievedChunk:
    """A store hit as the chunk type callers use."""
    return RetrievedChunk(
        text=str(payload.get("text", "")),
        source=str(payload.get(SOURCE, "")),
        heading=payload.get("heading"),
        property_code=payload.get(PROPERTY),
        language=payload.get("language"),
        is_access=bool(payload.get("is_access", payload.get(GATE) == GATE_ACCESS)),
        score=float(score),
        point_id=str(point_id),
        is_private=payload.get(GATE) == GATE_PRIVATE,
    )


def open_store(settings: Settings) -> KnowledgeStore:
    """A Qdrant server store when QDRANT_URL is set, else the embedded Edge store under QDRANT_PATH.

    The store is opened for the configured embedding model (EMBEDDING_MODEL): one built with another model
    is refused with a KnowledgeStoreError naming EMBEDDING_MODEL and the fix (re-ingest), so a worker never
    compares questions with vectors from another model.
    """
    from bot.knowledge.embeddings import model_id_of, model_spec

    spec = model_spec(settings)
    model = StoreModel(model_id_of(spec.name, spec.dim), spec.setting)
    collection = settings.qdrant_collection
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from bot.knowledge.server_store import ServerStore

        # No version probe at construction: it warns from a background thread when the server is down,
        # while ServerStore reports an unreachable server itself, naming QDRANT_URL.
        client = QdrantClient(
            url=settings.qdrant_url,
            api_key=settings.secret("qdrant_api_key"),
            timeout=10,
            check_compatibility=False,
        )
        return ServerStore(client, collection, dim=spec.dim, model=model)
    from bot.knowledge.edge_store import EdgeStore

    return EdgeStore(settings.qdrant_path / collection, collection, dim=spec.dim, model=model)
