"""Hybrid search over the knowledge store, with access gating built into the only search call.

`Retriever.search()` embeds the question (dense + BM25), asks the store for an RRF fusion of both,
restricted to the guest's property plus shared knowledge, and lets access chunks (door codes, Wi-Fi
passwords) through only for properties in `access_properties`, and private chunks (exact addresses) only
for properties in `private_properties` or `access_properties`. The restriction is a Qdrant filter
inside the query, so gated text is never read out of the store; there is no unfiltered variant.
"""

from __future__ import annotations

from bot.knowledge.embeddings import Embedder
from bot.knowledge.models import Embedding, RetrievedChunk
from bot.knowledge.store import KnowledgeStore, Scope

MIN_PREFETCH = 20


class Retriever:
    """The store and the embedder kept together and warm (one per worker process)."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def search(
        self,
        query: str,
        *,
        property_code: str | None,
        access_properties: frozenset[str] = frozenset(),
        private_properties: frozenset[str] = frozenset(),
        limit: int = 5,
        embedding: Embedding | None = None,
    ) -> list[RetrievedChunk]:
        """The best chunks for a guest's question, best first.

        property_code: the guest's property; None searches shared knowledge only, so a guest whose
        booking is unknown never gets another property's details.
        access_properties: properties whose access details this guest may see now (e.g. a confirmed stay
        starting within the access window); empty means none.
        private_properties: properties whose exact address this guest may see (a live booking); access
        properties are included implicitly.
        embedding: `query` embedded already (a caller that embeds while it works out the scope).
        """
        if not query.strip() or limit <= 0:
            return []
        if embedding is None:
            embedding = self.embedder.embed_query(query)
        scope = Scope(
            property_code=property_code,
            access_properties=frozenset(access_properties),
            private_properties=frozenset(private_properties),
        )
        hits = self.store.query(embedding, scope=scope, limit=limit, prefetch=max(MIN_PREFETCH, 4 * limit))
        # RRF ties are common (ranks 1+2 score as 2+1) and Qdrant leaves their order to chance; the point id
        # settles it, so the same question gets the same chunks in the same order every time.
        return sorted(hits, key=lambda h: (-h.score, h.point_id))
