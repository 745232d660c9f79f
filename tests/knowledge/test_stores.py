"""Opening stores and models: the factory, persistence, and the messages that tell an operator what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import (
    MODEL_FILE,
    TOKENIZER_FILES,
    Embedder,
    EmbeddingConfigError,
    ModelSpec,
    check_model_dir,
    model_spec,
    packaged_model_dir,
)
from bot.knowledge.models import Embedding, SparseVec
from bot.knowledge.server_store import ServerStore
from bot.knowledge.store import KnowledgeStore, KnowledgeStoreError, Scope, StoredPoint, StoreModel, open_store
from config.settings import ConfigError, load_settings

from .conftest import DIM


def point(embedder: Embedder, point_id: str, text: str, prop: str | None = "p1") -> StoredPoint:
    return StoredPoint(
        point_id,
        embedder.embed_documents([text])[0],
        {
            "text": text,
            "source": "p1/en/a.md",
            "heading": "H",
            "property": prop,
            "language": "en",
            "content_hash": "x",
            "is_access": False,
            "gate": "open",
            "chunk_index": 0,
        },
    )


def test_open_store_defaults_to_edge_under_qdrant_path(tmp_path: Path) -> None:
    settings = load_settings({"QDRANT_PATH": str(tmp_path / "q"), "QDRANT_COLLECTION": "kb"})

    store = open_store(settings)
    try:
        assert isinstance(store, EdgeStore)
        assert (store.collection, store.path) == ("kb", tmp_path / "q" / "kb")
        assert (tmp_path / "q" / "kb" / "edge_config.json").is_file()
    finally:
        store.close()


def test_open_store_names_qdrant_url_when_the_server_is_unreachable() -> None:
    settings = load_settings({"QDRANT_URL": "http://127.0.0.1:9"})

    with pytest.raises(KnowledgeStoreError, match=r"^QDRANT_URL: cannot reach Qdrant"):
        open_store(settings)


def test_edge_store_persists_and_is_owned_by_one_opener(tmp_path: Path, embedder: Embedder) -> None:
    first = EdgeStore(tmp_path / "kb", "kb", dim=DIM)
    first.upsert([point(embedder, "6a2c0f9e-2b1d-4f0e-9a3c-1d2e3f405162", "Check-out is by 11:00.")])
    first.flush()

    with pytest.raises(KnowledgeStoreError, match=r"^QDRANT_PATH: .* is open in another process"):
        EdgeStore(tmp_path / "kb", "kb", dim=DIM)
    first.close()
    reopened = EdgeStore(tmp_path / "kb", "kb", dim=DIM)
    try:
        assert reopened.sources() == {"6a2c0f9e-2b1d-4f0e-9a3c-1d2e3f405162": "p1/en/a.md"}
        hits = reopened.query(embedder.embed_query("checkout"), scope=Scope("p1"), limit=5, prefetch=20)
        assert [h.text for h in hits] == ["Check-out is by 11:00."]
    finally:
        reopened.close()


def test_edge_store_rejects_vectors_of_another_size(tmp_path: Path) -> None:
    EdgeStore(tmp_path / "kb", "kb", dim=DIM).close()

    with pytest.raises(KnowledgeStoreError, match=r"^EMBEDDING_MODEL: .* delete the folder and ingest again"):
        EdgeStore(tmp_path / "kb", "kb", dim=768)


def test_server_store_rejects_a_collection_of_another_size() -> None:
    client = QdrantClient(location=":memory:")
    ServerStore(client, "kb", dim=DIM)

    with pytest.raises(KnowledgeStoreError, match=r"^EMBEDDING_MODEL: Qdrant collection 'kb' holds 384 vectors"):
        ServerStore(client, "kb", dim=768)


def test_server_store_reuses_an_existing_collection(embedder: Embedder) -> None:
    client = QdrantClient(location=":memory:")
    ServerStore(client, "kb", dim=DIM).upsert([point(embedder, "0b7e4a52-9c1f-4d5e-8a6b-7c8d9e0f1a2b", "Bins.")])

    again = ServerStore(client, "kb", dim=DIM)

    assert again.count() == 1
    again.delete(["0b7e4a52-9c1f-4d5e-8a6b-7c8d9e0f1a2b"])
    assert again.count() == 0


def test_query_without_sparse_terms_uses_the_dense_vector_alone(store: KnowledgeStore, embedder: Embedder) -> None:
    store.upsert([point(embedder, "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "Parking is in the garage.")])
    dense_only = Embedding(dense=embedder.embed_query("parking").dense, sparse=SparseVec([], []))

    hits = store.query(dense_only, scope=Scope("p1"), limit=5, prefetch=20)

    assert [h.text for h in hits] == ["Parking is in the garage."]


def test_packaged_model_dir_is_assembled_once_and_rebuilt_when_broken(tmp_path: Path) -> None:
    folder = packaged_model_dir(tmp_path)

    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
        [MODEL_FILE, *TOKENIZER_FILES]
    )
    assert packaged_model_dir(tmp_path) == folder
    (folder / "vocab.txt").unlink()
    assert packaged_model_dir(tmp_path) == folder
    assert (folder / "vocab.txt").is_file()
    assert check_model_dir(folder) == folder


def test_an_incomplete_model_folder_names_embedding_model_path(tmp_path: Path) -> None:
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"")

    with pytest.raises(EmbeddingConfigError, match=r"^EMBEDDING_MODEL_PATH: .* lacks tokenizer.json, config.json"):
        check_model_dir(tmp_path)


def test_a_wrong_dimension_names_embedding_dim(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingConfigError, match=r"^EMBEDDING_DIM: .* makes 384-d vectors, not 768"):
        Embedder(model_dir=packaged_model_dir(tmp_path), model_name="sentence-transformers/all-MiniLM-L6-v2", dim=768)


def test_embedder_from_settings_uses_the_configured_folder(tmp_path: Path) -> None:
    folder = packaged_model_dir(tmp_path)
    settings = load_settings({"EMBEDDING_MODEL_PATH": str(folder), "EMBEDDING_MODEL_NAME": "acme/minilm"})

    embedder = Embedder.from_settings(settings)
    vectors = embedder.embed_documents(["Check-out is by 11:00.", "Bins are in the yard."])

    assert embedder.model_id == "acme/minilm@384+bm25-lang1"
    assert [len(v.dense) for v in vectors] == [384, 384]
    assert abs(sum(x * x for x in vectors[0].dense) - 1.0) < 1e-3  # normalized for cosine
    assert vectors[0].sparse.indices and all(v > 0 for v in vectors[0].sparse.values)


USE = StoreModel("use-multilingual-v3@512+bm25-lang1", "use-multilingual")
MINILM = StoreModel("sentence-transformers/all-MiniLM-L6-v2@384+bm25-lang1", "minilm")


def test_edge_store_refuses_a_store_built_with_another_model(tmp_path: Path) -> None:
    EdgeStore(tmp_path / "kb", "kb", dim=DIM, model=MINILM).close()
    EdgeStore(tmp_path / "kb", "kb", dim=DIM, model=MINILM).close()  # the same model opens again

    with pytest.raises(
        KnowledgeStoreError,
        match=r"^EMBEDDING_MODEL: the knowledge store .* was built with sentence-transformers/all-MiniLM-L6-v2@384"
        r".*\(EMBEDDING_MODEL=minilm\), not use-multilingual-v3@512.* delete the folder .* `sidecar ingest` again"
        r".*or set EMBEDDING_MODEL=minilm back",
    ):
        EdgeStore(tmp_path / "kb", "kb", dim=512, model=USE)


def test_an_edge_store_from_before_model_tracking_adopts_the_current_model(tmp_path: Path) -> None:
    EdgeStore(tmp_path / "kb", "kb", dim=DIM).close()  # no model: as stores were made before

    EdgeStore(tmp_path / "kb", "kb", dim=DIM, model=MINILM).close()

    with pytest.raises(KnowledgeStoreError, match=r"^EMBEDDING_MODEL: .* was built with sentence-transformers"):
        EdgeStore(tmp_path / "kb", "kb", dim=DIM, model=StoreModel("other@384+bm25-lang1", "onnx"))


def test_server_store_refuses_a_collection_built_with_another_model() -> None:
    client = QdrantClient(location=":memory:")
    ServerStore(client, "kb", dim=DIM, model=MINILM)
    ServerStore(client, "kb", dim=DIM, model=MINILM)

    with pytest.raises(
        KnowledgeStoreError,
        match=r"^EMBEDDING_MODEL: Qdrant collection 'kb' was built with .*delete the Qdrant collection 'kb'",
    ):
        ServerStore(client, "kb", dim=512, model=USE)


def test_open_store_uses_the_configured_models_vector_size(tmp_path: Path) -> None:
    default = load_settings({"QDRANT_PATH": str(tmp_path / "a")})
    minilm = load_settings({"QDRANT_PATH": str(tmp_path / "a"), "EMBEDDING_MODEL": "minilm"})

    store = open_store(default)
    store.close()
    with pytest.raises(
        KnowledgeStoreError,
        match=r"^EMBEDDING_MODEL: .*EMBEDDING_MODEL=use-multilingual\) back|"
        r"^EMBEDDING_MODEL: .*set EMBEDDING_MODEL=use-multilingual back",
    ):
        open_store(minilm)


def test_model_spec_follows_embedding_model() -> None:
    assert model_spec(load_settings({})) == ModelSpec("use-multilingual", "use-multilingual-v3", 512)
    assert model_spec(load_settings({"EMBEDDING_MODEL": "minilm"})).dim == 384
    assert model_spec(load_settings({"EMBEDDING_MODEL_PATH": "/m", "EMBEDDING_DIM": "768"})).setting == "onnx"
    with pytest.raises(ConfigError, match="EMBEDDING_MODEL_PATH: EMBEDDING_MODEL=onnx needs the model folder"):
        load_settings({"EMBEDDING_MODEL": "onnx"})
    with pytest.raises(ConfigError, match=r"EMBEDDING_MODEL: .*use 'use-multilingual'"):
        load_settings({"EMBEDDING_MODEL": "bert"})


def test_packaged_use_multilingual_maps_questions_across_languages() -> None:
    embedder = Embedder.packaged("use-multilingual")
    guide = embedder.embed_documents(["Check-out is by 11:00.", "The bins are in the courtyard."], languages=["en"] * 2)
    question = embedder.embed_query("À quelle heure faut-il partir ?")

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert embedder.model_id == "use-multilingual-v3@512+bm25-lang1" and len(question.dense) == 512
    assert cosine(question.dense, guide[0].dense) > cosine(question.dense, guide[1].dense)
