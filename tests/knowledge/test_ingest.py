"""Ingest: incremental by content hash, deletions reach the store and vector_references, scopes stay apart."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.knowledge.embeddings import Embedder
from bot.knowledge.ingest import index_document, ingest, remove_document
from bot.knowledge.models import Embedding, IngestReport, RetrievedChunk, Section, SyncReport
from bot.knowledge.store import KnowledgeStore, Scope, StoredPoint

GUIDE = """---
title: Test flat
---
## Check-in

Check-in is from 15:00.

## Check-out

Check-out is by 11:00.

## Wi-Fi

Network: TestFlat. Password: tulip-garden-7.
"""

FAQ = """## Pets

Small pets are welcome on request.
"""


class Recording:
    """A real store that also records every write, to prove that a run wrote nothing."""

    def __init__(self, inner: KnowledgeStore) -> None:
        self.inner = inner
        self.collection = inner.collection
        self.upserted: list[str] = []
        self.deleted: list[str] = []

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        self.upserted += [p.point_id for p in points]
        self.inner.upsert(points)

    def delete(self, point_ids: Sequence[str]) -> None:
        self.deleted += list(point_ids)
        self.inner.delete(point_ids)

    def sources(self, source: str | None = None) -> dict[str, str]:
        return self.inner.sources(source)

    def query(self, embedding: Embedding, *, scope: Scope, limit: int, prefetch: int) -> list[RetrievedChunk]:
        return self.inner.query(embedding, scope=scope, limit=limit, prefetch=prefetch)

    def count(self) -> int:
        return self.inner.count()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def references(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, point_id::text, collection, source, chunk_index, property_code, language, heading,"
            " content_hash, is_access, created_at FROM vector_references ORDER BY source, chunk_index"
        ).fetchall()


def run(root: Path, store: KnowledgeStore, embedder: Embedder, dsn: str) -> IngestReport:
    return ingest(root, store=store, embedder=embedder, dsn=dsn, collection=store.collection, progress=True)


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    write(root, "flat-1/en/guide.md", GUIDE)
    write(root, "shared/en/faq.md", FAQ)
    return root


def test_first_run_stores_every_chunk_with_its_reference(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    report = run(kb, store, embedder, clean_db)

    assert report == IngestReport(files=2, added=4, unchanged=0, deleted=0)
    rows = references(clean_db)
    assert [(r[2], r[3], r[4], r[5], r[6], r[7], r[9]) for r in rows] == [
        (store.collection, "flat-1/en/guide.md", 0, "flat-1", "en", "Check-in", False),
        (store.collection, "flat-1/en/guide.md", 1, "flat-1", "en", "Check-out", False),
        (store.collection, "flat-1/en/guide.md", 2, "flat-1", "en", "Wi-Fi", True),
        (store.collection, "shared/en/faq.md", 0, None, "en", "Pets", False),
    ]
    assert store.sources() == {r[1]: r[3] for r in rows}
    assert store.count() == 4


def test_second_run_over_unchanged_files_writes_nothing(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    before = references(clean_db)
    recording = Recording(store)

    report = run(kb, recording, embedder, clean_db)

    assert report == IngestReport(files=2, added=0, unchanged=4, deleted=0)
    assert (recording.upserted, recording.deleted) == ([], [])
    assert references(clean_db) == before


def test_a_modified_file_replaces_only_its_changed_chunks(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    old = {r[7]: r[1] for r in references(clean_db) if r[3] == "flat-1/en/guide.md"}
    write(kb, "flat-1/en/guide.md", GUIDE.replace("by 11:00", "by 10:00"))
    recording = Recording(store)

    report = run(kb, recording, embedder, clean_db)

    assert report == IngestReport(files=2, added=1, unchanged=3, deleted=1)
    new = {r[7]: r[1] for r in references(clean_db) if r[3] == "flat-1/en/guide.md"}
    assert recording.deleted == [old["Check-out"]]
    assert recording.upserted == [new["Check-out"]]
    assert new["Check-out"] != old["Check-out"]
    assert (new["Check-in"], new["Wi-Fi"]) == (old["Check-in"], old["Wi-Fi"])
    assert old["Check-out"] not in store.sources()
    hits = recording.query(embedder.embed_query("check-out time"), scope=Scope("flat-1"), limit=10, prefetch=20)
    checkout = [h.text for h in hits if h.heading == "Check-out"]
    assert checkout == ["Check-out is by 10:00."]


def test_a_deleted_file_loses_its_chunks_in_store_and_table(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    (kb / "flat-1" / "en" / "guide.md").unlink()

    report = run(kb, store, embedder, clean_db)

    assert report == IngestReport(files=1, added=0, unchanged=1, deleted=3)
    assert [r[3] for r in references(clean_db)] == ["shared/en/faq.md"]
    assert set(store.sources().values()) == {"shared/en/faq.md"}
    assert store.count() == 1


def test_a_file_that_breaks_keeps_its_chunks_until_fixed(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    before = references(clean_db)
    write(kb, "flat-1/en/guide.md", "---\naccess: perhaps\n---\n" + GUIDE)

    report = run(kb, store, embedder, clean_db)

    assert report == IngestReport(
        files=2,
        added=0,
        unchanged=1,
        deleted=0,
        errors=("flat-1/en/guide.md: 'access' must be true or false",),
    )
    assert references(clean_db) == before
    assert store.count() == 4


def test_front_matter_access_change_re_gates_the_chunks(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    write(kb, "shared/en/faq.md", "---\nproperty: flat-1\naccess: true\n---\n" + FAQ)

    report = run(kb, store, embedder, clean_db)

    assert report == IngestReport(files=2, added=1, unchanged=3, deleted=1)
    row = next(r for r in references(clean_db) if r[3] == "shared/en/faq.md")
    assert (row[5], row[9]) == ("flat-1", True)


def test_lost_store_or_lost_table_heal_on_the_next_run(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    ids = sorted(store.sources())
    store.delete(ids[:2])  # two points vanish from the store
    with psycopg.connect(clean_db) as conn:  # and two other rows from the table
        conn.execute("DELETE FROM vector_references WHERE point_id = ANY(%s::uuid[])", (ids[2:],))
    recording = Recording(store)

    report = run(kb, recording, embedder, clean_db)

    assert report == IngestReport(files=2, added=2, unchanged=2, deleted=0)
    assert sorted(recording.upserted) == ids[:2]  # only the lost points are embedded again
    assert sorted(store.sources()) == ids
    assert sorted(r[1] for r in references(clean_db)) == ids


def test_points_the_table_does_not_know_are_removed(
    kb: Path, tmp_path: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    old_root = tmp_path / "old"
    shutil.copytree(kb, old_root)
    write(old_root, "flat-2/en/guide.md", FAQ)
    run(old_root, store, embedder, clean_db)
    with psycopg.connect(clean_db) as conn:
        conn.execute("DELETE FROM vector_references WHERE source LIKE 'flat-2/%'")

    report = run(kb, store, embedder, clean_db)

    assert report.deleted == 1
    assert "flat-2/en/guide.md" not in store.sources().values()


def test_documents_are_indexed_updated_and_removed_apart_from_files(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    run(kb, store, embedder, clean_db)
    source = "guesty:listing:64f1c0ffee"
    sections = [
        Section("Listing > Space", "Two bedrooms, a terrace and a river view."),
        Section("Listing > Access", "Lockbox code 3344 at the gate."),
    ]

    first = index_document(
        source, sections, property_code="flat-1", language="en", store=store, embedder=embedder, dsn=clean_db
    )
    again = index_document(
        source, sections, property_code="flat-1", language="en", store=store, embedder=embedder, dsn=clean_db
    )
    rows = [r for r in references(clean_db) if r[3] == source]
    files_again = run(kb, store, embedder, clean_db)
    changed = index_document(
        source, sections[:1], property_code="flat-1", language="en", store=store, embedder=embedder, dsn=clean_db
    )

    assert (first, again, changed) == (SyncReport(added=2), SyncReport(unchanged=2), SyncReport(unchanged=1, deleted=1))
    assert [(r[4], r[5], r[7], r[9]) for r in rows] == [
        (0, "flat-1", "Listing > Space", False),
        (1, "flat-1", "Listing > Access", True),
    ]
    assert files_again == IngestReport(files=2, added=0, unchanged=4, deleted=0)
    assert remove_document(source, store=store, dsn=clean_db) == 1
    assert [r for r in references(clean_db) if r[3] == source] == []
    assert source not in store.sources().values()
    assert store.count() == 4


def test_index_document_wants_an_external_source(store: KnowledgeStore, embedder: Embedder, clean_db: str) -> None:
    with pytest.raises(ValueError, match="guesty:listing"):
        index_document(
            "flat-1/en/guide.md",
            [],
            property_code="flat-1",
            language="en",
            store=store,
            embedder=embedder,
            dsn=clean_db,
        )


def test_ingest_refuses_a_collection_the_store_does_not_hold(
    kb: Path, store: KnowledgeStore, embedder: Embedder, clean_db: str
) -> None:
    with pytest.raises(ValueError, match="collection"):
        ingest(kb, store=store, embedder=embedder, dsn=clean_db, collection="other")
