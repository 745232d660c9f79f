"""Which property a guest means in a general inbox, from the names they use for it.

A general inbox (the operator's main widget, a shared WhatsApp number) has no `property`, so a guest
without a booking used to get shared knowledge only. Here a property named in the question, or in the
guest's recent messages, scopes retrieval to that property's *open* knowledge: the name opens no gate
(access details and exact addresses stay with a booking, bot.agent.entitlement). A booking's property and
a property-dedicated inbox always win; entitlement only asks here when neither gave one.

Names: the listing's title and nickname (the `properties` mirror), the code and the nickname's distinctive
words ("lis-alfama" → "alfama"), and the operator's aliases ([properties.<code>] in INBOXES_CONFIG). Matched on
whole words, case and accents ignored; the longest name wins where two overlap. A name that states an
exact address (a nickname like "Rua X 42") is neither matched nor shown. A name several properties
share, or two properties named at once, makes the bot ask which one and park the question
(bot.agent.property_store) until the guest's next message names one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.agent import property_store as store
from bot.agent import state
from bot.agent.intent import fold
from bot.context import JobContext
from bot.knowledge.access import looks_like_private_address
from config.inboxes import PropertyNames
from integrations.chatwoot.models import MessageEvent

log = logging.getLogger("sidecar.properties")

# Words of a code that name no property on their own ("ber-mitte-studio-2" → "mitte"): kinds of lodging and
# filler. Words shorter than MIN_CODE_WORD ("lis", "por", "ber") are city abbreviations or common words.
GENERIC_WORDS = frozenset(
    {
        "apartment",
        "apartments",
        "apart",
        "flat",
        "flats",
        "studio",
        "loft",
        "house",
        "home",
        "room",
        "rooms",
        "suite",
        "villa",
        "casa",
        "apartamento",
        "estudio",
        "quarto",
        "habitacion",
        "wohnung",
        "zimmer",
        "haus",
        "appartement",
        "maison",
        "chambre",
        "appartamento",
        "camera",
        "unit",
        "listing",
        "place",
        "the",
        "and",
    }
)
MIN_CODE_WORD = 4
CONNECTORS = frozenset({"de", "do", "da", "di", "du", "in", "im", "em", "en", "at", "of", "a"})  # "studio in Mitte"
HISTORY_MESSAGES = 10  # the guest's recent messages a property named earlier is looked for in

# "Which one?" in the guest's language; {options} is "A, B or C" with the language's "or".
WHICH = {
    "en": "Which property do you mean: {options}?",
    "pt": "A qual dos alojamentos se refere: {options}?",
    "es": "¿A qué alojamiento te refieres: {options}?",
    "de": "Welche Unterkunft meinen Sie: {options}?",
    "fr": "De quel logement parlez-vous : {options} ?",
    "it": "A quale alloggio ti riferisci: {options}?",
}
OR = {"en": "or", "pt": "ou", "es": "o", "de": "oder", "fr": "ou", "it": "o"}

# Short words that mostly belong to one of our languages, for a question whose language nobody told us.
LANGUAGE_HINTS = {
    "en": frozenset({"the", "is", "there", "do", "you", "what", "where", "can", "have", "allowed", "any"}),
    "pt": frozenset(
        {
            "voces",
            "tem",
            "nao",
            "onde",
            "posso",
            "obrigado",
            "obrigada",
            "ola",
            "sao",
            "aceitam",
            "estacionamento",
            "caes",
            "existe",
        }
    ),
    "es": frozenset(
        {
            "hay",
            "el",
            "los",
            "las",
            "donde",
            "puedo",
            "gracias",
            "hola",
            "admiten",
            "aceptan",
            "perros",
            "tienen",
            "aparcamiento",
            "piso",
        }
    ),
    "de": frozenset(
        {
            "ist",
            "gibt",
            "es",
            "der",
            "die",
            "das",
            "wo",
            "ich",
            "kann",
            "und",
            "nicht",
            "hunde",
            "erlaubt",
            "haben",
            "sie",
        }
    ),
    "fr": frozenset({"est", "il", "les", "des", "je", "vous", "avez", "acceptez", "chiens", "pour", "avec", "bonjour"}),
    "it": frozenset({"sono", "gli", "dove", "ciao", "cani", "ammessi", "grazie", "avete", "posso"}),
}

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Folded words (lower case, accents dropped): "Casa d'Alfama!" → ["casa", "d", "alfama"]."""
    return _WORD.findall(fold(text))


