"""Per-inbox behaviour: whether the bot answers (autopilot), suggests (copilot), answers without posting
(shadow: what it would have said is stored for `sidecar replies list`) or stays out (off), and its hours.

Read from a small TOML file named by INBOXES_CONFIG (see config/inboxes.example.toml). Inboxes not
listed use [defaults], whose mode falls back to DEFAULT_INBOX_MODE. The same file lists, under
[properties.<code>], the other names guests use for a property (bot.agent.properties matches them in
general inboxes, those with no `property`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.settings import ConfigError

Mode = Literal["autopilot", "copilot", "off", "shadow"]
MODES = ("autopilot", "copilot", "off", "shadow")
AfterHours = Literal["answer", "handoff"]
AFTER_HOURS = ("answer", "handoff")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class InboxPolicy:
    """How the bot behaves in one Chatwoot inbox."""

    mode: Mode = "autopilot"
    language: str = "en"  # the language used when the guest's cannot be told
    property: str | None = None  # an inbox dedicated to one property (e.g. its own widget)
    voice: str | None = None  # TTS voice for spoken replies; None = the default for the language
    voice_replies: bool = True  # answer voice notes with audio too (autopilot only)
    handoff_label: str = "bot-handoff"
    hours: str | None = None  # opening hours, "09:00-20:00" (local time); None = always open
    days: str = "mon-sun"  # the days those hours apply: "mon-fri", "mon-sat,sun" ...
    timezone: str = "UTC"  # IANA zone of `hours`, e.g. "Europe/Lisbon"
    after_hours: AfterHours = "answer"  # answer (saying when people are back) | handoff (silently, to the morning)


@dataclass(frozen=True)
class PropertyNames:
    """How guests may name one property, beyond what the Guesty mirror knows ([properties.<code>])."""

    name: str | None = None  # what the bot calls it when it asks "which one?" (else the listing title)
    aliases: tuple[str, ...] = ()  # "Casa Alfama", "the Lisbon flat": matched whole, case and accents ignored


@dataclass(frozen=True)
class InboxTable:
    defaults: InboxPolicy = InboxPolicy()
    inboxes: dict[int, InboxPolicy] = field(default_factory=dict)
    properties: dict[str, PropertyNames] = field(default_factory=dict)

    def for_inbox(self, inbox_id: int | None) -> InboxPolicy:
        if inbox_id is None:
            return self.defaults
        return self.inboxes.get(inbox_id, self.defaults)


_FIELDS = set(InboxPolicy.__dataclass_fields__)


def _policy(base: InboxPolicy, raw: dict[str, Any], where: str) -> InboxPolicy:
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ConfigError(
            f"INBOXES_CONFIG: unknown setting(s) {sorted(unknown)} in {where}; allowed: {sorted(_FIELDS)}"
        )
    if "mode" in raw and raw["mode"] not in MODES:
        raise ConfigError(f"INBOXES_CONFIG: mode {raw['mode']!r} in {where} must be one of {', '.join(MODES)}")
    policy = replace(base, **raw)
    _check_hours(policy, where)
    return policy


def _check_hours(policy: InboxPolicy, where: str) -> None:
    """Fail at start, naming the key, rather than at the first night-time message."""
    if policy.after_hours not in AFTER_HOURS:
        raise ConfigError(
            f"INBOXES_CONFIG: after_hours {policy.after_hours!r} in {where} must be one of {', '.join(AFTER_HOURS)}"
        )
    if policy.hours is not None and parse_hours(policy.hours) is None:
        raise ConfigError(f'INBOXES_CONFIG: hours {policy.hours!r} in {where} must look like "09:00-20:00"')
    if parse_days(policy.days) is None:
        raise ConfigError(
            f"INBOXES_CONFIG: days {policy.days!r} in {where} must be day names or ranges "
            f'such as "mon-fri" or "mon-fri,sun"'
        )
    try:
        ZoneInfo(policy.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f'INBOXES_CONFIG: timezone {policy.timezone!r} in {where} is not an IANA time zone such as "Europe/Lisbon"'
        ) from None


def parse_hours(text: str) -> tuple[time, time] | None:
    """("09:00-20:00") -> (09:00, 20:00); None when malformed or empty. Closing before opening spans midnight."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        return None
    opening, closing = time(h1, m1), (time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2))
    return None if opening == closing else (opening, closing)


def parse_days(text: str) -> frozenset[int] | None:
    """("mon-fri,sun") -> {0, 1, 2, 3, 4, 6} (Monday is 0); None when malformed."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            return None
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def _names(code: str, raw: Any) -> PropertyNames:
    where = f"[properties.{code}]"
    if not isinstance(raw, dict):
        raise ConfigError(f'INBOXES_CONFIG: {where} must be a table (name = "…", aliases = ["…"])')
    unknown = set(raw) - {"name", "aliases"}
    if unknown:
        raise ConfigError(f"INBOXES_CONFIG: unknown setting(s) {sorted(unknown)} in {where}; allowed: aliases, name")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ConfigError(f"INBOXES_CONFIG: aliases in {where} must be a list of non-empty strings")
    name = raw.get("name")
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise ConfigError(f"INBOXES_CONFIG: name in {where} must be a non-empty string")
    return PropertyNames(name=name.strip() if name else None, aliases=tuple(a.strip() for a in aliases))


def load_inboxes(path: Path | None, default_mode: str = "autopilot") -> InboxTable:
    """Read the inbox table; a missing or malformed file fails naming INBOXES_CONFIG."""
    defaults = InboxPolicy(mode=default_mode)  # type: ignore[arg-type]
    if path is None:
        return InboxTable(defaults=defaults)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"INBOXES_CONFIG: cannot read {path} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"INBOXES_CONFIG: {path} is not valid TOML ({exc})") from None
    defaults = _policy(defaults, data.get("defaults", {}), "[defaults]")
    inboxes: dict[int, InboxPolicy] = {}
    for key, raw in data.get("inboxes", {}).items():
        if not str(key).isdigit():
            raise ConfigError(f"INBOXES_CONFIG: [inboxes.{key}] must be a numeric Chatwoot inbox id")
        inboxes[int(key)] = _policy(defaults, raw, f"[inboxes.{key}]")
    properties = {str(code): _names(str(code), raw) for code, raw in data.get("properties", {}).items()}
    return InboxTable(defaults=defaults, inboxes=inboxes, properties=properties)
