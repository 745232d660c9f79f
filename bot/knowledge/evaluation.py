"""Retrieval evaluation: does the passage holding the answer reach the top 5, in every language guests write?

    report = run_eval(Path("questions.jsonl"), knowledge_path=Path("knowledge"), settings=settings)
    print(report.to_text()); Path("eval.json").write_text(report.to_json())

Each question runs through the real `Retriever.search()` (dense + language-aware BM25, RRF in Qdrant Edge)
with the guest's property filter, over the knowledge ingested into a throw-away embedded store (a temp
folder; no PostgreSQL and no running worker needed, and the live store is never touched). By default the
search has the property's access and private rights (a guest in their stay), so door-code and address
questions are measured too; a question with `"access": false` searches as a guest before their stay.

Questions file: JSON Lines, one object a line (blank lines and lines starting with // are skipped):

    {"id": "lis-co-fr", "question": "À quelle heure faut-il partir ?", "lang": "fr",
     "property": "lis-alfama", "kind": "cross-language",
     "expected": ["lis-alfama/en/guide.md#Check-out", "lis-alfama/pt/guia.md#Check-out"]}

- `expected`: passages that answer, any of them counts: "<source>#<heading>" where the heading matches the
  chunk's full heading path or its last part(s) ("Check-out" matches "Arrival and departure > Check-out");
  "<source>" alone accepts any chunk of the file. Empty for an unanswerable question.
- `property`: the guest's property code, or null (shared knowledge only).
- `kind`: same-language, cross-language, paraphrase, typo, slang or unanswerable (free text; grouped on).
- `lang`: the question's language (ISO 639-1).

Besides the author's `kind`, every answerable question is classed "same" when its language is the language
of one of its expected passages and "cross" otherwise (language from the source path, e.g. `/pt/`); the
goals are stated on those two classes. Unanswerable questions are not in recall; the report lists what
they retrieved first, for a reader to judge.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.knowledge.chunking import HEADING_SEPARATOR, chunk_document
from bot.knowledge.documents import discover, folder_metadata, load_document
from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import Embedder
from bot.knowledge.models import Chunk, RetrievedChunk
from bot.knowledge.retrieval import Retriever
from bot.knowledge.store import StoredPoint, chunk_payload

if TYPE_CHECKING:
    from config.settings import Settings

PACKAGE = Path(__file__).parent
EXAMPLES = PACKAGE / "examples"
EVAL_DIR = PACKAGE / "eval"
EVAL_GUIDES = EVAL_DIR / "guides"  # guides only the evaluation uses (the Italian one), beside the examples
QUESTIONS = EVAL_DIR / "questions.jsonl"
DEFAULT_KNOWLEDGE = (EXAMPLES, EVAL_GUIDES)
KINDS = ("same-language", "cross-language", "paraphrase", "typo", "slang", "unanswerable")
DEPTH = 10  # hits fetched per question: MRR counts ranks up to here
EMBED_BATCH = 64


class EvalError(ValueError):
    """The questions file is malformed; the message names the line."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    kind: str
    expected: tuple[str, ...]
    property_code: str | None = None  # "property" in the file
    access: bool = True

    @property
    def answerable(self) -> bool:
        return bool(self.expected)

    @property
    def match(self) -> str:
        """ "same" if the question's language is one of its answers' languages, "cross" otherwise."""
        langs = {expected_language(e) for e in self.expected}
        return "same" if self.lang in langs else "cross"


@dataclass(frozen=True)
class Outcome:
    """One question's result: the rank (1-based) of the first answering hit, and what came first."""

    id: str
    question: str
    lang: str
    kind: str
    match: str
    property_code: str | None
    expected: tuple[str, ...]
    rank: int | None
    top: tuple[str, ...]  # "source#heading" of the first hits


@dataclass(frozen=True)
class Scores:
    questions: int
    recall_at_1: float
    recall_at_5: float
    mrr: float


