"""`sidecar doctor` against stand-ins for Chatwoot (spec-checked), Groq, Azure, Aircall and Guesty, with the real
local PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from bot.service.doctor import doctor_command
from integrations.guesty.client import TOKEN_KEY
from tests.conftest import REDIS_URL
from tests.ops.chatwoot_standin import ADMIN, AGENT, FakeChatwoot

GROQ_KEY, AZURE_KEY, GUESTY_TOKEN = "gsk_test_key", "azure-key", "guesty-cached-token"
WEBHOOK = "https://sidecar.acme.test/webhooks/chatwoot"
DECOMMISSIONED = {
    "error": {
        "message": "The model `llama-3.3-70b-versatile` has been decommissioned and is no longer supported.",
        "type": "invalid_request_error",
        "code": "model_decommissioned",
    }
}


class World:
    """Every service the doctor asks, behind one transport; `requests` records what was asked."""

    def __init__(self) -> None:
        self.chatwoot = FakeChatwoot()
        self.bot = {
            "id": 5,
            "name": "STR sidecar",
            "outgoing_url": WEBHOOK,
            "access_token": "bot-token-5",
            "secret": "bot-secret-5",
        }
        self.chatwoot.bots[5] = self.bot
        self.chatwoot.inbox_bot[3] = 5
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        self.requests.append(f"{request.method} {host}{path}")
        if host == "chat.acme.test":
            return self.chatwoot.handle(request)
        if host == "api.groq.test":
            if request.headers.get("authorization") != f"Bearer {GROQ_KEY}":
                return httpx.Response(401, json={"error": {"message": "Invalid API Key", "code": "invalid_api_key"}})
            if path == "/openai/v1/models":
                return httpx.Response(
                    200,
                    json={
                        "object": "list",
                        "data": [
                            {"id": "openai/gpt-oss-120b", "object": "model", "active": True},
                            {"id": "openai/gpt-oss-20b", "object": "model", "active": True},
                        ],
                    },
                )
            return httpx.Response(404, json=DECOMMISSIONED)
        if host == "westeurope.tts.speech.microsoft.com":
            if request.headers.get("ocp-apim-subscription-key") != AZURE_KEY:
                return httpx.Response(401)
            return httpx.Response(200, content=b"ID3" + b"\0" * 1200, headers={"content-type": "audio/mpeg"})
        if host == "api.aircall.test" and path == "/v1/ping":
            return httpx.Response(200, json={"ping": "pong"})
        if host == "open-api.guesty.test":
            if path == "/oauth2/token":
                return httpx.Response(200, json={"access_token": "new-token", "expires_in": 86400})
            return httpx.Response(404, json={"error": "listing not found"})
        return httpx.Response(599)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def env(clean_db: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": clean_db,
        "REDIS_URL": REDIS_URL,
        "QDRANT_PATH": str(tmp_path / "qdrant"),
        "CHATWOOT_URL": "https://chat.acme.test",
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_BOT_TOKEN": "bot-token-5",
        "CHATWOOT_BOT_SECRET": "bot-secret-5",
        "CHATWOOT_API_TOKEN": AGENT,
        "CHATWOOT_ADMIN_TOKEN": ADMIN,
        "SIDECAR_WEBHOOK_URL": WEBHOOK,
        "CHATWOOT_CALLS_INBOX_ID": "12",
        "GROQ_API_KEY": GROQ_KEY,
        "GROQ_BASE_URL": "https://api.groq.test",
        "AZURE_SPEECH_KEY": AZURE_KEY,
        "AZURE_SPEECH_REGION": "westeurope",
        "AIRCALL_WEBHOOK_TOKEN": "t",
        "AIRCALL_API_ID": "id",
        "AIRCALL_API_TOKEN": "tok",
        "AIRCALL_API_URL": "https://api.aircall.test",
        "GUESTY_CLIENT_ID": "cid",
        "GUESTY_CLIENT_SECRET": "csecret",
        "GUESTY_API_URL": "https://open-api.guesty.test",
    }


def cache_guesty_token(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO kv_state (key, value, expires_at) VALUES (%s, %s, %s)",
            (TOKEN_KEY, Jsonb({"access_token": GUESTY_TOKEN}), datetime.now(UTC) + timedelta(hours=20)),
        )


async def doctor(world: World, env: dict[str, str], *, as_json: bool = False, timeout: float = 20.0) -> int:
    async with httpx.AsyncClient(transport=httpx.MockTransport(world.handle)) as http:
        return await doctor_command(env, as_json=as_json, timeout=timeout, http=http)


def lines(out: str) -> dict[str, str]:
    """check name -> its line, for the check lines of the output."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("OK", "PROBLEM", "SKIP"):
            found[rest.strip().split(":", 1)[0]] = line
    return found


