"""BM25 sparse vectors stemmed per language: guides in their own language, questions in the guest's.

The same formula and token hashing as fastembed's `Qdrant/bm25` (term frequency saturated by k and b on
the document side, 1.0 per distinct term on the query side, IDF applied by Qdrant with `Modifier.IDF`),
but the stemmer and stop words follow the text's language instead of always being English: "garer" and
"garez" meet in French, "Nachtruhe" stays German. Stems are folded to ASCII afterwards, so a guest typing
without accents ("contrasena", "numero") still matches the guide.

A question is stemmed in every likely language (`language.query_languages`), plus English (the lingua
franca of "wifi", "check-in" and "parking"), and the terms are merged: a three-word question is often
misdetected, and the right language's stems are then still present.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import mmh3
from py_rust_stemmers import SnowballStemmer

from bot.knowledge.language import LANGUAGES, query_languages
from bot.knowledge.models import SparseVec

STOPWORDS_DIR = Path(__file__).parent / "bm25"
K, B, AVG_LEN = 1.2, 0.75, 256.0  # fastembed's defaults
TOKEN_MAX_LENGTH = 40
DEFAULT_LANGUAGE = "en"
# Identifies the scheme: part of the embedder's model id, so a change here re-embeds every chunk.
VERSION = "bm25-lang1"

_NON_WORD = re.compile(r"[^\w]+")
# Words guests spell three ways ("checkout", "check out", "check-out"): one token each, so a question and a
# guide match whatever the spelling. Applied to documents and queries alike, before tokenizing.
_COMPOUNDS = (
    (re.compile(r"\bcheck[\s-]?(in|out)s?\b", re.IGNORECASE), r"check\1"),
    (re.compile(r"\bwi[\s-]?fi\b", re.IGNORECASE), "wifi"),
    (re.compile(r"\bkey[\s-]?(box|safe)(?:es)?\b", re.IGNORECASE), r"key\1"),
    (re.compile(r"\block[\s-]?box(?:es)?\b", re.IGNORECASE), "lockbox"),
    (re.compile(r"\be-?mail\b", re.IGNORECASE), "email"),
)


def bm25_text(text: str) -> str:
    """The text as BM25 should tokenize it (compound words joined)."""
    for pattern, replacement in _COMPOUNDS:
        text = pattern.sub(replacement, text)
    return text


def tokenize(text: str) -> list[str]:
    return [t for t in _NON_WORD.sub(" ", bm25_text(text).lower()).split() if len(t) <= TOKEN_MAX_LENGTH]


@cache
def _analyzer(language: str) -> tuple[SnowballStemmer, frozenset[str]]:
    name = LANGUAGES[language]
    path = STOPWORDS_DIR / f"{name}.txt"
    words = path.read_text(encoding="utf-8").split() if path.is_file() else []
    return SnowballStemmer(name), frozenset(words)


def _fold(token: str) -> str:
    if token.isascii():
        return token
    return "".join(c for c in unicodedata.normalize("NFKD", token) if not unicodedata.combining(c))


def terms(text: str, language: str | None) -> list[str]:
    """The text's index terms in one language: stop words dropped, stemmed, accents folded."""
    code = language if language in LANGUAGES else DEFAULT_LANGUAGE
    stemmer, stopwords = _analyzer(code)
    found = []
    for token in tokenize(text):
        if token in stopwords:
            continue
        stem = _fold(stemmer.stem_word(token))
        if stem:
            found.append(stem)
    return found


def token_id(term: str) -> int:
    return abs(mmh3.hash(term))


def document_vector(text: str, language: str | None) -> SparseVec:
    """BM25 term weights of a chunk, stemmed in the chunk's (guide's) language."""
    counts = Counter(terms(text, language))
    length = sum(counts.values())
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = token_id(term)
        weight = tf * (K + 1) / (tf + K * (1 - B + B * length / AVG_LEN))
        weights[index] = weights.get(index, 0.0) + weight  # hash collisions add up, as in fastembed
    return _vec(weights)


def query_vector(text: str, languages: Sequence[str] | None = None) -> SparseVec:
    """One weight per distinct term of the question, stemmed in each of its likely languages."""
    langs: Iterable[str] = languages if languages is not None else [*query_languages(text), DEFAULT_LANGUAGE]
    ids = {token_id(term) for lang in langs for term in terms(text, lang)}
    return _vec(dict.fromkeys(sorted(ids), 1.0))


def _vec(weights: dict[int, float]) -> SparseVec:
    indices = sorted(weights)
    return SparseVec(indices=indices, values=[weights[i] for i in indices])
