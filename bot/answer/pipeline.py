"""Decide what to do with a guest's question: answer it (with the model or offline) or hand off.

Pure decision logic: no Chatwoot calls here. The caller posts `AnswerOutcome.text` to the guest when
`kind == "answer"`, or posts it as a private note and opens the conversation for a person when
`kind == "handoff"`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.answer.errors import LLMUnavailable
from bot.answer.llm import LLM
from bot.answer.offline import NOT_FOUND, OFFLINE_MODEL, offline_answer
from bot.answer.prompt import build_messages, render_facts
from bot.answer.text import fold
from bot.answer.think import strip_think
from bot.answer.types import Answer, ChunkLike, GuestFacts, Handoff, Source, Turn

NO_MODEL = "none"  # AnswerOutcome.model when no answering backend was consulted

# Machine-readable handoff reasons (AnswerOutcome.reason).
HUMAN_REQUESTED = "human_requested"
NO_CONTEXT = "no_context"
LLM_UNAVAILABLE = "llm_unavailable"
MODEL_HANDOFF = "model_handoff"
EMPTY_ANSWER = "empty_answer"
UNVERIFIED_NUMBER = "unverified_number"
NOT_FOUND_REASON = "not_found"

# Private-note texts for agents, one per reason; {detail} is filled where there is one.
HANDOFF_NOTES = {
    HUMAN_REQUESTED: "The guest asked to talk to a person. Over to you.",
    NO_CONTEXT: "The bot found nothing in the guides or the booking about this question. Over to you.",
    LLM_UNAVAILABLE: "The AI is unavailable ({detail}), so the bot handed this conversation off. Over to you.",
    MODEL_HANDOFF: "The bot could not answer from the guides ({detail}). Over to you.",
    EMPTY_ANSWER: "The AI returned an empty answer. Over to you.",
    UNVERIFIED_NUMBER: "The AI's draft contained numbers not found in the guides ({detail}); "
    "it was not sent. Over to you.",
    NOT_FOUND_REASON: "The bot's automatic answer (no AI configured) found nothing relevant in the guides. "
    "Over to you.",
}

_HUMAN_PATTERNS = [
    re.compile(p)
    for p in (
        # English
        r"\b(talk|speak|chat|communicate)\s+(to|with)\s+(a|an|the|some|your|any)?\s*(real|live|actual)?\s*"
        r"(person|human|humans|people|agent|someone|somebody|operator|representative|host|owner|manager|staff)\b",
        r"\b(real|live|actual)\s+(person|human|agent|people)\b",
        r"\bhuman\s+(please|agent|being|support)\b",
        r"\b(get|give|want|need|connect)\s+(me\s+)?(to\s+)?(a|an)\s+(human|person|agent|operator)\b",
        r"^\W*(human|agent|operator|representative|person)\W*(please)?\W*$",
        r"\b(not|no|stop)\s+(a\s+|the\s+)?(bot|robot|machine)\b",
        # Portuguese
        r"\bfalar\s+com\s+(uma|um|a|o|alguem|algum|alguma)?\s*(pessoa|humano|atendente|agente|anfitria?o|anfitria|"
        r"responsavel|alguem|operador|gerente|proprietari[oa])\b",
        r"\b(pessoa|atendente)\s+(real|humana?)\b",
        r"\b(atendimento|suporte)\s+humano\b",
        r"\bquero\s+(um|uma)\s+(humano|pessoa|atendente)\b",
        # Spanish
        r"\bhablar\s+con\s+(una|un|el|la|alguien|algun|alguna)?\s*(persona|humano|agente|operador|anfitriona?|"
        r"responsable|alguien|encargad[oa]|propietari[oa])\b",
        r"\bpersona\s+(real|humana)\b",
        r"\b(atencion|soporte)\s+humana?\b",
        r"\bquiero\s+(un|una)\s+(humano|persona|agente)\b",
        # German
        r"\bmit\s+(einem|einer|jemandem|dem|der|ihrem|ihrer)?\s*(echten|realen|richtigen)?\s*"
        r"(menschen|mensch|person|mitarbeiter(in)?|gastgeber(in)?|vermieter(in)?|jemandem|ansprechpartner(in)?)\b"
        r".{0,30}\b(sprechen|reden|verbinden|schreiben|telefonieren)\b",
        r"\b(echten|realen|richtigen)\s+(menschen|mensch|person|mitarbeiter)\b",
        r"\bmenschliche[nrs]?\s+(ansprechpartner|mitarbeiter|kontakt|hilfe)\b",
        # French
        r"\bparler\s+(a|avec)\s+(une|un|l'|le|la|quelqu'un|quelqu un)?\s*(vraie?|reelle?)?\s*"
        r"(personne|humain|agent|conseiller|conseillere|operateur|hote|hotesse|responsable|proprietaire|quelqu'un)\b",
        r"\b(personne|humain|agent)\s+(reel(le)?|humaine?)\b",
        r"\b(vrai|vraie)\s+(personne|humain)\b",
        # Italian
        r"\bparlare\s+con\s+(una|un|uno|qualcuno)?\s*(persona|umano|operatore|operatrice|qualcuno|host)\b",
    )
]


def detect_human_request(text: str) -> bool:
    """True when the guest asks for a person (English, Portuguese, Spanish, German, French, Italian).

    Phrase patterns, not single words: "the human body" or "thanks" are not requests.
    """
    folded = " ".join(fold(text).split())
    return any(p.search(folded) for p in _HUMAN_PATTERNS)


# "HANDOFF: x", "Handoff - x", "**HANDOFF:** x", "HANDOFF" on a line of its own; not "Handoff of the keys…".
_MARKER_AT_START = re.compile(r"^[\s>*_`#\"'\[(]*handoff\b[ \t*_`\])]*(?:[:：\-—]|$)", re.IGNORECASE | re.MULTILINE)
_MARKER_ANYWHERE = re.compile(r"\bHANDOFF\s*:", re.MULTILINE)
# "[1]", "[2, 3]", "[1-2]": source numbers from the prompt, meaningless to the guest.
_CITATION = re.compile(r"[ \t]*\[\d{1,2}(?:\s*[,–-]\s*\d{1,2})*\]")


def _reason(rest: str) -> str:
    first = rest.strip().splitlines()[0] if rest.strip() else ""
    first = first.strip(" *_`\"'[]().").strip()
    return first[:200] or "unspecified"


def parse_llm_answer(text: str) -> Answer | Handoff:
    """Read the model's reply: the HANDOFF marker (at the start, or on any line) or an answer.

    A reply that mixes prose with the marker is treated as a handoff: half an answer is worse than a person.
    Source numbers the model cites despite the rules ("[1]") are removed from answers.
    """
    cleaned = strip_think(text)
    if not cleaned:
        return Handoff(EMPTY_ANSWER)
    marker = _MARKER_AT_START.match(cleaned) or _MARKER_ANYWHERE.search(cleaned)
    if marker:
        return Handoff(_reason(cleaned[marker.end() :]))
    answer = _CITATION.sub("", cleaned).strip()
    return Answer(answer) if answer else Handoff(EMPTY_ANSWER)


# A number as people write it: digit runs joined by spaces, dots, dashes, slashes, brackets or plus signs.
_NUMBER = re.compile(r"\d+(?:[ .\-/()+]{1,2}\d+)*")
_RUN = re.compile(r"\d+")
_LONG_RUN = re.compile(r"\d{3,}")


def _evidence_numbers(evidence: str) -> set[str]:
    """Every digit run of the evidence, and every join of neighbouring runs of one written number."""
    found: set[str] = set()
    for number in _NUMBER.finditer(evidence):
        runs = _RUN.findall(number.group())
        for start in range(len(runs)):
            for end in range(start + 1, min(len(runs), start + 8) + 1):
                found.add("".join(runs[start:end]))
    return found


def unsupported_numbers(answer: str, evidence: str) -> list[str]:
    """Digit runs of 3+ in the answer (codes, prices, phone numbers) that the evidence does not have.

    Formatting may differ ("+351 912 345 678" vs "+351912345678", "1.200" vs "1200"), digits may not:
    a code the model made up is caught. Times like 11:00 are too short to check and pass.
    """
    known = _evidence_numbers(evidence)
    missing: list[str] = []
    for number in _NUMBER.finditer(answer):
        if re.sub(r"\D", "", number.group()) in known:
            continue
        missing += [run for run in _LONG_RUN.findall(number.group()) if run not in known]
    return missing


@dataclass(frozen=True)
class AnswerOutcome:
    """What to do: send `text` to the guest ("answer"), or post it as a note and hand off ("handoff")."""

    kind: Literal["answer", "handoff"]
    text: str
    reason: str | None = None  # a handoff reason constant, None for answers
    sources: list[Source] = field(default_factory=list)
    model: str = NO_MODEL
    latency_ms: int = 0
    detail: str | None = None  # the model's own handoff reason, or the error hint


def _sources(chunks: Sequence[ChunkLike]) -> list[Source]:
    seen: list[Source] = []
    for chunk in chunks:
        if (chunk.source, chunk.heading) not in seen:
            seen.append((chunk.source, chunk.heading))
    return seen


def _handoff(reason: str, started: float, *, model: str = NO_MODEL, detail: str | None = None) -> AnswerOutcome:
    note = HANDOFF_NOTES[reason].format(detail=detail or reason)
    return AnswerOutcome("handoff", note, reason, [], model, _elapsed(started), detail)


def _elapsed(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


async def answer_question(
    question: str,
    *,
    chunks: Sequence[ChunkLike],
    turns: Sequence[Turn] = (),
    facts: GuestFacts | None = None,
    llm: LLM | None,
    language: str | None = None,
) -> AnswerOutcome:
    """Answer one guest message.

    Order: a request for a person hands off at once; with no passages and no booking facts there is
    nothing to answer from; without a model, quote the guides (offline); else ask the model and check
    its reply. Model failures (after retries) hand off with reason "llm_unavailable"; nothing raises.
    """
    started = time.perf_counter()
    if detect_human_request(question):
        return _handoff(HUMAN_REQUESTED, started)
    has_facts = facts is not None and not facts.is_empty()
    if not chunks and not has_facts:
        return _handoff(NO_CONTEXT, started)

    if llm is None:
        offline = offline_answer(question, chunks, facts, language=language)
        if isinstance(offline, Handoff):
            return _handoff(NOT_FOUND_REASON, started, model=OFFLINE_MODEL, detail=NOT_FOUND)
        return AnswerOutcome("answer", offline.text, None, list(offline.sources), OFFLINE_MODEL, _elapsed(started))

    messages = build_messages(question, chunks=chunks, turns=turns, facts=facts, language=language)
    try:
        result = await llm.complete(messages)
    except LLMUnavailable as exc:
        return _handoff(LLM_UNAVAILABLE, started, model=llm.model, detail=exc.hint)
    parsed = parse_llm_answer(result.text)
    if isinstance(parsed, Handoff):
        if parsed.reason == EMPTY_ANSWER:
            return _handoff(EMPTY_ANSWER, started, model=result.model)
        return _handoff(MODEL_HANDOFF, started, model=result.model, detail=parsed.reason)
    evidence = "\n".join(
        [*(c.text for c in chunks), render_facts(facts) if facts else "", question, *(t.text for t in turns)]
    )
    invented = unsupported_numbers(parsed.text, evidence)
    if invented:
        return _handoff(UNVERIFIED_NUMBER, started, model=result.model, detail=", ".join(invented))
    return AnswerOutcome("answer", parsed.text, None, _sources(chunks), result.model, _elapsed(started))
