"""Answers without a language model: the best sentences of the retrieved passages, quoted as they are.

Used when no GROQ_API_KEY is configured. It never composes text, it only selects sentences by weighted
term overlap with the question (a few rental topics have multilingual synonyms), so it cannot invent a
code or a price; when nothing overlaps it hands off. The reply says plainly that it is automatic.
Two steps: pick the passage that speaks to most of the question (the retriever's order breaks ties),
quote its best sentences, and add one sentence from another passage if a question term is still open.
Deterministic: same question and passages, same answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.answer.prompt import render_facts
from bot.answer.sentences import split_sentences
from bot.answer.text import words
from bot.answer.types import Answer, ChunkLike, GuestFacts, Handoff, Source

OFFLINE_MODEL = "offline"
OFFLINE_PREFIX = "(Automatic answer from our guides — no AI model is configured)"
# The framing in the guest's language; the quoted passages stay in the guides' own words.
OFFLINE_PREFIXES = {
    "en": OFFLINE_PREFIX,
    "pt": "(Resposta automática a partir dos nossos guias — sem modelo de IA configurado)",
    "es": "(Respuesta automática a partir de nuestras guías — no hay ningún modelo de IA configurado)",
    "de": "(Automatische Antwort aus unseren Hausinfos — kein KI-Modell eingerichtet)",
    "fr": "(Réponse automatique tirée de nos guides — aucun modèle d'IA n'est configuré)",
    "it": "(Risposta automatica dalle nostre guide — nessun modello di IA configurato)",
}
SOURCES_LABEL = {"en": "Sources", "pt": "Fontes", "es": "Fuentes", "de": "Quellen", "fr": "Sources", "it": "Fonti"}
NOT_FOUND = "not found in our guides"
FACTS_SOURCE = "reservation"
# Passages scoring below this are ignored. Off by default: bot.knowledge returns RRF fusion scores, which
# are rank-based (at most 2/61 with k=60) and say nothing absolute about relevance; term overlap is the
# real test here. A caller with cosine scores may pass e.g. min_score=0.25.
MIN_CHUNK_SCORE = 0.0
MAX_SENTENCES = 3
# Keep sentences scoring at least this share of the passage's best. A sentence that matches only through
# the heading (0.5) is dropped next to one that matches in its own words under that heading (1.5).
RELATIVE_CUTOFF = 0.6
MAX_SENTENCE_CHARS = 400


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _wordset("""
a an the is are was were be been am do does did doing have has had i me my we our us you your it its this
that these those there here what whats which who whom whose when where why how can could would should will
shall may might must to of in on at by for with from about as into than then so and or but not no if any
some please thanks thank hi hello hey just also get got s t d ll m re ve let know tell like need want much
many more most very too out up down off over again ok okay yes put find use using work works go going take
bring give make see look looking come coming anything something there's
o a os as um uma uns umas de do da dos das em no na nos nas por para com sem que qual quais quando onde
como e ou mas se eu tu ele ela nos voces voce meu minha seu sua ha tem ter ser estar esta este isso pode
posso favor obrigado obrigada ola oi
el la los las un una unos unas del al en con sin por para que cual cuales cuando donde como y o pero si yo
tu mi su hay tiene tener ser estar esta este eso puedo puede gracias hola
der die das den dem des ein eine einen einem einer und oder aber wenn wo wie was wann ist sind gibt es ich
du sie wir ihr mein meine kann konnen bitte danke hallo hat haben zu im am um mit von fur auf
le la les un une des du de et ou mais si ou quand comment quel quelle quels est sont il elle je tu vous nous
mon ma mes votre vos peut puis pour avec sans dans sur au aux ce cette merci bonjour salut y a
""")

# Question words that say little about the topic: they count, at a quarter of the weight.
_GENERIC = _wordset("time times hour hours day date hora horas horario dia uhr uhrzeit zeit tag heure heures")

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "wifi": ("wifi", "wlan", "internet", "wireless"),
    "password": ("password", "senha", "contrasena", "clave", "passwort", "kennwort"),
    "network": ("network", "rede", "netzwerk", "reseau", "ssid"),
    "parking": (
        "parking",
        "park",
        "parked",
        "car",
        "cars",
        "garage",
        "estacionamento",
        "estacionar",
        "aparcamiento",
        "aparcar",
        "parkplatz",
        "parken",
        "stationnement",
        "garer",
        "voiture",
    ),
    "checkout": ("checkout", "departure", "depart", "saida", "salida", "abreise", "auschecken"),
    "checkin": ("checkin", "arrival", "arrive", "arriving", "chegada", "llegada", "anreise", "arrivee", "einchecken"),
    "key": ("key", "keys", "chave", "chaves", "llave", "llaves", "schlussel", "cle", "cles", "keybox", "lockbox"),
    "towel": ("towel", "toalha", "toalla", "handtuch", "handtucher", "serviette"),
    "trash": (
        "trash",
        "garbage",
        "rubbish",
        "bins",
        "waste",
        "lixo",
        "basura",
        "mull",
        "mulleimer",
        "poubelle",
        "dechets",
        "recycling",
    ),
    "pet": (
        "pet",
        "pets",
        "dog",
        "dogs",
        "cat",
        "cats",
        "animal",
        "animals",
        "mascota",
        "mascotas",
        "cachorro",
        "cao",
        "perro",
        "hund",
        "chien",
        "animaux",
    ),
    "heating": ("heating", "heater", "aquecimento", "calefaccion", "heizung", "chauffage"),
    "laundry": ("laundry", "washer", "lavandaria", "lavanderia", "lavadora", "waschmaschine"),
    "address": ("address", "morada", "endereco", "direccion", "adresse"),
    "luggage": (
        "luggage",
        "baggage",
        "bagagem",
        "malas",
        "equipaje",
        "maleta",
        "maletas",
        "gepack",
        "koffer",
        "bagages",
    ),
}
_CANONICAL = {variant: canon for canon, variants in _SYNONYMS.items() for variant in variants}
_MARKUP = re.compile(r"^[\s#>*\-•·]+|\*\*|__|`")
_ITEM = re.compile(r"^\s*([#>*\-•·|]|\d+[.)]\s)")


def terms(text: str) -> set[str]:
    """Content terms of `text`: folded, stopwords dropped, crude plural folding, synonyms unified."""
    found: set[str] = set()
    for word in words(text):
        if word in _STOPWORDS or len(word) < 2:
            continue
        if word in _CANONICAL:
            found.add(_CANONICAL[word])
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        found.add(_CANONICAL.get(word, word))
    return found


@dataclass(frozen=True)
class _Candidate:
    rank: int  # passage order, best first
    position: int  # sentence order inside the passage
    text: str
    terms: frozenset[str]
    heading_terms: frozenset[str]
    source: Source
    language: str | None


def unwrap(text: str) -> str:
    """Join hard-wrapped lines of a paragraph; keep blank lines, list items and headings on their own line.

    Guides keep their source's line wrapping, and a sentence must not be cut at a wrap. A line after a
    list item starts anew: items are short, and "- Password: x" must not run into the next sentence.
    """
    lines: list[str] = []
    for line in text.splitlines():
        if lines and line.strip() and lines[-1].strip() and not _ITEM.match(line) and not _ITEM.match(lines[-1]):
            lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
        else:
            lines.append(line)
    return "\n".join(lines)


def _clean(sentence: str) -> str:
    if sentence.lstrip().startswith("#"):
        return ""  # a markdown heading: the passage's topic, not an answer
    text = " ".join(_MARKUP.sub("", sentence).split())
    if len(text) > MAX_SENTENCE_CHARS:
        text = text[: MAX_SENTENCE_CHARS - 1].rstrip() + "…"
    return text


def _facts_sentences(facts: GuestFacts) -> list[str]:
    block = render_facts(facts)
    return [line.removeprefix("- ") for line in block.splitlines()[1:]]


def _candidates(chunks: Sequence[ChunkLike], facts: GuestFacts | None, min_score: float) -> list[_Candidate]:
    """Every sentence of the usable passages; the booking facts come first when there are any.

    A passage's heading and file name count as its topic, so "Check-out" over "Leave by 11:00." matches.
    """
    passages: list[tuple[list[str], str, Source, str | None]] = []
    if facts is not None and not facts.is_empty():
        passages.append((_facts_sentences(facts), "booking", (FACTS_SOURCE, None), None))
    for chunk in chunks:
        if chunk.score >= min_score:
            # The innermost heading names the topic; "Arrival and departure > Check-in" is not about departure.
            heading = (chunk.heading or "").rsplit(">", 1)[-1]
            topic = f"{heading} {chunk.source.rsplit('/', 1)[-1].rsplit('.', 1)[0]}"
            language = getattr(chunk, "language", None)  # RetrievedChunk has it; the minimal protocol does not
            passages.append((split_sentences(unwrap(chunk.text)), topic, (chunk.source, chunk.heading), language))
    found: list[_Candidate] = []
    for rank, (sentences, topic, source, language) in enumerate(passages):
        topic_terms = frozenset(terms(topic))
        for position, raw in enumerate(sentences):
            text = _clean(raw)
            if len(text) >= 3:
                sentence_terms = frozenset(terms(text))
                found.append(_Candidate(rank, position, text, sentence_terms, topic_terms, source, language))
    return found


def _weights(question: set[str], candidates: list[_Candidate]) -> dict[str, float]:
    """Rarer terms count more (IDF over the candidate sentences); generic question words count less."""
    total = len(candidates)
    weights: dict[str, float] = {}
    for term in question:
        df = sum(1 for c in candidates if term in c.terms)
        idf = 1.0 + math.log((total + 1) / (df + 1))
        weights[term] = idf * (0.25 if term in _GENERIC else 1.0)
    return weights


def _score(candidate: _Candidate, question: set[str] | frozenset[str], weights: dict[str, float]) -> float:
    """A sentence's overlap with the question; terms in the passage heading count half again.

    So a sentence under a matching heading beats the same words elsewhere, and a sentence that matches
    only through its heading (half) is dropped next to one that matches in its own words (one and a half).
    """
    if candidate.terms <= question and not any(ch.isdigit() for ch in candidate.text):
        return 0.0  # only repeats the question ("Wi-Fi", "Parking:"): nothing to tell
    direct = question & candidate.terms
    via_heading = question & candidate.heading_terms
    if not (direct | via_heading) - _GENERIC:
        return 0.0  # only "time"/"when"-like overlap: not about the same thing
    return sum(weights[t] for t in direct) + 0.5 * sum(weights[t] for t in via_heading)


def _coverage(passage: list[_Candidate], question: set[str]) -> frozenset[str]:
    """The question terms a passage speaks to, in its heading or anywhere in its text."""
    covered = question & (passage[0].heading_terms.union(*(c.terms for c in passage)))
    return frozenset(covered) if covered - _GENERIC else frozenset()


def _best_sentences(
    passage: list[_Candidate], question: set[str] | frozenset[str], weights: dict[str, float], limit: int
) -> list[_Candidate]:
    scored = sorted(
        ((s, c) for c in passage if (s := _score(c, question, weights)) > 0),
        key=lambda item: (-item[0], item[1].position),
    )
    if not scored:
        return []
    best = scored[0][0]
    chosen = [c for s, c in scored if s >= RELATIVE_CUTOFF * best][:limit]
    return sorted(chosen, key=lambda c: c.position)


def offline_answer(
    question: str,
    chunks: Sequence[ChunkLike],
    facts: GuestFacts | None = None,
    *,
    min_score: float = MIN_CHUNK_SCORE,
    max_sentences: int = MAX_SENTENCES,
    language: str | None = None,
) -> Answer | Handoff:
    """Quote up to `max_sentences` sentences that answer the question, or hand off (NOT_FOUND).

    The passage that covers most of the question (weighted; the retriever's order breaks ties) is
    quoted; when it leaves a question term uncovered, the best sentence of another passage that covers
    it is added, in the same language.
    """
    question_terms = terms(question)
    candidates = _candidates(chunks, facts, min_score)
    if not question_terms or not candidates:
        return Handoff(NOT_FOUND)
    weights = _weights(question_terms, candidates)
    passages: dict[int, list[_Candidate]] = {}
    for candidate in candidates:
        passages.setdefault(candidate.rank, []).append(candidate)
    # Generic words ("time") do not pick the passage: only topic terms count, then the retriever's order.
    ranked = sorted(
        (
            (sum(weights[t] for t in speaks_to - _GENERIC), rank, speaks_to)
            for rank, passage in passages.items()
            if (speaks_to := _coverage(passage, question_terms))
        ),
        key=lambda item: (-item[0], item[1]),
    )
    chosen: list[_Candidate] = []
    covered: frozenset[str] = frozenset()
    for _, rank, passage_covers in ranked:
        chosen = _best_sentences(passages[rank], question_terms, weights, max_sentences)
        if chosen:
            covered = passage_covers
            break
    if not chosen:
        return Handoff(NOT_FOUND)
    missing = question_terms - _GENERIC - covered
    passage_language = chosen[0].language
    extras: list[tuple[float, int, _Candidate]] = []
    for _, rank, other in ranked:
        if rank == chosen[0].rank or not other & missing:
            continue
        if passage_language and passages[rank][0].language not in (None, passage_language):
            continue
        if extra := _best_sentences(passages[rank], other & missing, weights, 1):
            extras.append((_score(extra[0], other & missing, weights), rank, extra[0]))
    if extras:
        extras.sort(key=lambda item: (-item[0], item[1]))
        chosen = [*chosen[: max_sentences - 1], extras[0][2]]
    sources: list[Source] = []
    for candidate in chosen:
        if candidate.source not in sources:
            sources.append(candidate.source)
    labels = "; ".join(f"{name} › {heading}" if heading else name for name, heading in sources)
    lang = (language or "en").split("-")[0].lower()
    prefix, label = OFFLINE_PREFIXES.get(lang, OFFLINE_PREFIX), SOURCES_LABEL.get(lang, "Sources")
    text = "\n".join([prefix, *(c.text for c in chosen), f"{label}: {labels}"])
    return Answer(text, tuple(sources))
