"""`sidecar ask`: the answering pipeline without Chatwoot, for operators testing their knowledge base."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from bot.answer.groq_llm import llm_from_settings
from bot.answer.pipeline import AnswerOutcome, answer_question
from bot.knowledge import Embedder, RetrievedChunk, Retriever, open_store
from config.settings import Settings


@dataclass(frozen=True)
class AskResult:
    outcome: AnswerOutcome
    chunks: list[RetrievedChunk]


async def ask_async(retriever: Retriever, settings: Settings, question: str, property_code: str | None,
                    *, access: bool = False) -> AskResult:
    """Retrieve and answer one question as the bot would (access details and the exact address only
    when `access`)."""
    unlocked = frozenset({property_code}) if access and property_code else frozenset()
    chunks = retriever.search(question, property_code=property_code, access_properties=unlocked,
                              private_properties=unlocked)
    async with httpx.AsyncClient(timeout=30) as http:
        outcome = await answer_question(question, chunks=chunks, llm=llm_from_settings(settings, http))
    return AskResult(outcome, chunks)


def ask(settings: Settings, question: str, property_code: str | None, *, access: bool = False) -> AskResult:
    retriever = Retriever(open_store(settings), Embedder.from_settings(settings))
    try:
        return asyncio.run(ask_async(retriever, settings, question, property_code, access=access))
    finally:
        retriever.store.close()


def render(result: AskResult) -> str:
    """The answer, then where it came from, for a terminal."""
    o = result.outcome
    lines = [o.text if o.kind == "answer" else f"[hand off: {o.reason}] {o.text}", "",
             f"model: {o.model}   latency: {o.latency_ms} ms"]
    if result.chunks:
        lines.append("retrieved:")
        for c in result.chunks:
            where = f"{c.source} › {c.heading}" if c.heading else c.source
            lines.append(f"  {c.score:6.3f}  {c.property_code or 'shared':12}  {where}")
    return "\n".join(lines)
