"""Opening hours per inbox: whether people are in now, and when they are back, said in the guest's language.

An inbox with `hours` (and `days`, `timezone`) in INBOXES_CONFIG is staffed only then; without `hours` it
is always open. The clock is read through `now(ctx)`, which tests replace with a fixed one
(`ctx.extras["clock"]`), so no test depends on the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.context import JobContext
from config.inboxes import InboxPolicy, parse_days, parse_hours

# Appended to the hand-off reply (answering.HANDOFF_REPLY) outside opening hours; {day} carries its preposition.
BACK_AT = {
    "en": "Our team is back at {time} ({city} time).",
    "pt": "A nossa equipa volta às {time} (hora de {city}).",
    "es": "Nuestro equipo vuelve a las {time} (hora de {city}).",
    "de": "Unser Team ist ab {time} Uhr wieder da (Ortszeit {city}).",
    "fr": "Notre équipe est de retour à {time} (heure de {city}).",
    "it": "Il nostro team torna alle {time} (ora di {city}).",
    "nl": "Ons team is om {time} terug ({city}-tijd).",
}
BACK_ON = {
    "en": "Our team is back on {day} at {time} ({city} time).",
    "pt": "A nossa equipa volta {day} às {time} (hora de {city}).",
    "es": "Nuestro equipo vuelve el {day} a las {time} (hora de {city}).",
    "de": "Unser Team ist am {day} ab {time} Uhr wieder da (Ortszeit {city}).",
    "fr": "Notre équipe est de retour {day} à {time} (heure de {city}).",
    "it": "Il nostro team torna {day} alle {time} (ora di {city}).",
    "nl": "Ons team is {day} om {time} terug ({city}-tijd).",
}
DAY_NAMES = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "pt": (
        "na segunda-feira",
        "na terça-feira",
        "na quarta-feira",
        "na quinta-feira",
        "na sexta-feira",
        "no sábado",
        "no domingo",
    ),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}


def now(ctx: JobContext) -> datetime:
    """The current time, from the injected clock when there is one."""
    clock: Callable[[], datetime] | None = ctx.extras.get("clock")
    return clock() if clock is not None else datetime.now(UTC)


def is_open(policy: InboxPolicy, at: datetime) -> bool:
    """Whether `at` falls in the inbox's opening hours (always, when it has none).

    Hours that close before they open ("20:00-02:00") run past midnight into the next day."""
    span = parse_hours(policy.hours) if policy.hours else None
    if span is None:
        return True
    opening, closing = span
    days = parse_days(policy.days) or frozenset(range(7))
    local = at.astimezone(ZoneInfo(policy.timezone))
    t, day = local.time(), local.weekday()
    if opening < closing:
        return day in days and opening <= t < closing
    return (day in days and t >= opening) or ((day - 1) % 7 in days and t < closing)


def next_opening(policy: InboxPolicy, at: datetime) -> datetime | None:
    """When people are next in (local time of the inbox), or None for an inbox without hours."""
    span = parse_hours(policy.hours) if policy.hours else None
    if span is None:
        return None
    days = parse_days(policy.days) or frozenset(range(7))
    zone = ZoneInfo(policy.timezone)
    local = at.astimezone(zone)
    for offset in range(8):
        date = (local + timedelta(days=offset)).date()
        candidate = datetime.combine(date, span[0], tzinfo=zone)
        if candidate > local and candidate.weekday() in days:
            return candidate
    return None


def back_at(policy: InboxPolicy, language: str | None, at: datetime) -> str | None:
    """ "Our team is back at 09:00 (Lisbon time)." in the guest's language when the inbox is closed at `at`.

    A day is named when the opening is more than a day away (a Friday night before a Monday morning)."""
    if is_open(policy, at):
        return None
    opening = next_opening(policy, at)
    if opening is None:
        return None
    lang = next((x for x in (language, policy.language) if x in BACK_AT), "en")
    city = policy.timezone.rsplit("/", 1)[-1].replace("_", " ")
    if opening - at > timedelta(days=1):
        day = DAY_NAMES[lang][opening.weekday()]
        return BACK_ON[lang].format(day=day, time=f"{opening:%H:%M}", city=city)
    return BACK_AT[lang].format(time=f"{opening:%H:%M}", city=city)


def with_back_at(ctx: JobContext, policy: InboxPolicy, told: str, language: str | None) -> str:
    """The hand-off reply, plus when people are back if the inbox is closed now (after_hours = "answer")."""
    sentence = back_at(policy, language, now(ctx))
    return f"{told} {sentence}" if sentence else told
