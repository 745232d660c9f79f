"""Plain data the answering layer works on: knowledge chunks, turns, booking facts, chat messages.

The knowledge layer owns the real chunk type (`bot.knowledge` `RetrievedChunk`); we only read a few of its
attributes, so a Protocol keeps this package importable and testable without Qdrant or embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, TypedDict


class ChunkLike(Protocol):
    """What we read from a retrieved knowledge chunk (read-only, so frozen dataclasses match)."""

    @property
    def text(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def heading(self) -> str | None: ...
    @property
    def property_code(self) -> str | None: ...
    @property
    def score(self) -> float: ...


Source = tuple[str, str | None]
"""Where an answer came from: (source, heading)."""

TurnRole = Literal["guest", "host"]


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation; "host" covers the bot and human agents alike."""

    role: TurnRole
    text: str


@dataclass(frozen=True)
class GuestFacts:
    """What the reservation system says about this guest's booking; every field is optional."""

    guest_name: str | None = None
    property_name: str | None = None
    check_in_date: date | None = None
    check_in_time: str | None = None  # local time as the listing states it, e.g. "15:00"
    check_out_date: date | None = None
    check_out_time: str | None = None
    status: str | None = None  # e.g. "confirmed", "inquiry", "canceled"
    guests_count: int | None = None
    today: date | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__dataclass_fields__)


class ChatMessage(TypedDict):
    """One message for an OpenAI-compatible chat completion."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Answer:
    """A reply to send to the guest, with the passages it rests on."""

    text: str
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Handoff:
    """No reply: a person should take over. `reason` is short and in English, for the agents' note."""

    reason: str


IdentityLevel = Literal["verified", "claimed", "unknown"]
"""How sure we are who is writing: the channel (or a check in the conversation) vouches for a booking
(verified), the contact's own data points at one (claimed: typed by whoever is writing), or neither."""


@dataclass(frozen=True)
class GuestContext:
    """What we know about the guest beyond the message: their booking and what it unlocks.

    Built for each message by the agent (bot.agent.entitlement) from the booking mirror; an empty one (no
    property, nothing unlocked) searches shared knowledge only. Only a verified identity carries facts or
    unlocks anything, and only for the one booking it is verified for."""

    property_code: str | None = None
    facts: GuestFacts | None = None
    access_properties: frozenset[str] = frozenset()
    private_properties: frozenset[str] = frozenset()  # exact addresses: a live booking of the property
    identity: IdentityLevel = "unknown"
    booking: str | None = None  # the booking the identity points at (confirmation code, else Guesty id)
    verified_by: str | None = None  # how: "whatsapp number", "email address", "identity validation", ...