@dataclass
class EvalReport:
    """Recall@1/@5 and MRR overall, per same/cross language, per language and per kind, with the misses."""

    model_id: str
    knowledge: list[str]
    chunks: int
    overall: Scores
    by_match: dict[str, Scores]
    by_lang: dict[str, Scores]
    by_kind: dict[str, Scores]
    misses: list[Outcome]
    unanswerable: list[Outcome]
    outcomes: list[Outcome] = field(repr=False)
    search_ms_p50: float = 0.0
    search_ms_p95: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_text(self) -> str:
        lines = [
            f"model {self.model_id}: {self.overall.questions} answerable questions over {self.chunks} chunks "
            f"({', '.join(self.knowledge)})",
            f"search (embed + filtered hybrid query) p50 {self.search_ms_p50:.1f} ms, p95 {self.search_ms_p95:.1f} ms",
            "",
            f"{'':<22}{'n':>5}{'R@1':>8}{'R@5':>8}{'MRR':>8}",
            _row("all", self.overall),
        ]
        for title, group in (("language match", self.by_match), ("language", self.by_lang), ("kind", self.by_kind)):
            lines.append(f"-- {title}")
            lines += [_row(name, scores) for name, scores in group.items()]
        lines.append("")
        lines.append(f"misses (answer not in the top 5): {len(self.misses)}")
        for miss in self.misses:
            where = f"rank {miss.rank}" if miss.rank else f"not in top {DEPTH}"
            who = miss.property_code or "shared"
            lines.append(f"  [{miss.id}] {miss.lang} {miss.kind} {who}: {miss.question!r} ({where})")
            lines.append(f"      expected {', '.join(miss.expected)}")
            lines.append(f"      got      {', '.join(miss.top[:3])}")
        if self.unanswerable:
            lines.append(f"unanswerable questions (first hit, for review): {len(self.unanswerable)}")
            lines += [f"  [{u.id}] {u.question!r} -> {u.top[0] if u.top else '-'}" for u in self.unanswerable]
        return "\n".join(lines)


def _row(name: str, scores: Scores) -> str:
    return f"{name:<22}{scores.questions:>5}{scores.recall_at_1:>8.3f}{scores.recall_at_5:>8.3f}{scores.mrr:>8.3f}"


def expected_language(expected: str) -> str | None:
    """The language of an expected passage's file, from its folders (`lis-alfama/pt/guia.md` -> "pt")."""
    return folder_metadata(Path(expected.partition("#")[0]))[1]


