"""`sidecar replay`: an automation rate you can audit, measured on the questions people already answered.

Each guest question of a past conversation (bot.service.replay_history) goes through the bot in shadow:
retrieval and bot.answer.answer_question as the worker runs them, nothing posted, with the booking as it
was then (the contact's reservation whose dates cover the question's time: its property and facts; access
details are never unlocked, so no door code can land in a report file). The bot's answer is compared with
what the person replied (bot.answer.compare: agree, differ on times or numbers, unrelated) or counted as a
hand-off. The report gives the share the bot would have answered, the share where it agrees with the
person, and every disagreement, as text and as JSON.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from bot.answer.compare import Comparison, compare
from bot.answer.groq_llm import llm_from_settings
from bot.answer.llm import LLM
from bot.answer.pipeline import answer_question
from bot.answer.types import GuestContext
from bot.errors import ConfigurationError
from bot.knowledge import Embedder, Retriever, detect_language, open_store
from bot.service.replay_history import (
    PastConversation,
    PastQuestion,
    from_archive,
    from_chatwoot,
    questions,
    stay_at,
    stays_of,
)
from config.inboxes import InboxTable, load_inboxes
from config.settings import Settings
from integrations.chatwoot.client import ChatwootClient
from integrations.guesty.stays import booking_context

SHOWN = 40  # disagreements printed (all of them go to the JSON report)
CLIP = 240


@dataclass(frozen=True)
class Replayed:
    """One past question, what the person replied and what the bot would have done."""

    conversation_id: str
    at: str | None
    question: str
    human: str
    decision: str  # "answer" | "handoff"
    bot: str | None  # the answer, None for a hand-off
    reason: str | None  # the hand-off reason
    verdict: str  # "agree" | "differ" | "unrelated" | "handoff"
    kind: str | None = None  # "times" | "numbers" for a disagreement
    human_values: tuple[str, ...] = ()
    bot_values: tuple[str, ...] = ()
    property_code: str | None = None
    booking: str | None = None


@dataclass
class ReplayReport:
    source: str
    since: datetime
    model: str
    conversations: int = 0
    results: list[Replayed] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.results if r.verdict == verdict)

    @property
    def answered(self) -> int:
        return sum(1 for r in self.results if r.decision == "answer")

    def share(self, part: int, whole: int | None = None) -> float:
        whole = len(self.results) if whole is None else whole
        return round(part / whole, 4) if whole else 0.0

    @property
    def disagreements(self) -> list[Replayed]:
        return [r for r in self.results if r.verdict == "differ"]

    def to_text(self) -> str:
        n, answered, agree = len(self.results), self.answered, self.count("agree")
        lines = [
            f"replay of {self.conversations} conversations since {self.since:%Y-%m-%d} ({self.source}, "
            f"answering model: {self.model}): {n} questions a person answered",
            f"would answer:   {answered}/{n} ({self.share(answered):.1%})",
            f"agrees:         {agree}/{n} ({self.share(agree):.1%}; {self.share(agree, answered):.1%} of its answers)",
            f"differs:        {self.count('differ')} (times or numbers)",
            f"unrelated:      {self.count('unrelated')} (answered, no shared value or terms)",
            f"would hand off: {self.count('handoff')}",
            f"disagreements ({len(self.disagreements)}):",
        ]
        for r in self.disagreements[:SHOWN]:
            lines += [
                f"  conversation {r.conversation_id} ({r.at or 'undated'}): {r.kind}: person "
                f"{', '.join(r.human_values)}; bot {', '.join(r.bot_values)}",
                f"    guest:  {_clip(r.question)}",
                f"    person: {_clip(r.human)}",
                f"    bot:    {_clip(r.bot or '')}",
            ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        n, answered, agree = len(self.results), self.answered, self.count("agree")
        return {
            "source": self.source,
            "since": self.since.isoformat(),
            "model": self.model,
            "conversations": self.conversations,
            "questions": n,
            "answered": answered,
            "agree": agree,
            "differ": self.count("differ"),
            "unrelated": self.count("unrelated"),
            "handoff": self.count("handoff"),
            "share_answered": self.share(answered),
            "share_agree": self.share(agree),
            "share_agree_of_answered": self.share(agree, answered),
            "disagreements": [asdict(r) for r in self.disagreements],
            "results": [asdict(r) for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CLIP else flat[: CLIP - 1] + "…"


async def guest_then(
    db: AsyncConnectionPool, q: PastQuestion, inboxes: InboxTable, *, window_days_before: int
) -> GuestContext:
    """The context the bot would have had: the booking covering the question's time, else the inbox's property."""
    fallback = inboxes.for_inbox(q.conversation.inbox_id).property
    stay = stay_at(await stays_of(db, q.conversation), q.at)
    if stay is None or q.at is None:
        return GuestContext(property_code=fallback)
    guest = booking_context(stay, verified=True, now=q.at, window_days_before=window_days_before, verified_by="replay")
    # Shadow answers end up in a report file: never with access details in them.
    return replace(guest, property_code=guest.property_code or fallback, access_properties=frozenset())


async def shadow(q: PastQuestion, guest: GuestContext, retriever: Retriever, llm: LLM | None) -> Replayed:
    """The bot's decision on one past question, compared with the person's reply."""
    chunks = await asyncio.to_thread(
        retriever.search,
        q.text,
        property_code=guest.property_code,
        access_properties=guest.access_properties,
        private_properties=guest.private_properties,
    )
    outcome = await answer_question(
        q.text, chunks=chunks, turns=q.turns, facts=guest.facts, llm=llm, language=detect_language(q.text)
    )
    handed = Replayed(
        q.conversation.id,
        q.at.isoformat() if q.at else None,
        q.text,
        q.human,
        "handoff",
        None,
        outcome.reason,
        "handoff",
        property_code=guest.property_code,
        booking=guest.booking,
    )
    if outcome.kind != "answer":
        return handed
    found: Comparison = compare(outcome.text, q.human)
    return replace(
        handed,
        decision="answer",
        bot=outcome.text,
        reason=None,
        verdict=found.verdict,
        kind=found.kind,
        human_values=found.human,
        bot_values=found.bot,
    )


async def replay(
    history: AsyncIterator[PastConversation],
    *,
    db: AsyncConnectionPool,
    retriever: Retriever,
    llm: LLM | None,
    inboxes: InboxTable,
    source: str,
    since: datetime,
    window_days_before: int = 2,
) -> ReplayReport:
    """Every question of every conversation `history` yields, in shadow."""
    report = ReplayReport(source, since, llm.model if llm is not None else "offline")
    async for conv in history:
        report.conversations += 1
        for q in questions(conv):
            guest = await guest_then(db, q, inboxes, window_days_before=window_days_before)
            report.results.append(await shadow(q, guest, retriever, llm))
    return report


async def run_async(
    settings: Settings,
    retriever: Retriever,
    *,
    source: str,
    since: datetime,
    inbox_id: int | None = None,
    limit: int | None = None,
) -> ReplayReport:
    """`sidecar replay` with the settings' database, Chatwoot (user token) and model."""
    inboxes = load_inboxes(settings.inboxes_config, settings.default_inbox_mode)
    async with (
        AsyncConnectionPool(settings.database_dsn, min_size=1, max_size=2, open=False) as pool,
        httpx.AsyncClient(timeout=30) as http,
    ):
        if source == "archive":
            history = from_archive(pool, since=since, limit=limit)
        else:
            if not (settings.chatwoot_url and settings.chatwoot_account_id):
                raise ConfigurationError(
                    "replay from Chatwoot needs CHATWOOT_URL and CHATWOOT_ACCOUNT_ID (or use --from archive)"
                )
            cw = ChatwootClient(
                http,
                settings.chatwoot_url,
                settings.chatwoot_account_id,
                bot_token=None,
                api_token=settings.secret("chatwoot_api_token"),
            )
            history = from_chatwoot(cw, since=since, inbox_id=inbox_id, limit=limit)
        return await replay(
            history,
            db=pool,
            retriever=retriever,
            llm=llm_from_settings(settings, http),
            inboxes=inboxes,
            source=source,
            since=since,
            window_days_before=settings.access_window_days_before,
        )


def run(
    settings: Settings, *, source: str, since: datetime, inbox_id: int | None = None, limit: int | None = None
) -> ReplayReport:
    retriever = Retriever(open_store(settings), Embedder.from_settings(settings))
    try:
        return asyncio.run(run_async(settings, retriever, source=source, since=since, inbox_id=inbox_id, limit=limit))
    finally:
        retriever.store.close()