async def test_a_healthy_installation_passes_every_check(
    world: World, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cache_guesty_token(env["DATABASE_URL"])

    assert await doctor(world, env) == 0

    out = capsys.readouterr().out
    found = lines(out)
    assert list(found) == [
        "configuration",
        "postgres",
        "redis",
        "qdrant",
        "embedding model",
        "chatwoot user token",
        "chatwoot bot token",
        "chatwoot bot settings",
        "groq",
        "azure speech",
        "aircall",
        "guesty",
        "ffmpeg",
    ]
    assert all(line.startswith("OK ") for line in found.values()), out
    assert found["chatwoot bot settings"] == (
        "OK       chatwoot bot settings: bot 'STR sidecar' posts to our URL and signs with our secret"
    )
    assert found["groq"] == "OK       groq: key accepted; openai/gpt-oss-120b available"
    assert out.rstrip().endswith("everything checked is fine")
    assert "POST open-api.guesty.test/oauth2/token" not in world.requests  # the cached token was used
    assert "GET open-api.guesty.test/v1/listings/000000000000000000000000" in world.requests


async def test_doctor_names_each_fault_with_its_fix_and_fails(
    world: World, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env.update(
        {
            "CHATWOOT_BOT_TOKEN": "not-a-token",
            "CHATWOOT_API_TOKEN": "stale-user-token",
            "GROQ_MODEL": "llama-3.3-70b-versatile",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )

    assert await doctor(world, env, timeout=5) == 1

    found = lines(capsys.readouterr().out)
    assert found["chatwoot bot token"] == (
        "PROBLEM  chatwoot bot token: CHATWOOT_BOT_TOKEN refused by Chatwoot: no such token → fix: copy the bot's "
        "access token from Chatwoot (Settings → Bots) into CHATWOOT_BOT_TOKEN, or run `sidecar chatwoot setup`"
    )
    assert found["chatwoot user token"] == (
        "PROBLEM  chatwoot user token: CHATWOOT_API_TOKEN refused: Chatwoot GET /profile answered 401: "
        '{"error":"Invalid Access Token"} (sent CHATWOOT_API_TOKEN) → fix: copy a user\'s access token '
        "(Chatwoot → Profile settings → Access token) into CHATWOOT_API_TOKEN"
    )
    assert found["groq"] == (
        "PROBLEM  groq: GROQ_MODEL llama-3.3-70b-versatile is decommissioned → fix: set GROQ_MODEL to a current "
        "model, e.g. openai/gpt-oss-120b (this key may use: openai/gpt-oss-120b, openai/gpt-oss-20b)"
    )
    assert found["redis"] == (
        "PROBLEM  redis: cannot reach redis://127.0.0.1:1/0 (ConnectionError) → fix: start "
        "Redis (scripts/services.sh) or fix REDIS_URL"
    )
    assert found["chatwoot bot settings"].startswith(  # found by name; the token Chatwoot shows is not ours
        "PROBLEM  chatwoot bot settings: bot 'STR sidecar': CHATWOOT_BOT_TOKEN is not this bot's access token → "
    )
    assert found["postgres"].startswith("OK ")


async def test_json_gives_the_same_checks(
    world: World, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env["GROQ_API_KEY"] = "gsk_wrong"
    assert await doctor(world, env, as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    [groq] = [c for c in report["checks"] if c["name"] == "groq"]
    assert groq == {
        "name": "groq",
        "status": "problem",
        "detail": "GROQ_API_KEY refused (401)",
        "fix": "create a key at https://console.groq.com/keys and set GROQ_API_KEY",
    }


async def test_a_secret_that_differs_from_chatwoots_is_named_without_showing_either(
    world: World, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env["CHATWOOT_BOT_SECRET"] = "an-old-secret"
    world.bot["outgoing_url"] = "http://old-host:8000/webhooks/chatwoot"
    assert await doctor(world, env) == 1
    out = capsys.readouterr().out
    assert lines(out)["chatwoot bot settings"] == (
        "PROBLEM  chatwoot bot settings: bot 'STR sidecar': posts to http://old-host:8000/webhooks/chatwoot, not "
        "SIDECAR_WEBHOOK_URL; CHATWOOT_BOT_SECRET differs from the bot's secret in Chatwoot: every delivery gets 401"
        " → fix: run `sidecar chatwoot setup` (or fix the bot under Settings → Bots and our settings)"
    )
    assert "bot-secret-5" not in out and "an-old-secret" not in out


async def test_an_old_chatwoot_is_told_apart_from_a_wrong_bot_token(
    world: World, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    world.chatwoot.version = (4, 12)
    await doctor(world, env)
    assert lines(capsys.readouterr().out)["chatwoot bot token"] == (
        "PROBLEM  chatwoot bot token: accepted, but this Chatwoot (older than 4.15) does not let a bot read a "
        "conversation or its labels: hand-off labels and the check before replying fail → fix: upgrade Chatwoot "
        "to 4.15 or later"
    )


async def test_a_malformed_setting_is_the_first_finding(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert await doctor(world, {"REDIS_URL": "localhost:6379"}) == 1
    assert capsys.readouterr().out.startswith(
        "PROBLEM  configuration: invalid configuration: REDIS_URL: must be a redis:// URL; set it to a Redis URL"
    )


async def test_a_hanging_service_costs_one_timeout(
    world: World, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    async def hang(_: object) -> object:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    async with httpx.AsyncClient(transport=httpx.MockTransport(world.handle)) as http:
        code = await doctor_command(env, timeout=0.2, http=http, checks=[("slow", hang), ("other", hang)])
    assert code == 1
    assert capsys.readouterr().out.splitlines()[:2] == [
        "PROBLEM  slow: no answer within 0.2 s → fix: see that the service is up and reachable from here, or "
        "raise --timeout",
        "PROBLEM  other: no answer within 0.2 s → fix: see that the service is up and reachable from here, or "
        "raise --timeout",
    ]
