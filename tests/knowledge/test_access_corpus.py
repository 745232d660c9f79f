"""The labelled corpus of access details: how many codes slip through, how much open text is gated.

`access_corpus.jsonl` holds one line per JSON object: `text`, an optional `heading` (the section's heading
path), `label` ("gated" or "open") and `lang`. Gated lines state a credential with its value or sit under a
heading that names one; open lines are ordinary guide text with numbers, prices, times and mentions of
codes without a value. A missed code leaks to anyone who asks, a false alarm only delays an answer, so the
bar is asymmetric: at least 98 % of gated lines caught, at most 5 % of open lines gated.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bot.knowledge.access import section_is_access

CORPUS = Path(__file__).with_name("access_corpus.jsonl")
LANGUAGES = {"en", "pt", "es", "de", "fr", "it"}


def load_corpus() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        assert row["label"] in {"gated", "open"} and row["lang"] in LANGUAGES and row["text"].strip(), row
    return rows


def test_corpus_is_large_enough_and_multilingual() -> None:
    rows = load_corpus()
    counts = Counter(row["label"] for row in rows)
    assert counts["gated"] >= 50 and counts["open"] >= 50
    for label in ("gated", "open"):
        assert {row["lang"] for row in rows if row["label"] == label} == LANGUAGES
    assert len({(row.get("heading"), row["text"]) for row in rows}) == len(rows), "duplicate lines"


def test_error_rates_on_the_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_corpus()
    gated = [row for row in rows if row["label"] == "gated"]
    open_ = [row for row in rows if row["label"] == "open"]
    missed = [row for row in gated if not section_is_access(row.get("heading"), row["text"])]
    flagged = [row for row in open_ if section_is_access(row.get("heading"), row["text"])]
    caught_rate = 1 - len(missed) / len(gated)
    false_rate = len(flagged) / len(open_)
    with capsys.disabled():
        print(
            f"\naccess corpus: {len(gated) - len(missed)}/{len(gated)} gated lines caught ({caught_rate:.1%}), "
            f"{len(flagged)}/{len(open_)} open lines gated ({false_rate:.1%})"
        )
        for row in missed:
            print(f"  missed  [{row['lang']}] {row.get('heading') or ''} | {row['text']}")
        for row in flagged:
            print(f"  flagged [{row['lang']}] {row.get('heading') or ''} | {row['text']}")
    assert caught_rate >= 0.98
    assert false_rate <= 0.05
