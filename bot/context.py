"""What every job handler gets: one worker process's long-lived clients and warm resources.

The worker builds one JobContext at start and shares it across jobs (bot.service.jobs): the database
pool, the HTTP client and the Chatwoot client, and the heavy resources (the knowledge retriever with its
embedding model, the LLM client, the inbox table, the speech backend), each built on first use and
kept. Handlers read them from here instead of reaching into another handler's module. Tests may put a
prepared resource in `extras` under the same name before the first use ("retriever", "llm", ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import redis
from psycopg_pool import AsyncConnectionPool

from bot.answer.groq_llm import llm_from_settings
from bot.answer.llm import LLM
from bot.core import db
from bot.core.ledger import StoredEvent
from bot.knowledge import Embedder, Retriever, open_store
from config.inboxes import InboxTable, load_inboxes
from config.settings import Settings
from integrations.chatwoot.client import ChatwootClient
from speech.backend import SpeechBackend, open_speech
from speech.cache import RedisAudioCache

T = TypeVar("T")


@dataclass
class JobContext:
    """Shared, long-lived clients and resources for one worker process."""

    settings: Settings
    db: AsyncConnectionPool
    http: httpx.AsyncClient
    redis: redis.Redis
    chatwoot: ChatwootClient | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # resources built on first use, by name

    @classmethod
    async def open(cls, settings: Settings) -> JobContext:
        # Handlers' queries are short, so a small pool serves many concurrent jobs. Each connection is checked
        # as it is handed out, so after a Postgres restart the pool replaces dead ones instead of failing jobs.
        size = min(settings.worker_concurrency, 16) + 2
        pool = AsyncConnectionPool(
            settings.database_dsn,
            min_size=2,
            max_size=size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 5, "prepare_threshold": settings.prepare_threshold},
            **db.pool_options(),
        )
        await pool.open(wait=True, timeout=10)
        # Every job slot may have two calls in flight (the typing indicator beside Groq or Chatwoot). Keep as
        # many connections alive as may be open: a connection closed after a busy moment must be opened again
        # on the next reply's path, and opening one costs more CPU than the request it carries.
        connections = max(50, 2 * settings.worker_concurrency)
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(20.0, connect=5.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        chatwoot = None
        if settings.chatwoot_url and settings.chatwoot_account_id:
            chatwoot = ChatwootClient(
                http,
                settings.chatwoot_url,
                settings.chatwoot_account_id,
                bot_token=settings.secret("chatwoot_bot_token"),
                api_token=settings.secret("chatwoot_api_token"),
            )
        return cls(
            settings=settings,
            db=pool,
            http=http,
            chatwoot=chatwoot,
            redis=redis.Redis.from_url(settings.redis_url, health_check_interval=10),
        )

    def _resource(self, name: str, build: Callable[[], T]) -> T:
        if name not in self.extras:
            self.extras[name] = build()
        value: T = self.extras[name]
        return value

    @property
    def retriever(self) -> Retriever:
        """The knowledge retriever: embedding model and Qdrant store, loaded once and kept warm."""
        return self._resource(
            "retriever", lambda: Retriever(open_store(self.settings), Embedder.from_settings(self.settings))
        )

    @property
    def llm(self) -> LLM | None:
        """The Groq client, or None when no GROQ_API_KEY is set (the bot then answers offline)."""
        return self._resource("llm", lambda: llm_from_settings(self.settings, self.http))

    @property
    def inboxes(self) -> InboxTable:
        """Each Chatwoot inbox's mode, language, property and hand-off label."""
        return self._resource(
            "inboxes", lambda: load_inboxes(self.settings.inboxes_config, self.settings.default_inbox_mode)
        )

    @property
    def speech(self) -> SpeechBackend:
        """The configured speech backend, its synthesis cached in Redis (shared by the replicas)."""
        return self._resource(
            "speech",
            lambda: open_speech(
                self.settings, self.http, cache=RedisAudioCache(self.redis, prefix=f"{self.settings.queue_name}:")
            ),
        )

    async def warm_up(self) -> None:
        """Load the embedding model and open the knowledge store now, not when the first guest waits."""
        self.retriever.embedder.embed_query("warm up")

    async def close(self) -> None:
        await self.http.aclose()
        await self.db.close()
        for extra in self.extras.values():
            closer = getattr(extra, "close", None)
            if callable(closer):
                result = closer()
                if asyncio.iscoroutine(result):
                    await result


# A handler runs one stored event; it returns "done" or "ignored" (None counts as "done").
Handler = Callable[[JobContext, StoredEvent], Awaitable[str | None]]


async def record_only(ctx: JobContext, event: StoredEvent) -> str | None:
    """Accept an event we store for the record but act on elsewhere (or not yet)."""
    return "done"
