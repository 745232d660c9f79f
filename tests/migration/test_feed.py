"""The knowledge change feed: whatever changes a listing's row (an import, an UPDATE typed by hand), the
feed re-indexes its chunks, and vector_references stays exactly what the store holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import Embedder, packaged_model_dir
from bot.knowledge.retrieval import Retriever
from bot.migration.feed import reindex_pending
from bot.migration.importer import import_path
from bot.migration.mapping import Mapping
from tests.migration.generate import make_history, write_mongoexport

DIM = 384


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    model_dir = packaged_model_dir(tmp_path_factory.mktemp("model-cache"))
    return Embedder(model_dir=model_dir, model_name="sentence-transformers/all-MiniLM-L6-v2", dim=DIM)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    instance = EdgeStore(tmp_path / "knowledge", "knowledge", dim=DIM)
    yield instance
    instance.close()


def refs(dsn: str, source: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(
            conn.execute(
                "SELECT point_id::text, content_hash FROM vector_references WHERE source = %s", (source,)
            ).fetchall()
        )


def pending(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT property_code FROM knowledge_changes ORDER BY 1")]


@pytest.fixture
def imported(clean_db: str, tmp_path: Path) -> str:
    history = make_history(4)  # 3 listings
    history.collections = {"guesty_listings": history.collections["guesty_listings"]}
    import_path(clean_db, "mongodb", write_mongoexport(history, tmp_path / "export"), Mapping())
    return clean_db


def test_imported_listings_are_indexed_by_the_feed(imported: str, store: EdgeStore, embedder: Embedder) -> None:
    assert pending(imported) == ["lst-0000", "lst-0001", "lst-0002"]

    report = reindex_pending(imported, store, embedder)

    assert (report.reindexed, report.removed, report.failed) == (3, 0, 0)
    assert pending(imported) == []
    for code in ("lst-0000", "lst-0001", "lst-0002"):
        source = f"guesty:listing:{code}"
        assert set(refs(imported, source)) == set(store.sources(source)) != set()
    assert reindex_pending(imported, store, embedder).done == 0  # an empty feed does nothing


def test_editing_a_listing_row_by_sql_reindexes_its_chunks(imported: str, store: EdgeStore, embedder: Embedder) -> None:
    reindex_pending(imported, store, embedder)
    source = "guesty:listing:lst-0001"
    before = refs(imported, source)

    with psycopg.connect(imported) as conn:
        conn.execute("UPDATE properties SET check_in_time = '16:30' WHERE code = 'lst-0001'")
        conn.execute("UPDATE properties SET updated_at = now() WHERE code = 'lst-0002'")  # feeds no knowledge
    assert pending(imported) == ["lst-0001"]
    report = reindex_pending(imported, store, embedder)

    after = refs(imported, source)
    assert (report.reindexed, report.chunks_added, report.chunks_deleted) == (1, 1, 1)
    assert len(set(before) - set(after)) == 1 and len(set(after) - set(before)) == 1
    assert set(after) == set(store.sources(source))
    hits = Retriever(store, embedder).search("What time is check-in?", property_code="lst-0001")
    assert [h.text for h in hits if h.source == source and h.heading == "Check-in and check-out"] == [
        "Check-in from 16:30. Check-out by 11:00."
    ]


def test_a_deactivated_listing_loses_its_knowledge(imported: str, store: EdgeStore, embedder: Embedder) -> None:
    reindex_pending(imported, store, embedder)

    with psycopg.connect(imported) as conn:
        conn.execute("UPDATE properties SET active = false WHERE code = 'lst-0000'")
    report = reindex_pending(imported, store, embedder)

    assert (report.reindexed, report.removed) == (0, 1)
    assert refs(imported, "guesty:listing:lst-0000") == {} == store.sources("guesty:listing:lst-0000")
    assert refs(imported, "guesty:listing:lst-0001") != {}


async def test_worker_hook_reindexes_with_the_contexts_warm_store(
    imported: str, store: EdgeStore, embedder: Embedder
) -> None:
    from bot.context import JobContext
    from bot.migration.feed import reindex_changed
    from tests.conftest import make_settings

    ctx = JobContext(
        settings=make_settings(imported, "unused"),
        db=None,
        http=None,
        redis=None,  # type: ignore[arg-type]
        extras={"retriever": Retriever(store, embedder)},
    )

    assert await reindex_changed(ctx) == 3
    assert await reindex_changed(ctx) == 0
    assert set(store.sources("guesty:listing:lst-0002")) == set(refs(imported, "guesty:listing:lst-0002"))


@pytest.mark.parametrize("fixture", ["listing.updated.json", "listing.updated-arrival.json", "listing.new-access.json"])
def test_feed_builds_the_same_document_as_the_webhook_handler(fixture: str) -> None:
    from dataclasses import asdict

    from bot.migration.feed import listing_from_row
    from integrations.guesty.models import Listing
    from integrations.guesty.transforms import listing_document, property_row
    from tests.conftest import load_fixture

    raw = load_fixture(f"guesty/{fixture}")["listing"]
    listing = Listing.model_validate(raw)
    prop = property_row(listing, raw)
    row = {**asdict(prop), "code": "p1", "check_in_time": prop.check_in_time, "check_out_time": prop.check_out_time}

    assert listing_document(listing_from_row(row), "p1", row["raw"]) == listing_document(listing, "p1", raw)
