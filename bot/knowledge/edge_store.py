"""KnowledgeStore on Qdrant Edge: Qdrant's engine in process, one shard folder per collection.

A shard folder can be open in one process at a time (its write-ahead log is locked), so the process
that serves searches owns it; a second opener gets a KnowledgeStoreError saying so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import qdrant_edge as qe

from bot.knowledge.models import GATE_OPEN, GATE_PRIVATE, Embedding, RetrievedChunk
from bot.knowledge.store import (
    DENSE,
    GATE,
    KEYWORD_INDEXES,
    OWN_PROPERTY_PREFETCH,
    PROPERTY,
    RRF_K,
    SOURCE,
    SPARSE,
    KnowledgeStoreBusy,
    KnowledgeStoreError,
    Scope,
    StoredPoint,
    StoreModel,
    model_mismatch,
    to_chunk,
)

_SCROLL_PAGE = 1000
MODEL_FILE = "sidecar-model.json"  # beside the shard's own files: which embedding model made the vectors


def scope_filter(scope: Scope, *, own_only: bool = False) -> qe.Filter:
    """The Scope as an Edge filter: (this property or shared) and (open, or any gate of an access
    property, or private of a private property).

    own_only drops the shared part, for the prefetch that favours the guest's own property.
    """
    in_scope: list[qe.ConditionType] = []
    if scope.property_code:
        in_scope.append(qe.FieldCondition(PROPERTY, match=qe.MatchValue(scope.property_code)))
    if not own_only:
        in_scope.append(qe.IsEmptyCondition(PROPERTY))  # shared knowledge: no property
    gate: list[qe.ConditionType] = [qe.FieldCondition(GATE, match=qe.MatchValue(GATE_OPEN))]
    if scope.access_properties:
        gate.append(qe.FieldCondition(PROPERTY, match=qe.MatchAny(sorted(scope.access_properties))))
    if scope.private_properties:
        private = qe.FieldCondition(GATE, match=qe.MatchValue(GATE_PRIVATE))
        mine = qe.FieldCondition(PROPERTY, match=qe.MatchAny(sorted(scope.private_properties)))
        gate.append(qe.Filter(must=[private, mine]))
    return qe.Filter(must=[qe.Filter(should=in_scope), qe.Filter(should=gate)])


class EdgeStore:
    """The embedded default store (settings.qdrant_path / collection)."""

    def __init__(self, path: Path, collection: str, *, dim: int, model: StoreModel | None = None) -> None:
        """Open (or create) the shard; with `model`, refuse a shard whose vectors come from another model."""
        self.collection = collection
        self.path = path
        if model is not None:
            self._check_model(model)
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        try:
            if (path / "edge_config.json").exists():
                self._shard = qe.EdgeShard.load(str(path), config)
            else:
                path.mkdir(parents=True, exist_ok=True)
                self._shard = qe.EdgeShard.create(str(path), config)
                for key in KEYWORD_INDEXES:
                    self._shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
        except Exception as exc:  # the binding raises plain Exception with the engine's message
            busy = "WouldBlock" in str(exc)
            raise (KnowledgeStoreBusy if busy else KnowledgeStoreError)(_explain(path, dim, str(exc))) from exc
        if model is not None and not (path / MODEL_FILE).is_file():  # new, or made before stores knew their model
            (path / MODEL_FILE).write_text(json.dumps({"model_id": model.model_id, "setting": model.setting}))

    def _check_model(self, model: StoreModel) -> None:
        try:
            stored = json.loads((self.path / MODEL_FILE).read_text())
        except (OSError, ValueError):
            return
        fix = f"stop the processes using it, delete the folder {self.path}"
        message = model_mismatch(f"the knowledge store {self.path}", stored, model, fix)
        if message:
            raise KnowledgeStoreError(message)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        self._shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        p.point_id,
                        {
                            DENSE: p.embedding.dense,
                            SPARSE: qe.SparseVector(p.embedding.sparse.indices, p.embedding.sparse.values),
                        },
                        p.payload,
                    )
                    for p in points
                ]
            )
        )

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            self._shard.update(qe.UpdateOperation.delete_points(list(point_ids)))

    def sources(self, source: str | None = None) -> dict[str, str]:
        flt = qe.Filter(must=[qe.FieldCondition(SOURCE, match=qe.MatchValue(source))]) if source else None
        found: dict[str, str] = {}
        offset = None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=_SCROLL_PAGE,
                    filter=flt,
                    with_payload=[SOURCE],
                    with_vector=False,
                )
            )
            for record in records:
                found[str(record.id)] = str((record.payload or {}).get(SOURCE, ""))
            if offset is None:
                return found

    def query(self, embedding: Embedding, *, scope: Scope, limit: int, prefetch: int) -> list[RetrievedChunk]:
        flt = scope_filter(scope)
        dense = qe.Query.Nearest(embedding.dense, using=DENSE)
        prefetches = [qe.Prefetch(limit=prefetch, query=dense, filter=flt)]
        if embedding.sparse.indices:  # a query of only stop words has no sparse terms
            sparse = qe.SparseVector(embedding.sparse.indices, embedding.sparse.values)
            prefetches.append(qe.Prefetch(limit=prefetch, query=qe.Query.Nearest(sparse, using=SPARSE), filter=flt))
        if scope.property_code:  # see OWN_PROPERTY_PREFETCH
            own = scope_filter(scope, own_only=True)
            prefetches.append(qe.Prefetch(limit=OWN_PROPERTY_PREFETCH, query=dense, filter=own))
        hits = self._shard.query(
            qe.QueryRequest(
                limit=limit,
                prefetches=prefetches,
                query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub omits Fusion's variants
                filter=flt,
                with_payload=True,
            )
        )
        return [to_chunk(h.id, h.score, h.payload or {}) for h in hits if scope.allows(h.payload or {})]

    def count(self) -> int:
        return int(self._shard.count(qe.CountRequest(exact=True)))

    def flush(self) -> None:
        self._shard.flush()
        self._shard.optimize()  # builds HNSW once a segment is large enough; a no-op otherwise

    def close(self) -> None:
        self._shard.close()


def _explain(path: Path, dim: int, message: str) -> str:
    if "WouldBlock" in message:
        return (
            f"QDRANT_PATH: the knowledge store {path} is open in another process (a worker or web "
            "replica?); run ingest where the store lives, stop that process, or set QDRANT_URL to a server"
        )
    if "incompatible" in message.lower():
        return (
            f"EMBEDDING_MODEL: the knowledge store {path} was built for other vectors than {dim}-d ones, by "
            f"another embedding model ({message}); delete the folder and ingest again (`sidecar ingest`), "
            "or restore the former EMBEDDING_MODEL / EMBEDDING_DIM"
        )
    return f"QDRANT_PATH: cannot open the knowledge store at {path}: {message}"
