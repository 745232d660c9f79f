"""`sidecar ask`: the answering pipeline without Chatwoot, for operators and scripts.

The answer, the decision and its reason, and every retrieved passage (text, score, source, property,
language), as text or JSON. `--contact ID` answers as the bot would answer that Chatwoot contact: its
booking (from the Guesty mirror) picks the property and, as for a verified guest of that booking, the
facts and whatever its windows open; `--identity claimed` shows what a not-yet-verified writer gets.
With the embedded store held by a running worker, the question is handed to that worker as a job and
its result printed (the embedded store admits one process).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from psycopg_pool import AsyncConnectionPool

from bot.answer.groq_llm import llm_from_settings
from bot.answer.pipeline import AnswerOutcome, answer_question
from bot.answer.types import GuestContext
from bot.knowledge import Embedder, RetrievedChunk, Retriever, detect_language, open_store
from config.settings import Settings
from integrations.guesty.stays import booking_context, contact_stays, pick_reservation

Identity = Literal["verified", "claimed"]


@dataclass(frozen=True)
class AskResult:
    outcome: AnswerOutcome
    chunks: list[RetrievedChunk]
    guest: GuestContext
    language: str | None


async def contact_context(
    db: AsyncConnectionPool, contact_id: int, *, identity: Identity, settings: Settings, now: datetime
) -> GuestContext:
    """The context the bot builds for a writer with this contact's booking at this identity level."""
    stay = pick_reservation(await contact_stays(db, contact_id), now)
    if stay is None:
        return GuestContext()
    return booking_context(
        stay,
        verified=identity == "verified",
        now=now,
        window_days_before=settings.access_window_days_before,
        verified_by="sidecar ask",
    )


async def ask_async(
    retriever: Retriever,
    settings: Settings,
    question: str,
    property_code: str | None,
    *,
    access: bool = False,
    contact_id: int | None = None,
    identity: Identity = "verified",
) -> AskResult:
    """Retrieve and answer one question as the bot would."""
    if contact_id is not None:
        async with AsyncConnectionPool(settings.database_dsn, min_size=1, max_size=1, open=False) as pool:
            guest = await contact_context(pool, contact_id, identity=identity, settings=settings, now=datetime.now(UTC))
        if guest.property_code is None and property_code:
            guest = GuestContext(property_code=property_code, identity=guest.identity)
    else:
        unlocked = frozenset({property_code}) if access and property_code else frozenset()
        guest = GuestContext(property_code=property_code, access_properties=unlocked, private_properties=unlocked)
    language = detect_language(question)
    chunks = await asyncio.to_thread(
        retriever.search,
        question,
        property_code=guest.property_code,
        access_properties=guest.access_properties,
        private_properties=guest.private_properties,
    )
    async with httpx.AsyncClient(timeout=30) as http:
        outcome = await answer_question(
            question, chunks=chunks, facts=guest.facts, llm=llm_from_settings(settings, http), language=language
        )
    return AskResult(outcome, chunks, guest, language)


def ask(settings: Settings, question: str, property_code: str | None, **options: Any) -> AskResult:
    retriever = Retriever(open_store(settings), Embedder.from_settings(settings))
    try:
        return asyncio.run(ask_async(retriever, settings, question, property_code, **options))
    finally:
        retriever.store.close()


def to_dict(result: AskResult) -> dict[str, Any]:
    """What `--json` prints: the decision, its reason, and each passage the answer could draw on."""
    o = result.outcome
    return {
        "decision": o.kind,
        "reason": o.reason,
        "answer": o.text if o.kind == "answer" else None,
        "handoff_note": o.text if o.kind == "handoff" else None,
        "model": o.model,
        "latency_ms": o.latency_ms,
        "language": result.language,
        "property": result.guest.property_code,
        "identity": result.guest.identity,
        "booking": result.guest.booking,
        "access_properties": sorted(result.guest.access_properties),
        "private_properties": sorted(result.guest.private_properties),
        "sources": [{"source": s, "heading": h} for s, h in o.sources],
        "passages": [
            {
                "text": c.text,
                "score": round(c.score, 4),
                "source": c.source,
                "heading": c.heading,
                "property": c.property_code,
                "language": c.language,
                "gate": _gate(c),
            }
            for c in result.chunks
        ],
    }


def _gate(chunk: RetrievedChunk) -> str:
    return "access" if chunk.is_access else "private" if chunk.is_private else "open"


def render(result: AskResult) -> str:
    """The answer, then where it came from, for a terminal."""
    o = result.outcome
    g = result.guest
    lines = [
        o.text if o.kind == "answer" else f"[hand off: {o.reason}] {o.text}",
        "",
        f"model: {o.model}   latency: {o.latency_ms} ms   language: {result.language or '?'}   "
        f"property: {g.property_code or 'shared only'}"
        + (f"   booking: {g.booking} ({g.identity})" if g.booking else ""),
    ]
    if result.chunks:
        lines.append("retrieved:")
        for c in result.chunks:
            where = f"{c.source} › {c.heading}" if c.heading else c.source
            lines.append(f"  {c.score:6.3f}  {c.property_code or 'shared':12}  {_gate(c):7}  {where}")
    return "\n".join(lines)


def render_json(result: AskResult) -> str:
    return json.dumps(to_dict(result), ensure_ascii=False, indent=2)