def code_words(code: str) -> tuple[str, ...]:
    """The distinctive words of a property code: "lis-alfama" → ("alfama",), "por-ribeira-2" → ("ribeira",)."""
    return tuple(w for w in words(code) if len(w) >= MIN_CODE_WORD and not w.isdigit() and w not in GENERIC_WORDS)


@dataclass(frozen=True)
class Known:
    """One property a guest may name: its code, what the bot calls it, and every name that points at it."""

    code: str
    name: str
    aliases: tuple[str, ...]


def known(
    code: str,
    *,
    name: str | None = None,
    nickname: str | None = None,
    title: str | None = None,
    operator: PropertyNames | None = None,
) -> Known:
    """A property's names from every source. Dropped: names made only of generic words ("Studio"), and
    names that state a street with its house number (nicknames often do): matching one would confirm an
    exact address to a stranger, and showing one in "which one?" would tell it."""
    listed = operator or PropertyNames()
    safe = [n for n in (listed.name, title, name, nickname) if n and not looks_like_private_address(n)]
    nick_words = code_words(nickname) if nickname in safe else ()
    aliases: list[str] = []
    for candidate in (
        *safe,
        *nick_words,
        code,
        *code_words(code),
        *(a for a in listed.aliases if not looks_like_private_address(a)),
    ):
        folded = " ".join(words(candidate or ""))
        if folded and set(folded.split()) - GENERIC_WORDS and folded not in aliases:
            aliases.append(folded)
    # Shown to the guest: the operator's name or the listing's public title, else the code's words.
    shown = next((n for n in (listed.name, title) if n in safe), None)
    return Known(
        code=code, name=shown or " ".join(w.capitalize() for w in code_words(code)) or code, aliases=tuple(aliases)
    )


def catalogue(rows: Iterable[store.PropertyRow], operator: dict[str, PropertyNames]) -> list[Known]:
    """Every property a guest may name: the mirror's active ones and those the operator lists."""
    found = {
        row.code: known(
            row.code, name=row.name, nickname=row.nickname, title=row.title, operator=operator.get(row.code)
        )
        for row in rows
    }
    for code, names in operator.items():
        found.setdefault(code, known(code, operator=names))
    return list(found.values())


class Matcher:
    """Finds the properties a text names: whole words, the longest name first, no overlaps."""

    def __init__(self, properties: Iterable[Known]) -> None:
        self.properties = {p.code: p for p in properties}
        self._names: dict[tuple[str, ...], list[str]] = {}
        for prop in self.properties.values():
            for alias in prop.aliases:
                codes = self._names.setdefault(tuple(alias.split()), [])
                if prop.code not in codes:
                    codes.append(prop.code)
        self._longest = max((len(n) for n in self._names), default=0)

    def named(self, text: str) -> tuple[str, ...]:
        """The codes of the properties `text` names, in order of first mention (a shared name gives all)."""
        found: list[str] = []
        for _, _, codes in self._spans(text):
            found += [c for c in codes if c not in found]
        return tuple(found)

    def without_names(self, text: str) -> str:
        """The text with every property name taken out: once the property scopes the search, its name only
        pulls the guide's introduction (which repeats it) above the passage that answers."""
        kept, at = [], 0
        for start, end, _ in self._spans(text):
            kept.append(text[at:start])
            at = end
        kept.append(text[at:])
        return re.sub(r"\s+([?!.,;:])", r"\1", " ".join("".join(kept).split()))

    def _spans(self, text: str) -> list[tuple[int, int, list[str]]]:
        """(first char, end char, codes) of each name in `text`: whole words, longest first, no overlaps."""
        tokens = [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]
        spans: list[tuple[int, int, list[str]]] = []
        for first in range(len(tokens)):
            for size in range(min(self._longest, len(tokens) - first), 0, -1):
                codes = self._names.get(tuple(t[2] for t in tokens[first : first + size]))
                if codes:
                    spans.append((first, first + size, codes))
        taken: list[tuple[int, int, list[str]]] = []
        for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):  # longest first, then leftmost
            if all(span[1] <= t[0] or span[0] >= t[1] for t in taken):
                taken.append(span)
        out = []
        for first, end, codes in sorted(taken):  # "the Alfama flat", "el estudio de Mitte": the lodging word too
            if first >= 1 and tokens[first - 1][2] in GENERIC_WORDS:
                first -= 1
            elif first >= 2 and tokens[first - 1][2] in CONNECTORS and tokens[first - 2][2] in GENERIC_WORDS:
                first -= 2
            if end < len(tokens) and tokens[end][2] in GENERIC_WORDS:
                end += 1
            out.append((tokens[first][0], tokens[end - 1][1], codes))
        return out


