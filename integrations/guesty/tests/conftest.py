"""Fixtures for the Guesty tests: payload files, a private database, a fake Chatwoot and a job context."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import respx
from psycopg_pool import AsyncConnectionPool

from bot.context import JobContext
from bot.knowledge.models import Embedding, SparseVec
from config.settings import Settings, load_settings
from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.tests.spec import validate_request
from integrations.guesty.client import GuestyClient, RateLimiter, TokenStore
from tests.conftest import REDIS_URL

FIXTURES = Path(__file__).parent / "fixtures"
CHATWOOT_URL = "https://chat.example.com"
ACCOUNT_ID = 3
BOT_TOKEN = "bot-token-abc"
API_TOKEN = "user-token-xyz"
GUESTY_URL = "https://guesty.test"
ACCOUNT_PATH = f"/api/v1/accounts/{ACCOUNT_ID}"


def load(name: str) -> dict[str, Any]:
    """A payload from this folder's fixtures, e.g. load('reservation.new')."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def settings_for(dsn: str, **extra: str) -> Settings:
    env = {
        "DATABASE_URL": dsn,
        "CHATWOOT_URL": CHATWOOT_URL,
        "CHATWOOT_ACCOUNT_ID": str(ACCOUNT_ID),
        "CHATWOOT_BOT_TOKEN": BOT_TOKEN,
        "CHATWOOT_API_TOKEN": API_TOKEN,
        "GUESTY_API_URL": GUESTY_URL,
        "GUESTY_CLIENT_ID": "cid-123",
        "GUESTY_CLIENT_SECRET": "csecret-456",
        "SPEECH_BACKEND": "local",
    }
    env.update(extra)
    return load_settings(env)


async def open_pool(dsn: str, size: int = 4) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=size, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=10)
    return pool


