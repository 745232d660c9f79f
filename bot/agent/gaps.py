"""Knowledge gaps: what guests ask that the guides do not answer, grouped by topic and property.

Two signals say the knowledge has a hole: a hand-off because nothing relevant was found or the model
could not ground its answer (qa_records.handoff_reason), and an agent who corrected the bot's suggestion
before sending it (an edited /send, suggestion_approvals.edited). Questions are grouped by meaning (their
embeddings, greedy clustering by cosine similarity within one property), each group is named by its most
common words, and groups are ranked by size. `sidecar gaps` prints them; the weekly report posts them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

GAP_REASONS = ("no_context", "not_found", "model_handoff", "unverified_number")
SIMILARITY = 0.55  # cosine similarity above which two questions are the same topic
EXAMPLES = 3

# Words that name no topic, in the languages the bot speaks.
_STOP = frozenset(
    " ".join(
        (
            "a about al am an and any are as at avec be c'è can che ci com come comment como con could cuál",
            "cuándo cómo da das de del der des di did die do does dos dove du dónde e ein eine el em en es est",
            "et for from für get gibt gli got had has have hay he hello here hi how i il im in is ist it ja know",
            "la las le les lo los ma me mes mi mia mio mit mon my na nas need nicht no nos not não o oder of on",
            "onde or os ou our où para per please por pour qual quale quand quando que quel quelle se she should",
            "sim sind some son sono sont su tell thank thanks that the there there's they this to tu um uma un",
            "una und us von vos votre wann want was we what when where which who why wie will with wo would y",
            "yes you your zu è",
        )
    ).split()
)


@dataclass(frozen=True)
class Asked:
    question: str
    property_code: str | None
    kind: str  # "handoff" | "correction"
    at: datetime


@dataclass
class Gap:
    property_code: str | None
    questions: list[Asked] = field(default_factory=list)
    centroid: list[float] = field(default_factory=list)
    topic: str = ""

    @property
    def handoffs(self) -> int:
        return sum(1 for q in self.questions if q.kind == "handoff")

    @property
    def corrections(self) -> int:
        return sum(1 for q in self.questions if q.kind == "correction")

    @property
    def examples(self) -> list[str]:
        return list(dict.fromkeys(q.question for q in self.questions))[:EXAMPLES]


async def gap_signals(db: AsyncConnectionPool, since: datetime) -> list[Asked]:
    """The questions behind knowledge hand-offs and agents' corrections since `since`."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT question, property_code, 'handoff', created_at FROM qa_records"
            " WHERE created_at >= %(since)s AND handoff_reason = ANY(%(reasons)s)"
            " UNION ALL"
            " SELECT q.question, q.property_code, 'correction', a.approved_at FROM suggestion_approvals a"
            " JOIN qa_records q ON q.id = a.qa_id WHERE a.edited AND a.approved_at >= %(since)s"
            " ORDER BY 4",
            {"since": since, "reasons": list(GAP_REASONS)},
        )
        return [Asked(*row) for row in await cur.fetchall()]


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def topic_name(questions: Sequence[str], words: int = 3) -> str:
    """A group's name from its most common meaningful words (the offline namer)."""
    counts: Counter[str] = Counter()
    for question in questions:
        seen = {w for w in re.findall(r"[^\W\d_]{3,}", question.lower()) if w not in _STOP}
        counts.update(sorted(seen))  # ties keep a fixed order (a set iterates in hash order)
    return " / ".join(word for word, _ in counts.most_common(words)) or "(no words)"


def group(asked: Sequence[Asked], embed: Callable[[str], list[float]], *, similarity: float = SIMILARITY) -> list[Gap]:
    """Greedy clustering: each question joins the most similar group of its property above `similarity`."""
    gaps: list[Gap] = []
    for item in asked:
        vector = embed(item.question)
        best, best_score = None, similarity
        for gap in gaps:
            if gap.property_code != item.property_code:
                continue
            score = _cosine(vector, gap.centroid)
            if score >= best_score:
                best, best_score = gap, score
        if best is None:
            gaps.append(Gap(item.property_code, [item], list(vector)))
            continue
        n = len(best.questions)
        best.centroid = [(c * n + v) / (n + 1) for c, v in zip(best.centroid, vector, strict=True)]
        best.questions.append(item)
    for gap in gaps:
        gap.topic = topic_name([q.question for q in gap.questions])
    return sorted(gaps, key=lambda g: (-len(g.questions), -g.corrections, g.topic))


def render(gaps: Sequence[Gap], *, since: datetime, limit: int = 20) -> str:
    """The ranked list, for the terminal and for the weekly private note."""
    if not gaps:
        return f"No knowledge gaps since {since:%Y-%m-%d}: every question found its passage."
    lines = [f"Knowledge gaps since {since:%Y-%m-%d} (hand-offs without an answer, agents' corrections):"]
    for rank, gap in enumerate(gaps[:limit], start=1):
        where = gap.property_code or "shared"
        lines.append(
            f"{rank}. {gap.topic} [{where}]: {len(gap.questions)} questions "
            f"({gap.handoffs} hand-offs, {gap.corrections} corrections)"
        )
        lines.extend(f"   - {example}" for example in gap.examples)
    return "\n".join(lines)