def guess_language(text: str) -> str | None:
    """One of our languages when the text clearly leans to it (two hint words more than any other), else None."""
    tokens = set(words(text))
    scores = {lang: len(tokens & hints) for lang, hints in LANGUAGE_HINTS.items()}
    if "¿" in text or "¡" in text:
        scores["es"] += 2
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    (best, top), (_, second) = ranked[0], ranked[1]
    return best if top >= 2 and top > second else None


def which(options: Sequence[Known], language: str) -> str:
    """The clarifying question: "Which property do you mean: A, B or C?" in the guest's language."""
    lang = language if language in WHICH else "en"
    names = [p.name for p in options]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {OR[lang]} {names[-1]}"
    return WHICH[lang].format(options=listed)


# ------------------------------------------------------------------------------------------- in a conversation


@dataclass(frozen=True)
class Named:
    """What a message says about the property: the one meant, or the several it could mean."""

    code: str | None = None
    choices: tuple[Known, ...] = ()
    question: str | None = None  # what to answer for it: the message, or the parked question (with this one)
    search: str | None = None  # what to search for: the question without the property's names


async def resolve(ctx: JobContext, msg: MessageEvent, question: str) -> Named:
    """The property a message in a general inbox means: named now, named in answer to "which one?", or
    named alone in the guest's latest message that names any; several named now: the choices to ask about."""
    rows = await store.active_properties(ctx.db)
    matcher = Matcher(catalogue(rows, ctx.inboxes.properties))
    if not matcher.properties:
        return Named()
    named = matcher.named(question)
    parked = await store.take(ctx.db, msg.conversation_id, msg.id)
    if parked is not None and len(named) == 1:
        # "Ribeira" answers the parked question; "Ribeira, and is there a lift?" adds a question to it.
        asked = parked.question if "?" not in question else f"{parked.question}\n{question}"
        return Named(code=named[0], question=asked, search=matcher.without_names(asked) or asked)
    if len(named) == 1:
        return Named(code=named[0], question=question, search=matcher.without_names(question) or question)
    if named:
        return Named(choices=tuple(matcher.properties[c] for c in named))
    before = await _named_before(ctx, msg, matcher)
    # Several named earlier: that was asked about already; an unnamed follow-up gets shared knowledge.
    return Named(code=before[0]) if len(before) == 1 else Named()


async def park(ctx: JobContext, msg: MessageEvent, question: str, choices: Sequence[Known]) -> None:
    await store.park(
        ctx.db,
        conversation_id=msg.conversation_id,
        contact_id=msg.contact_id,
        message_id=msg.id,
        question=question,
        candidates=[p.code for p in choices],
    )


async def _named_before(ctx: JobContext, msg: MessageEvent, matcher: Matcher) -> tuple[str, ...]:
    """The properties named in the newest of the guest's recent messages that names any (our ledger)."""
    payloads = await state.message_payloads(ctx.db, f"conversation:{msg.conversation_id}", limit=3 * HISTORY_MESSAGES)
    guest = [
        p
        for p in payloads
        if p.get("message_type") == "incoming"
        and not p.get("private")
        and isinstance(p.get("id"), int)
        and p["id"] < msg.id
    ]
    for payload in reversed(guest[-HISTORY_MESSAGES:]):
        named = matcher.named(str(payload.get("content") or ""))
        if named:
            return named
    return ()
