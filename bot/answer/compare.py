"""Does the bot's answer agree with what a person replied? A simple, deterministic rule, so a replay's
automation rate can be audited line by line (bot.service.replay).

The rule, in order:

1. The values each text states are read: times (``10:00``, ``10h``, ``10 am``, ``10.30`` and ``2pm`` all
   become ``HH:MM``) and other numbers (``25``, ``2.5``; thousands separators dropped). Times are matched
   before numbers, so ``10:00`` is never also the numbers 10 and 0.
2. **differ**: for times, then for numbers, when both texts state values of that kind and the person
   stated one the bot's answer does not contain. The person's values and the bot's are listed: that is
   the disagreement a reviewer reads (the person said check-out 10:00, the guide says 11:00). The hours
   of the bot's times count as its numbers ("at 11" agrees with "11:00").
3. **agree**: otherwise, when the bot's answer contains at least one value the person stated, or at
   least AGREE_OVERLAP of the person's key terms (words of 4+ letters outside a stop list, cut to their
   first 5 letters so "towels"/"towel" and "checkout"/"check-out" meet) appear in the bot's answer.
4. **unrelated**: otherwise: the bot answered, but nothing shows it said what the person said.

A hand-off is not compared: the caller counts it on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["agree", "differ", "unrelated"]

AGREE_OVERLAP = 0.3
STEM = 5

_TIME = re.compile(
    r"\b(?P<h2>[01]?\d|2[0-3])h\b"
    r"|\b(?P<h>[01]?\d|2[0-3])(?:(?P<sep>[:.h])(?P<m>[0-5]\d))?\s*(?P<ampm>[ap]\.?\s?m\b\.?)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
_WORD = re.compile(r"[^\W\d_]{4,}")
_STOP = frozenset(
    " ".join(
        (
            "about after again also andere aber bitte check could dear does from have hello here just know like make",
            "need please should that thank thanks them then there these they this those what when where which will",
            "with would your yours sure hope happy great good best regards kind welcome stay more some than into",
            "obrigado obrigada gracias merci danke desde para como está estou sobre",
        )
    ).split()
)


@dataclass(frozen=True)
class Values:
    times: frozenset[str]
    numbers: frozenset[str]


@dataclass(frozen=True)
class Comparison:
    verdict: Verdict
    kind: str | None = None  # "times" | "numbers" when they differ
    human: tuple[str, ...] = ()  # the person's values of that kind
    bot: tuple[str, ...] = ()  # the bot's values of that kind
    overlap: float = 0.0  # the share of the person's key terms the bot used


def _time(match: re.Match[str]) -> str | None:
    """HH:MM for a real time; None for a bare number (no minutes, no am/pm, no 'h')."""
    if match.group("h2") is not None:
        return f"{int(match.group('h2')):02d}:00"
    hour, minutes, ampm = int(match.group("h")), match.group("m"), match.group("ampm")
    if minutes is None and ampm is None:
        return None
    if ampm:
        if hour > 12:
            return None
        pm = ampm.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    return f"{hour:02d}:{int(minutes or 0):02d}"


def values(text: str) -> Values:
    """The times and numbers a text states (rule 1)."""
    times: set[str] = set()
    rest: list[str] = []
    last = 0
    for match in _TIME.finditer(text):
        found = _time(match)
        if found is None:
            continue
        times.add(found)
        rest.append(text[last : match.start()])
        last = match.end()
    rest.append(text[last:])
    numbers = {_number(m.group(0)) for m in _NUMBER.finditer(" ".join(rest))}
    return Values(frozenset(times), frozenset(numbers))


def _number(raw: str) -> str:
    cleaned = re.sub(r"[,\s](?=\d{3}\b)", "", raw).replace(",", ".")
    value = float(cleaned)
    return str(int(value)) if value == int(value) else f"{value:g}"


def key_terms(text: str) -> frozenset[str]:
    """Words that carry the topic, cut to a common stem (rule 3)."""
    return frozenset(w[:STEM] for w in _WORD.findall(text.lower().replace("-", "")) if w not in _STOP)


def compare(bot_answer: str, human_reply: str) -> Comparison:
    """Agree, differ or unrelated, by the rule in this module's docstring."""
    bot, human = values(bot_answer), values(human_reply)
    # "check-out at 11" states the hour of the guide's 11:00: a bot's times count among its numbers too.
    hours = frozenset(str(int(t[:2])) for t in bot.times)
    for kind in ("times", "numbers"):
        said, answered = getattr(human, kind), getattr(bot, kind) | (hours if kind == "numbers" else frozenset())
        if said and answered and not said <= answered:
            return Comparison("differ", kind, tuple(sorted(said)), tuple(sorted(answered)))
    terms = key_terms(human_reply)
    overlap = len(terms & key_terms(bot_answer)) / len(terms) if terms else 0.0
    shared = (human.times & bot.times) | (human.numbers & bot.numbers)
    if shared or overlap >= AGREE_OVERLAP:
        return Comparison("agree", overlap=round(overlap, 2))
    return Comparison("unrelated", overlap=round(overlap, 2))
