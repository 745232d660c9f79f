"""Small text normalisation shared by the offline answerer and the human-request detector."""

from __future__ import annotations

import re
import unicodedata

_COMPOUNDS = (
    (re.compile(r"\bcheck[\s\-]?outs?\b"), "checkout"),
    (re.compile(r"\bcheck[\s\-]?ins?\b"), "checkin"),
    (re.compile(r"\bwi[\s\-]?fi\b"), "wifi"),
    (re.compile(r"\be[\s\-]mail\b"), "email"),
    (re.compile(r"\b(air[\s\-]?con(ditioning|ditioner)?|ar condicionado|aire acondicionado)\b"), "aircon"),
    (re.compile(r"\bmot de passe\b"), "password"),
    (re.compile(r"\bwashing machine\b"), "laundry"),
    (re.compile(r"\blave[\s\-]linge\b"), "laundry"),
)
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower-case without accents ("Não" -> "nao", "Schlüssel" -> "schlussel"), apostrophes unified."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'").replace("ß", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    """Folded words, with a few compounds joined so "check-out", "check out" and "checkout" agree."""
    folded = fold(text)
    for pattern, replacement in _COMPOUNDS:
        folded = pattern.sub(replacement, folded)
    return _WORD.findall(folded)
