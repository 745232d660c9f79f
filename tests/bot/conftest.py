"""Fixtures for the bot's end-to-end tests: the example knowledge indexed once, a Chatwoot on respx,
deliveries through the real webhook, and a burst worker sharing the warm retriever."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from starlette.testclient import TestClient

from bot.context import JobContext
from bot.knowledge import Embedder, Retriever, ingest
from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import packaged_model_dir
from bot.service.app import create_app
from bot.service.jobs import Runtime
from bot.service.worker import run_worker
from tests.conftest import make_settings
from tests.webhooks import chatwoot_request

EXAMPLES = Path(__file__).resolve().parents[2] / "bot" / "knowledge" / "examples"
CHATWOOT = "https://chat.acme.example"
API = f"{CHATWOOT}/api/v1/accounts/1"
BOT_TOKEN = "bot-token-123"
SECRET = "bot-secret-for-tests"
INBOXES = """
[inboxes.3]
mode = "autopilot"
property = "lis-alfama"

[inboxes.4]
mode = "copilot"
property = "ber-mitte"

[inboxes.5]
mode = "off"
"""


@pytest.fixture(scope="session")
def example_retriever(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Retriever]:
    """The bundled example knowledge in an embedded Edge store, with the real packaged model."""
    model_dir = packaged_model_dir(tmp_path_factory.mktemp("model"))
    embedder = Embedder(model_dir=model_dir, model_name="sentence-transformers/all-MiniLM-L6-v2", dim=384)
    store = EdgeStore(tmp_path_factory.mktemp("qdrant") / "knowledge", "knowledge", dim=384)
    ingest(EXAMPLES, store=store, embedder=embedder, dsn=database_url)
    yield Retriever(store, embedder)
    store.close()


@pytest.fixture
def bot_settings(clean_db: str, queue_name: str, tmp_path: Path) -> Any:
    inboxes = tmp_path / "inboxes.toml"
    inboxes.write_text(INBOXES)
    return make_settings(
        clean_db,
        queue_name,
        CHATWOOT_URL=CHATWOOT,
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_BOT_TOKEN=BOT_TOKEN,
        INBOXES_CONFIG=str(inboxes),
        DEBOUNCE_SECONDS="0",
    )


@pytest.fixture
def conversation_meta() -> dict[int, dict[str, Any]]:
    """Extra `meta` (sender, channel, hmac_verified) the Chatwoot stand-in returns for a conversation's GET,
    by conversation id: the contact as Chatwoot has it now, which the bot re-reads before a release."""
    return {}


@pytest.fixture
def chatwoot(conversation_meta: dict[int, dict[str, Any]]) -> Iterator[respx.MockRouter]:
    """A Chatwoot that accepts the bot's calls: conversation pending, labels ["vip"], messages created."""
    counter = iter(range(70_000, 80_000))

    def conversation(req: httpx.Request) -> httpx.Response:
        conv = int(req.url.path.rsplit("/", 1)[1])
        meta = {"assignee_type": None, **conversation_meta.get(conv, {})}
        return httpx.Response(200, json={"id": conv, "status": "pending", "meta": meta})

    with respx.mock(assert_all_called=False) as router:
        router.post(url__regex=rf"{API}/conversations/\d+/messages").mock(
            side_effect=lambda req: httpx.Response(200, json={"id": next(counter), "message_type": 1})
        )
        router.post(url__regex=rf"{API}/conversations/\d+/toggle_typing_status").respond(200, json={})
        router.post(url__regex=rf"{API}/conversations/\d+/custom_attributes").mock(
            side_effect=lambda req: httpx.Response(200, json=json.loads(req.content))
        )
        router.get(url__regex=rf"{API}/conversations/\d+$").mock(side_effect=conversation)
        router.get(url__regex=rf"{API}/conversations/\d+/labels").respond(200, json={"payload": ["vip"]})
        router.post(url__regex=rf"{API}/conversations/\d+/labels").mock(
            side_effect=lambda req: httpx.Response(200, json={"payload": json.loads(req.content)["labels"]})
        )
        router.post(url__regex=rf"{API}/conversations/\d+/toggle_status").mock(
            side_effect=lambda req: httpx.Response(
                200,
                json={
                    "payload": {
                        "success": True,
                        "conversation_id": 1,
                        "current_status": json.loads(req.content)["status"],
                    }
                },
            )
        )
        yield router


Deliver = Callable[[dict[str, Any]], int]


@pytest.fixture
def deliver(bot_settings: Any) -> Iterator[Deliver]:
    """POST a signed delivery to the real webhook; return the stored event id (0 for duplicates)."""
    with TestClient(create_app(bot_settings)) as client:

        def post(payload: dict[str, Any]) -> int:
            body, headers = chatwoot_request(payload, SECRET)
            resp = client.post("/webhooks/chatwoot", content=body, headers=headers)
            assert resp.status_code == 200, resp.text
            return int(resp.json().get("id", 0))

        yield post


@pytest.fixture
def drain(bot_settings: Any, example_retriever: Retriever) -> Callable[..., None]:
    """Run a burst worker over the queue with the warm retriever (and optional extra context)."""

    def run(settings: Any = None, **extras: Any) -> None:
        settings = settings or bot_settings
        rt = Runtime(settings)
        rt.ctx = rt.run(JobContext.open(settings))
        rt.ctx.extras.update({"retriever": example_retriever, **extras})
        original_close = rt.close

        def close() -> None:
            assert rt.ctx is not None
            rt.ctx.extras.pop("retriever", None)  # shared across tests: not ours to close
            original_close()

        rt.close = close  # type: ignore[method-assign]
        run_worker(settings, burst=True, runtime=rt)

    return run


def messages_posted(router: respx.MockRouter) -> list[tuple[str, dict[str, Any]]]:
    """(path, JSON body) of every message the bot posted, in order."""
    return [
        (c.request.url.path.removeprefix("/api/v1/accounts/1"), json.loads(c.request.content))
        for c in router.calls
        if c.request.method == "POST" and c.request.url.path.endswith("/messages")
    ]


def calls(router: respx.MockRouter) -> list[tuple[str, str, Any]]:
    """(method, path, body) of every call, typing indicator and re-checks included."""
    out = []
    for c in router.calls:
        body = json.loads(c.request.content) if c.request.content else None
        out.append((c.request.method, c.request.url.path.removeprefix("/api/v1/accounts/1"), body))
    return out


def qa_rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT conversation_id, message_ids, mode, model, outcome, handoff_reason FROM qa_records ORDER BY id"
        ).fetchall()