def load_questions(path: Path) -> list[Question]:
    """Parse a questions file; raise EvalError naming the line on bad input."""
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            raw = json.loads(line)
            expected = raw.get("expected") or []
            if isinstance(expected, str):
                expected = [expected]
            question = Question(
                id=str(raw.get("id") or f"line-{number}"),
                question=str(raw["question"]),
                lang=str(raw["lang"]).lower(),
                property_code=raw.get("property"),
                kind=str(raw.get("kind") or ("unanswerable" if not expected else "same-language")),
                expected=tuple(str(e) for e in expected),
                access=bool(raw.get("access", True)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvalError(f"{path}:{number}: needs question, lang and expected ({exc})") from exc
        if question.id in seen:
            raise EvalError(f"{path}:{number}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise EvalError(f"{path}: no questions")
    return questions


def answers(hit: RetrievedChunk, expected: str) -> bool:
    """True when the hit is (part of) the expected passage "<source>#<heading>"."""
    source, _, heading = expected.partition("#")
    if hit.source != source:
        return False
    if not heading:
        return True
    got = hit.heading or ""
    return got == heading or got.endswith(HEADING_SEPARATOR + heading)


def build_store(
    roots: Sequence[Path], embedder: Embedder, folder: Path, *, collection: str = "eval"
) -> tuple[EdgeStore, int]:
    """The knowledge under `roots` embedded into a new Edge store in `folder`; returns it and its chunk count."""
    chunks: list[Chunk] = []
    for root in roots:
        for path in discover(root):
            document = load_document(path, root)
            chunks += chunk_document(document, collection=collection, model_id=embedder.model_id)
    store = EdgeStore(folder / collection, collection, dim=embedder.dim)
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        vectors = embedder.embed_documents([c.embed_text for c in batch], languages=[c.language for c in batch])
        store.upsert([StoredPoint(c.point_id, v, chunk_payload(c)) for c, v in zip(batch, vectors, strict=True)])
    store.flush()
    return store, len(chunks)


def evaluate(retriever: Retriever, questions: Iterable[Question]) -> tuple[list[Outcome], list[float]]:
    """Run each question through the retriever; the outcomes, and each search's milliseconds."""
    outcomes: list[Outcome] = []
    timings: list[float] = []
    for q in questions:
        rights = frozenset({q.property_code}) if q.property_code and q.access else frozenset()
        started = time.perf_counter()
        hits = retriever.search(
            q.question, property_code=q.property_code, access_properties=rights, private_properties=rights, limit=DEPTH
        )
        timings.append((time.perf_counter() - started) * 1000)
        rank = next((i for i, h in enumerate(hits, start=1) if any(answers(h, e) for e in q.expected)), None)
        outcomes.append(
            Outcome(
                id=q.id,
                question=q.question,
                lang=q.lang,
                kind=q.kind,
                match=q.match if q.answerable else "none",
                property_code=q.property_code,
                expected=q.expected,
                rank=rank,
                top=tuple(f"{h.source}#{h.heading or ''}" for h in hits[:5]),
            )
        )
    return outcomes, timings


def scores(outcomes: Sequence[Outcome]) -> Scores:
    n = len(outcomes)
    if not n:
        return Scores(0, 0.0, 0.0, 0.0)
    ranks = [o.rank for o in outcomes]
    return Scores(
        questions=n,
        recall_at_1=sum(r == 1 for r in ranks) / n,
        recall_at_5=sum(r is not None and r <= 5 for r in ranks) / n,
        mrr=sum(1 / r for r in ranks if r) / n,
    )


def _grouped(outcomes: Sequence[Outcome], key: str, order: Sequence[str] = ()) -> dict[str, Scores]:
    names = sorted({str(getattr(o, key)) for o in outcomes}, key=lambda n: (order.index(n) if n in order else 99, n))
    return {name: scores([o for o in outcomes if str(getattr(o, key)) == name]) for name in names}


def report_of(
    outcomes: list[Outcome], timings: list[float], *, model_id: str, knowledge: Sequence[Path], chunks: int
) -> EvalReport:
    answerable = [o for o in outcomes if o.expected]
    ordered = sorted(timings)
    return EvalReport(
        model_id=model_id,
        knowledge=[str(p) for p in knowledge],
        chunks=chunks,
        overall=scores(answerable),
        by_match=_grouped(answerable, "match", ("same", "cross")),
        by_lang=_grouped(answerable, "lang", ("en", "pt", "de", "it", "fr", "es")),
        by_kind=_grouped(answerable, "kind", KINDS),
        misses=[o for o in answerable if o.rank is None or o.rank > 5],
        unanswerable=[o for o in outcomes if not o.expected],
        outcomes=outcomes,
        search_ms_p50=statistics.median(ordered) if ordered else 0.0,
        search_ms_p95=ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0,
    )


def run_eval(
    questions_path: Path = QUESTIONS,
    *,
    knowledge_path: Path | Sequence[Path] | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
) -> EvalReport:
    """Evaluate retrieval on a questions file over a knowledge folder (default: the bundled examples plus the
    evaluation's own guides), with the embedding model of `settings` (EMBEDDING_MODEL) or `embedder`.

    The knowledge is embedded into a temporary embedded store, so this runs anywhere, beside a live worker.
    """
    questions = load_questions(questions_path)
    if knowledge_path is None:
        roots: list[Path] = list(DEFAULT_KNOWLEDGE)
    elif isinstance(knowledge_path, Path):
        roots = [knowledge_path]
    else:
        roots = list(knowledge_path)
    if embedder is None:
        if settings is None:
            from config.settings import load_settings

            settings = load_settings()
        embedder = Embedder.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="sidecar-eval-") as folder:
        store, chunks = build_store(roots, embedder, Path(folder))
        try:
            outcomes, timings = evaluate(Retriever(store, embedder), questions)
        finally:
            store.close()
    return report_of(outcomes, timings, model_id=embedder.model_id, knowledge=roots, chunks=chunks)