@pytest.fixture
async def pool(clean_db: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(clean_db)
    try:
        yield pool
    finally:
        await pool.close()


async def no_sleep(seconds: float) -> None:
    """Sleeps are recorded by the tests that care; the rest must not wait in real time."""


def fast_limiter() -> RateLimiter:
    return RateLimiter(((10_000, 1.0),), sleep=no_sleep)


def guesty_client(http: httpx.AsyncClient, db: AsyncConnectionPool, **kwargs: Any) -> GuestyClient:
    kwargs.setdefault("limiter", fast_limiter())
    kwargs.setdefault("sleep", no_sleep)
    return GuestyClient(http, GUESTY_URL, "cid-123", "csecret-456", TokenStore(db), **kwargs)


class FakeEmbedder:
    """Deterministic 8-d vectors: indexing is tested for what it stores, not for embedding quality."""

    model_id = "fake-embedder@8+bm25"

    def _embed(self, text: str) -> Embedding:
        digest = hashlib.sha256(text.encode()).digest()
        dense = [b / 255 + 0.01 for b in digest[:8]]
        return Embedding(dense=dense, sparse=SparseVec(indices=[digest[0], 300 + digest[1]], values=[1.0, 0.5]))

    def embed_documents(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Embedding]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> Embedding:
        return self._embed(text)


class LazyRetriever:
    """Stands in for the worker's Retriever: the embedded store is only created by tests that index."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._store: Any = None
        self.embedder = FakeEmbedder()

    @property
    def store(self) -> Any:
        if self._store is None:
            from bot.knowledge.edge_store import EdgeStore

            self._store = EdgeStore(self._path, "knowledge", dim=8)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@dataclass
class FakeChatwoot:
    """A small stateful Chatwoot behind respx: contacts, conversations, labels and posted messages.

    Every request it receives is checked against Chatwoot's OpenAPI spec (integrations/chatwoot/tests/spec.py)."""

    contacts: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # contact id -> conversations
    labels: dict[int, list[str]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # (PUT /contacts/{id} bodies)
    label_posts: list[tuple[int, list[str]]] = field(default_factory=list)
    message_failures: list[httpx.Response] = field(default_factory=list)  # answered before any success
    saved_then_failed: list[httpx.Response] = field(default_factory=list)  # saved, but this is the answer
    next_contact_id: int = 501
    conversation_for_new_contacts: int | None = 77

    def install(self, router: respx.MockRouter) -> None:
        base = CHATWOOT_URL + ACCOUNT_PATH
        router.get(url__regex=rf"^{re.escape(base)}/contacts/search").mock(side_effect=self._search)
        router.post(f"{base}/contacts").mock(side_effect=self._create)
        router.put(url__regex=rf"^{re.escape(base)}/contacts/\d+$").mock(side_effect=self._update)
        router.get(url__regex=rf"^{re.escape(base)}/contacts/\d+/conversations$").mock(side_effect=self._convs)
        router.get(url__regex=rf"^{re.escape(base)}/conversations/\d+/labels$").mock(side_effect=self._get_labels)
        router.post(url__regex=rf"^{re.escape(base)}/conversations/\d+/labels$").mock(side_effect=self._set_labels)
        router.post(url__regex=rf"^{re.escape(base)}/conversations/\d+/messages$").mock(side_effect=self._message)
        router.get(url__regex=rf"^{re.escape(base)}/conversations/\d+/messages").mock(side_effect=self._messages)

    @staticmethod
    def _check(request: httpx.Request) -> Any:
        validate_request(request, bot_token=BOT_TOKEN)
        return json.loads(request.content) if request.content else None

    @staticmethod
    def _id(request: httpx.Request, after: str) -> int:
        match = re.search(rf"/{after}/(\d+)", request.url.path)
        assert match is not None
        return int(match.group(1))

    def _search(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        q = request.url.params["q"].lower()
        found = [c for c in self.contacts if q in (c.get("email") or "").lower() or q in (c.get("phone_number") or "")]
        return httpx.Response(200, json={"meta": {"count": len(found), "current_page": 1}, "payload": found})

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = self._check(request)
        contact = {
            "id": self.next_contact_id,
            "name": body.get("name"),
            "email": body.get("email"),
            "phone_number": body.get("phone_number"),
            "custom_attributes": {},
        }
        self.next_contact_id += 1
        self.contacts.append(contact)
        if self.conversation_for_new_contacts is not None:
            self.conversations[contact["id"]] = [
                {
                    "id": self.conversation_for_new_contacts,
                    "inbox_id": 1,
                    "status": "open",
                    "last_activity_at": 1767000000,
                }
            ]
        return httpx.Response(200, json={"payload": {"contact": contact, "contact_inbox": None}})

    def _update(self, request: httpx.Request) -> httpx.Response:
        body = self._check(request)
        contact_id = self._id(request, "contacts")
        contact = next((c for c in self.contacts if c["id"] == contact_id), None)
        if contact is None:
            return httpx.Response(404, json={"error": "Resource could not be found"})
        self.updates.append({"contact_id": contact_id, **body})
        contact["custom_attributes"] = {**contact.get("custom_attributes", {}), **body.get("custom_attributes", {})}
        contact.update({k: v for k, v in body.items() if k != "custom_attributes"})
        return httpx.Response(200, json={"payload": contact})

    def _convs(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        return httpx.Response(200, json={"payload": self.conversations.get(self._id(request, "contacts"), [])})

    def _get_labels(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        return httpx.Response(200, json={"payload": self.labels.get(self._id(request, "conversations"), [])})

    def _set_labels(self, request: httpx.Request) -> httpx.Response:
        body = self._check(request)
        conv = self._id(request, "conversations")
        self.labels[conv] = list(body["labels"])
        self.label_posts.append((conv, list(body["labels"])))
        return httpx.Response(200, json={"payload": self.labels[conv]})

    def _message(self, request: httpx.Request) -> httpx.Response:
        body = self._check(request)
        if self.message_failures:
            return self.message_failures.pop(0)
        message = {
            "id": 9001 + len(self.messages),
            "conversation_id": self._id(request, "conversations"),
            "created_at": int(time.time()),
            **body,
            "message_type": 1,
        }
        self.messages.append(message)
        if self.saved_then_failed:
            return self.saved_then_failed.pop(0)
        return httpx.Response(200, json=message)

    def _messages(self, request: httpx.Request) -> httpx.Response:
        """A conversation's newest 20 messages (or the 20 before `before`), oldest first."""
        self._check(request)
        conv, before = self._id(request, "conversations"), request.url.params.get("before")
        ours = [m for m in self.messages if m["conversation_id"] == conv and (before is None or m["id"] < int(before))]
        return httpx.Response(200, json={"meta": {}, "payload": ours[-20:]})


@pytest.fixture
def router() -> Any:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
def chatwoot(router: respx.MockRouter) -> FakeChatwoot:
    fake = FakeChatwoot()
    fake.install(router)
    return fake


@pytest.fixture
async def ctx(
    pool: AsyncConnectionPool, clean_db: str, tmp_path: Path, chatwoot: FakeChatwoot, router: respx.MockRouter
) -> AsyncIterator[JobContext]:
    """A worker context on the test database, a fake Chatwoot, an embedded store and a Guesty client."""
    settings = settings_for(clean_db, QDRANT_PATH=str(tmp_path / "qdrant"))
    http = httpx.AsyncClient()
    retriever = LazyRetriever(tmp_path / "qdrant" / "knowledge")
    context = JobContext(
        settings=settings,
        db=pool,
        http=http,
        redis=redis.Redis.from_url(REDIS_URL),
        chatwoot=ChatwootClient(
            http, CHATWOOT_URL, ACCOUNT_ID, bot_token=BOT_TOKEN, api_token=API_TOKEN, sleep=no_sleep
        ),
        extras={"retriever": retriever, "guesty_client": guesty_client(http, pool)},
    )
    try:
        yield context
    finally:
        await http.aclose()
        retriever.close()
