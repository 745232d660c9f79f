"""Fixtures of the knowledge tests: the real packaged model (loaded once), real stores in tmp folders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import Embedder, packaged_model_dir
from bot.knowledge.server_store import ServerStore
from bot.knowledge.store import KnowledgeStore

EXAMPLES = Path(__file__).resolve().parents[2] / "bot" / "knowledge" / "examples"
DIM = 384


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The packaged MiniLM + BM25, assembled in a private cache folder; slow-ish, so once per session."""
    model_dir = packaged_model_dir(tmp_path_factory.mktemp("model-cache"))
    return Embedder(model_dir=model_dir, model_name="sentence-transformers/all-MiniLM-L6-v2", dim=DIM)


def make_store(kind: str, folder: Path) -> KnowledgeStore:
    collection = f"kb_{uuid.uuid4().hex[:8]}"
    if kind == "edge":
        return EdgeStore(folder / collection, collection, dim=DIM)
    return ServerStore(QdrantClient(location=":memory:"), collection, dim=DIM)


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KnowledgeStore]:
    """An empty store, once per adapter: Edge on a tmp folder, ServerStore on qdrant-client's :memory:."""
    instance = make_store(request.param, tmp_path)
    yield instance
    instance.close()


@pytest.fixture
def edge_store(tmp_path: Path) -> Iterator[EdgeStore]:
    instance = EdgeStore(tmp_path / "knowledge", "knowledge", dim=DIM)
    yield instance
    instance.close()
