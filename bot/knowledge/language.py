"""Which language a guest wrote in: for the sparse (BM25) side of retrieval, and for the bot to answer in kind.

Lingua (`lingua-language-detector`) ships its n-gram models inside the wheel, so detection works offline;
it is the most accurate of the offline detectors on the short texts guests write ("wifi?", "Wann ist
Nachtruhe?"). Detection is restricted to the languages we stem (`LANGUAGES`): fewer candidates means fewer
confusions on a three-word question, and a language we could not stem would not help retrieval anyway.
The detector is built once per process (~0.7 s with the models preloaded) and is thread-safe.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector

# ISO 639-1 code -> Snowball stemmer name. Guests of the rentals write these; add one here and a stop-word
# list in bm25/ to support another (the detector and the stemmer pick it up).
LANGUAGES: dict[str, str] = {
    "en": "english",
    "fr": "french",
    "es": "spanish",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
}
# Below this confidence the top language is a guess ("wifi password" reads as Italian at 0.7, "ok thx" as
# French at 0.27); detect_language then says None rather than make the bot answer in the wrong language.
MIN_CONFIDENCE = 0.5
# The sparse side of a query is stemmed in every language at least this fraction as likely as the top one:
# a wrong guess on a short question then costs nothing, since the right language's stems are there too.
CANDIDATE_RATIO = 0.3
MAX_CANDIDATES = 3
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in LANGUAGES]
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


def load_detector() -> None:
    """Load the language models now (a worker calls this at start, so no guest waits for it)."""
    with _lock:
        _detector()


def language_confidences(text: str) -> list[tuple[str, float]]:
    """(ISO 639-1 code, confidence) of every supported language, most likely first; empty for empty text."""
    return list(_confidences(text))


@lru_cache(maxsize=1024)
def _confidences(text: str) -> tuple[tuple[str, float], ...]:
    # Cached: one guest message is detected for the answer's language and again for its BM25 stems (in
    # another thread), and the reply waits on both.
    if not any(ch.isalpha() for ch in text):
        return ()
    with _lock:  # lru_cache builds once; the detector itself is thread-safe
        detector = _detector()
    values = detector.compute_language_confidence_values(text)
    return tuple((v.language.iso_code_639_1.name.lower(), float(v.value)) for v in values)


def detect_language(text: str, *, min_confidence: float = MIN_CONFIDENCE) -> str | None:
    """The ISO 639-1 code ("en", "fr", ...) the text is written in, or None when unsure or empty.

    None means "don't know": the caller keeps its default (the conversation's language so far, or the guide's).
    """
    ranked = language_confidences(text)
    if not ranked or ranked[0][1] < min_confidence:
        return None
    return ranked[0][0]


def query_languages(text: str, *, fallback: str = "en") -> list[str]:
    """The languages a question's words are stemmed in for BM25: the likely ones, most likely first."""
    ranked = language_confidences(text)
    if not ranked:
        return [fallback]
    top = ranked[0][1]
    return [code for code, value in ranked[:MAX_CANDIDATES] if value >= top * CANDIDATE_RATIO and value > 0]
