"""KnowledgeStore on a Qdrant server through qdrant-client (also runs on `QdrantClient(":memory:")`)."""

from __future__ import annotations

from collections.abc import Sequence

from qdrant_client import QdrantClient, models

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
    KnowledgeStoreError,
    Scope,
    StoredPoint,
    StoreModel,
    model_mismatch,
    to_chunk,
)

_SCROLL_PAGE = 1000
_UPSERT_BATCH = 256


def scope_filter(scope: Scope, *, own_only: bool = False) -> models.Filter:
    """The Scope as a qdrant-client filter; the same shape as the Edge adapter's."""
    own: list[models.Condition] = (
        [models.FieldCondition(key=PROPERTY, match=models.MatchValue(value=scope.property_code))]
        if scope.property_code
        else []
    )
    shared: list[models.Condition] = (
        [] if own_only else [models.IsEmptyCondition(is_empty=models.PayloadField(key=PROPERTY))]
    )
    gate: list[models.Condition] = [models.FieldCondition(key=GATE, match=models.MatchValue(value=GATE_OPEN))]
    if scope.access_properties:
        allowed = sorted(scope.access_properties)
        gate.append(models.FieldCondition(key=PROPERTY, match=models.MatchAny(any=allowed)))
    if scope.private_properties:
        mine = sorted(scope.private_properties)
        gate.append(
            models.Filter(
                must=[
                    models.FieldCondition(key=GATE, match=models.MatchValue(value=GATE_PRIVATE)),
                    models.FieldCondition(key=PROPERTY, match=models.MatchAny(any=mine)),
                ]
            )
        )
    return models.Filter(must=[models.Filter(should=[*own, *shared]), models.Filter(should=gate)])


class ServerStore:
    """A collection on a Qdrant server; created with the right vectors and indexes if absent."""

    def __init__(self, client: QdrantClient, collection: str, *, dim: int, model: StoreModel | None = None) -> None:
        """Open (or create) the collection; with `model`, refuse one whose vectors come from another model
        (the model is kept in the collection's metadata)."""
        self.collection = collection
        self.client = client
        try:
            exists = client.collection_exists(collection)
        except Exception as exc:  # transport errors come in many types; the message is what helps
            raise KnowledgeStoreError(f"QDRANT_URL: cannot reach Qdrant ({exc})") from exc
        metadata = {"model_id": model.model_id, "setting": model.setting} if model else None
        if exists:
            self._check_model(model)
            self._check_dim(dim)
            return
        client.create_collection(
            collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata=metadata,
        )
        if not _is_local(client):  # payload indexes do nothing in qdrant-client's local mode (and warn)
            for key in KEYWORD_INDEXES:
                client.create_payload_index(collection, key, models.PayloadSchemaType.KEYWORD)

    def _check_model(self, model: StoreModel | None) -> None:
        if model is None:
            return
        stored = self.client.get_collection(self.collection).config.metadata or {}
        fix = f"delete the Qdrant collection {self.collection!r} (or set QDRANT_COLLECTION to a new name)"
        message = model_mismatch(f"Qdrant collection {self.collection!r}", stored, model, fix)
        if message:
            raise KnowledgeStoreError(message)
        if not stored.get("model_id"):  # made before collections knew their model, or a server without metadata
            try:
                self.client.update_collection(
                    self.collection, metadata={"model_id": model.model_id, "setting": model.setting}
                )
            except Exception:  # collection metadata needs Qdrant 1.16; older servers keep only the size check
                return

    def _check_dim(self, dim: int) -> None:
        vectors = self.client.get_collection(self.collection).config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if params is None or params.size != dim:
            size = params.size if params is not None else "no 'dense' vector"
            raise KnowledgeStoreError(
                f"EMBEDDING_MODEL: Qdrant collection {self.collection!r} holds {size} vectors, not {dim}-d "
                "ones (another embedding model); delete the collection and ingest again, or set "
                "QDRANT_COLLECTION to a new name"
            )

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        for start in range(0, len(points), _UPSERT_BATCH):
            self.client.upsert(
                self.collection,
                wait=True,
                points=[
                    models.PointStruct(
                        id=p.point_id,
                        payload=p.payload,
                        vector={
                            DENSE: p.embedding.dense,
                            SPARSE: models.SparseVector(
                                indices=p.embedding.sparse.indices, values=p.embedding.sparse.values
                            ),
                        },
                    )
                    for p in points[start : start + _UPSERT_BATCH]
                ],
            )

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=list(point_ids)), wait=True)

    def sources(self, source: str | None = None) -> dict[str, str]:
        flt = (
            models.Filter(must=[models.FieldCondition(key=SOURCE, match=models.MatchValue(value=source))])
            if source
            else None
        )
        found: dict[str, str] = {}
        offset: models.ExtendedPointId | None = None
        while True:
            records, next_offset = self.client.scroll(
                self.collection,
                limit=_SCROLL_PAGE,
                offset=offset,
                scroll_filter=flt,
                with_payload=[SOURCE],
                with_vectors=False,
            )
            for record in records:
                found[str(record.id)] = str((record.payload or {}).get(SOURCE, ""))
            if next_offset is None:
                return found
            offset = next_offset

    def query(self, embedding: Embedding, *, scope: Scope, limit: int, prefetch: int) -> list[RetrievedChunk]:
        flt = scope_filter(scope)
        prefetches = [models.Prefetch(query=embedding.dense, using=DENSE, limit=prefetch, filter=flt)]
        if embedding.sparse.indices:
            sparse = models.SparseVector(indices=embedding.sparse.indices, values=embedding.sparse.values)
            prefetches.append(models.Prefetch(query=sparse, using=SPARSE, limit=prefetch, filter=flt))
        if scope.property_code:  # see OWN_PROPERTY_PREFETCH
            own = scope_filter(scope, own_only=True)
            prefetches.append(
                models.Prefetch(query=embedding.dense, using=DENSE, limit=OWN_PROPERTY_PREFETCH, filter=own)
            )
        response = self.client.query_points(
            self.collection,
            prefetch=prefetches,
            query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
            query_filter=flt,
            limit=limit,
            with_payload=True,
        )
        return [to_chunk(p.id, p.score, p.payload or {}) for p in response.points if scope.allows(p.payload or {})]

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def flush(self) -> None:
        """Writes are acknowledged with wait=True and the server indexes by itself: nothing to do."""

    def close(self) -> None:
        self.client.close()


def _is_local(client: QdrantClient) -> bool:
    from qdrant_client.local.qdrant_local import QdrantLocal

    return isinstance(getattr(client, "_client", None), QdrantLocal)
