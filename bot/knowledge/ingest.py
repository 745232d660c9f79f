"""Ingest: make the store (and the vector_references table) hold exactly the chunks of the knowledge.

Incremental by construction: a chunk's point id is derived from its source, position and content hash,
so an unchanged chunk maps to a point that already exists and is skipped; a changed chunk gets a new
id (the old one is deleted); a deleted file leaves only stale ids, which are deleted. The store and the
table are reconciled against each other too, so a wiped store or table heals on the next run.

Two scopes share this machinery: `ingest()` owns every *file* source (paths relative to the knowledge
root); `index_document()`/`remove_document()` own one external source such as "guesty:listing:<id>".
Neither touches the other's points.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot.knowledge.chunking import MAX_CHARS, OVERLAP, chunk_document
from bot.knowledge.documents import DocumentError, discover, load_document
from bot.knowledge.embeddings import Embedder
from bot.knowledge.models import Chunk, Document, Embedding, IngestReport, Section, SyncReport
from bot.knowledge.store import KnowledgeStore, StoredPoint, chunk_payload

EMBED_BATCH = 64
# "guesty:listing:123" is an external source; "lis-alfama/en/guide.md" is a file under the root.
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:")
_EXTERNAL_SQL = "^[a-z][a-z0-9+.-]*:"


def is_external_source(source: str) -> bool:
    return bool(_EXTERNAL.match(source))


def ingest(
    root: Path,
    *,
    store: KnowledgeStore,
    embedder: Embedder,
    dsn: str,
    collection: str | None = None,
    progress: bool = False,
    default_language: str | None = "en",
    max_chars: int = MAX_CHARS,
    overlap: int = OVERLAP,
) -> IngestReport:
    """Sync every knowledge file under `root` into the store; files gone from `root` lose their chunks.

    A file that cannot be read is reported in `errors` and keeps its previously stored chunks.
    """
    collection = _collection(store, collection)
    chunks: list[Chunk] = []
    errors: list[str] = []
    failed: set[str] = set()
    files = discover(root)
    for path in files:
        try:
            document = load_document(path, root, default_language=default_language)
        except DocumentError as exc:
            errors.append(str(exc))
            failed.add(path.relative_to(root).as_posix())
            continue
        chunks.extend(
            chunk_document(
                document,
                collection=collection,
                model_id=embedder.model_id,
                max_chars=max_chars,
                overlap=overlap,
            )
        )
    with psycopg.connect(dsn) as conn:
        refs = _refs(conn, collection, source=None)
        stored = {pid: src for pid, src in store.sources().items() if not is_external_source(src)}
        keep = {pid for pid, src in {**refs, **stored}.items() if src in failed}
        report = _sync(conn, store, embedder, collection, chunks, refs, stored, keep=keep, progress=progress)
    return IngestReport(
        files=len(files),
        added=report.added,
        unchanged=report.unchanged,
        deleted=report.deleted,
        errors=tuple(errors),
    )


def index_document(
    source: str,
    sections: Sequence[Section],
    *,
    property_code: str | None,
    language: str | None,
    store: KnowledgeStore,
    embedder: Embedder,
    dsn: str,
    title: str | None = None,
    max_chars: int = MAX_CHARS,
    overlap: int = OVERLAP,
) -> SyncReport:
    """Make the store hold exactly these sections for an external source (e.g. "guesty:listing:<id>").

    Re-running with the same sections writes nothing; sections that changed or vanished are replaced
    or deleted. Sections with access details (stated or detected) are gated like file knowledge.
    """
    if not is_external_source(source):
        raise ValueError(f"external sources look like 'guesty:listing:<id>', not {source!r}")
    document = Document(
        source=source, property_code=property_code, language=language, sections=tuple(sections), title=title
    )
    chunks = chunk_document(
        document,
        collection=store.collection,
        model_id=embedder.model_id,
        max_chars=max_chars,
        overlap=overlap,
    )
    with psycopg.connect(dsn) as conn:
        refs = _refs(conn, store.collection, source=source)
        stored = store.sources(source)
        return _sync(conn, store, embedder, store.collection, chunks, refs, stored, keep=set(), progress=False)


def remove_document(source: str, *, store: KnowledgeStore, dsn: str) -> int:
    """Delete every chunk of one source (a listing that was removed); returns how many were deleted."""
    with psycopg.connect(dsn) as conn:
        refs = _refs(conn, store.collection, source=source)
        stale = set(refs) | set(store.sources(source))
        _delete(conn, store, store.collection, stale)
    if stale:
        store.flush()
    return len(stale)


def _sync(
    conn: psycopg.Connection,
    store: KnowledgeStore,
    embedder: Embedder,
    collection: str,
    chunks: list[Chunk],
    refs: dict[str, str],
    stored: dict[str, str],
    *,
    keep: set[str],
    progress: bool,
) -> SyncReport:
    wanted = {c.point_id: c for c in chunks}
    to_embed = [c for pid, c in wanted.items() if pid not in stored]
    to_reference = [c for pid, c in wanted.items() if pid in stored and pid not in refs]
    stale = (set(refs) | set(stored)) - set(wanted) - keep

    with _progress_bar(progress, len(to_embed)) as advance:
        for start in range(0, len(to_embed), EMBED_BATCH):
            batch = to_embed[start : start + EMBED_BATCH]
            vectors = _embed(embedder, batch)
            store.upsert([StoredPoint(c.point_id, v, chunk_payload(c)) for c, v in zip(batch, vectors, strict=True)])
            _reference(conn, collection, batch)
            conn.commit()
            advance(len(batch))
    _reference(conn, collection, to_reference)  # points the table lost track of: no need to embed again
    conn.commit()
    _delete(conn, store, collection, stale)
    if to_embed or stale:
        store.flush()
    return SyncReport(added=len(to_embed), unchanged=len(wanted) - len(to_embed), deleted=len(stale))


def _embed(embedder: Embedder, chunks: Sequence[Chunk]) -> list[Embedding]:
    """Vectors of chunks, BM25-stemmed in each chunk's (guide's) language.

    Embedders without a `languages` parameter (test doubles written before it) are called without it.
    """
    texts = [c.embed_text for c in chunks]
    if "languages" in inspect.signature(embedder.embed_documents).parameters:
        return embedder.embed_documents(texts, languages=[c.language for c in chunks])
    return embedder.embed_documents(texts)


def _delete(conn: psycopg.Connection, store: KnowledgeStore, collection: str, stale: set[str]) -> None:
    if not stale:
        return
    ids = sorted(stale)
    store.delete(ids)  # store first: a failure here leaves the references, so the next run retries
    conn.execute(
        "DELETE FROM vector_references WHERE collection = %s AND point_id = ANY(%s::uuid[])",
        (collection, ids),
    )
    conn.commit()


def _refs(conn: psycopg.Connection, collection: str, *, source: str | None) -> dict[str, str]:
    """point id -> source of the references in scope: one source, or all file sources."""
    if source is not None:
        rows = conn.execute(
            "SELECT point_id::text, source FROM vector_references WHERE collection = %s AND source = %s",
            (collection, source),
        )
    else:
        rows = conn.execute(
            "SELECT point_id::text, source FROM vector_references WHERE collection = %s AND source !~ %s",
            (collection, _EXTERNAL_SQL),
        )
    return {pid: src for pid, src in rows}


def _reference(conn: psycopg.Connection, collection: str, chunks: Sequence[Chunk]) -> None:
    if not chunks:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO vector_references (point_id, collection, source, chunk_index, property_code,"
            " language, heading, content_hash, is_access, gate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (point_id) DO UPDATE SET collection = EXCLUDED.collection,"
            " source = EXCLUDED.source, chunk_index = EXCLUDED.chunk_index,"
            " property_code = EXCLUDED.property_code,"
            " language = EXCLUDED.language, heading = EXCLUDED.heading, content_hash = EXCLUDED.content_hash,"
            " is_access = EXCLUDED.is_access, gate = EXCLUDED.gate",
            [
                (
                    c.point_id,
                    collection,
                    c.source,
                    c.chunk_index,
                    c.property_code,
                    c.language,
                    c.heading,
                    c.content_hash,
                    c.is_access,
                    c.gate,
                )
                for c in chunks
            ],
        )


def _collection(store: KnowledgeStore, collection: str | None) -> str:
    if collection is not None and collection != store.collection:
        raise ValueError(f"the store holds collection {store.collection!r}, not {collection!r}")
    return store.collection


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silent in logs, pipes and tests."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("embedding chunks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal and total > 0),
    ) as bar:
        task = bar.add_task("embed", total=total)
        yield lambda n: bar.advance(task, n)
