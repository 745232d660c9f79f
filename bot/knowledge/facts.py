"""The few facts a guide and a listing both state, read from guide text: check-in and check-out times,
the most guests, and whether pets are allowed.

Guides are written by hand and drift from the listing the channels show (the host moves check-in to
14:00 in Guesty and forgets the guide). These readers find each fact in a passage in the bundled
languages, so the listing mirror can compare and flag what disagrees. Each returns None when the passage
does not state the fact: silence is not a disagreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_F = re.IGNORECASE | re.UNICODE
_TIME = r"(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.|uhr|h)?"
_CHECK_IN = r"(?:check[- ]?in|self check-in|chegada|entrada|llegada|anreise|einchecken|arriv[ée]e|arrivo)"
_CHECK_OUT = r"(?:check[- ]?out|sa[íi]da|salida|abreise|auschecken|d[ée]part|partenza)"
_FROM = (
    r"(?:is |ist |é |es |est |è )?(?:from|after|at|by|before|until|ab|um|bis|a partir das|a partir de las|"
    r"desde las|à partir de|dès|dalle|entro le|antes das|antes de las|avant|jusqu'à|:)?\s*"
)
_GUESTS = re.compile(
    r"(?:up to|sleeps|max(?:imum)?(?: of)?|for up to|bis zu|maximal|até|hasta|jusqu'à|fino a|massimo)\s+(\d{1,2})\s*"
    r"(?:guests|people|persons|adults|personen|gäste|pessoas|hóspedes|personas|huéspedes|personnes|voyageurs|"
    r"persone|ospiti)",
    _F,
)
_NO_PETS = re.compile(
    r"\bno pets\b|pets are not (?:allowed|permitted)|\bkeine haustiere\b|haustiere (?:sind )?nicht erlaubt|"
    r"n[ãa]o (?:são )?(?:permitidos|aceitamos) animais|animais n[ãa]o (?:são )?permitidos|no se admiten mascotas|"
    r"\bsin mascotas\b|animaux (?:ne sont )?(?:pas |non )?(?:admis|accept[ée]s)|pas d'animaux|"
    r"animali non (?:sono )?ammessi|niente animali",
    _F,
)
_PETS_OK = re.compile(
    r"pets? (?:are |is )?(?:welcome|allowed)|pet[- ]friendly|haustiere (?:sind )?(?:willkommen|erlaubt)|"
    r"animais (?:são )?(?:bem-vindos|permitidos)|se admiten mascotas|mascotas bienvenidas|"
    r"animaux (?:sont )?(?:bienvenus|admis|accept[ée]s)|animali (?:sono )?(?:benvenuti|ammessi)",
    _F,
)


@dataclass(frozen=True)
class GuideFacts:
    check_in: str | None = None  # "15:00"
    check_out: str | None = None
    max_guests: int | None = None
    pets: bool | None = None


def _clock(hour: str, minute: str | None, suffix: str | None) -> str | None:
    h, m = int(hour), int(minute or 0)
    tag = (suffix or "").lower().replace(".", "")
    if tag == "pm" and h < 12:
        h += 12
    elif tag == "am" and h == 12:
        h = 0
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return f"{h:02d}:{m:02d}"


def _time_after(keyword: str, text: str) -> str | None:
    pattern = re.compile(rf"\b{keyword}\b[^\n\d]{{0,25}}?{_FROM}{_TIME}", _F)
    for match in pattern.finditer(text):
        hour, minute, suffix = match.group(1), match.group(2), match.group(3)
        if minute is None and suffix is None:
            continue  # "check-in for 2 guests": a bare number is no time
        found = _clock(hour, minute, suffix)
        if found:
            return found
    return None


def read_facts(text: str) -> GuideFacts:
    """The facts a passage states (the first statement of each)."""
    guests = _GUESTS.search(text)
    pets: bool | None = None
    if _NO_PETS.search(text):
        pets = False
    elif _PETS_OK.search(text):
        pets = True
    return GuideFacts(
        check_in=_time_after(_CHECK_IN, text),
        check_out=_time_after(_CHECK_OUT, text),
        max_guests=int(guests.group(1)) if guests else None,
        pets=pets,
    )


def normalize_time(value: str | None) -> str | None:
    """A listing's "15:00", "3:00 PM" or "15" as "15:00"."""
    if not value:
        return None
    match = re.fullmatch(r"\s*" + _TIME + r"\s*", value, _F)
    return _clock(match.group(1), match.group(2), match.group(3)) if match else None
