"""`sidecar eval`: retrieval and the answer-or-hand-off decision, measured on a questions file.

bot.knowledge.evaluation scores retrieval (recall@1/@5, MRR per language and per kind). This adds what the
guest experiences next: each question goes through the real decision path (bot.answer.answer_question,
offline unless GROQ_API_KEY is set) in the question's language, and the report counts answers and
hand-offs per language and per kind. The right decision is to answer an answerable question and to hand
off one the guides cannot answer; both error kinds are listed.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bot.answer.groq_llm import llm_from_settings
from bot.answer.pipeline import answer_question
from bot.knowledge import Embedder, Retriever
from bot.knowledge.evaluation import (
    DEFAULT_KNOWLEDGE,
    DEPTH,
    EvalReport,
    Question,
    build_store,
    evaluate,
    load_questions,
    report_of,
)
from config.settings import Settings


@dataclass(frozen=True)
class Decision:
    id: str
    question: str
    lang: str
    kind: str
    answerable: bool
    decision: str  # "answer" | "handoff"
    reason: str | None

    @property
    def right(self) -> bool:
        return (self.decision == "answer") == self.answerable


@dataclass
class Tally:
    questions: int = 0
    answered: int = 0
    handed_off: int = 0
    right: int = 0

    def add(self, d: Decision) -> None:
        self.questions += 1
        self.answered += d.decision == "answer"
        self.handed_off += d.decision == "handoff"
        self.right += d.right


@dataclass
class FullReport:
    retrieval: EvalReport
    model: str
    decisions: list[Decision] = field(repr=False)
    by_lang: dict[str, Tally] = field(default_factory=dict)
    by_kind: dict[str, Tally] = field(default_factory=dict)

    @property
    def wrong(self) -> list[Decision]:
        return [d for d in self.decisions if not d.right]

    def to_text(self) -> str:
        lines = [
            self.retrieval.to_text(),
            "",
            f"decisions (answering model: {self.model}):",
            f"  {'':12} {'n':>4} {'answered':>9} {'handed off':>11} {'right':>7}",
        ]
        for title, table in (("language", self.by_lang), ("kind", self.by_kind)):
            lines.append(f"  by {title}:")
            for name, t in table.items():
                lines.append(
                    f"  {name:12} {t.questions:4d} {t.answered:9d} {t.handed_off:11d} "
                    f"{t.right / t.questions if t.questions else 0:7.2f}"
                )
        wrong = self.wrong
        lines.append(f"wrong decisions: {len(wrong)}")
        lines.extend(
            f"  [{d.lang} {d.kind}] {d.decision}{f' ({d.reason})' if d.reason else ''}: {d.question}"
            for d in wrong[:40]
        )
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "retrieval": self.retrieval.to_dict(),
                "model": self.model,
                "by_lang": {k: asdict(v) for k, v in self.by_lang.items()},
                "by_kind": {k: asdict(v) for k, v in self.by_kind.items()},
                "decisions": [asdict(d) for d in self.decisions],
            },
            ensure_ascii=False,
            indent=2,
        )


async def decide(retriever: Retriever, questions: Sequence[Question], settings: Settings) -> tuple[list[Decision], str]:
    """Each question through retrieval and the answering pipeline, as the bot would answer it."""
    decisions: list[Decision] = []
    async with httpx.AsyncClient(timeout=30) as http:
        llm = llm_from_settings(settings, http)
        for q in questions:
            rights = frozenset({q.property_code}) if q.property_code and q.access else frozenset()
            chunks = retriever.search(
                q.question,
                property_code=q.property_code,
                access_properties=rights,
                private_properties=rights,
                limit=DEPTH,
            )
            outcome = await answer_question(q.question, chunks=chunks[:5], llm=llm, language=q.lang)
            decisions.append(Decision(q.id, q.question, q.lang, q.kind, q.answerable, outcome.kind, outcome.reason))
    return decisions, (llm.model if llm is not None else "offline")


def _tally(decisions: Sequence[Decision], key: str) -> dict[str, Tally]:
    table: dict[str, Tally] = defaultdict(Tally)
    for d in decisions:
        table[str(getattr(d, key))].add(d)
    return dict(sorted(table.items()))


def run(questions_path: Path, *, knowledge_path: Path | None, settings: Settings) -> FullReport:
    """Retrieval scores and decisions over a temporary embedded store of the knowledge folder(s)."""
    questions = load_questions(questions_path)
    roots: list[Path] = [knowledge_path] if knowledge_path is not None else list(DEFAULT_KNOWLEDGE)
    embedder = Embedder.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="sidecar-eval-") as folder:
        store, chunks = build_store(roots, embedder, Path(folder))
        try:
            retriever = Retriever(store, embedder)
            outcomes, timings = evaluate(retriever, questions)
            decisions, model = asyncio.run(decide(retriever, questions, settings))
        finally:
            store.close()
    retrieval = report_of(outcomes, timings, model_id=embedder.model_id, knowledge=roots, chunks=chunks)
    return FullReport(retrieval, model, decisions, _tally(decisions, "lang"), _tally(decisions, "kind"))


def gate(report: FullReport, *, min_same: float, min_cross: float) -> list[str]:
    """Why the report fails the regression gate (empty when it passes)."""
    problems: list[str] = []
    for match, floor in (("same", min_same), ("cross", min_cross)):
        found = report.retrieval.by_match.get(match)
        if found is not None and found.recall_at_5 < floor:
            problems.append(f"recall@5 {match}-language {found.recall_at_5:.3f} is below {floor:.3f}")
    return problems
