"""`sidecar chatwoot setup` against a Chatwoot stand-in that checks every request against Chatwoot's spec."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from bot.service.setup import (
    ATTRIBUTES,
    labels_we_use,
    merge_env_file,
    read_env_file,
    render_docker,
    setup_command,
)
from config.settings import Settings, load_settings
from integrations.aircall.transforms import CallState, contact_step
from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.verify import sign, verify_signature, verify_url_token
from integrations.guesty.transforms import contact_attributes
from tests.ops.chatwoot_standin import ADMIN, FakeChatwoot

WEBHOOK = "https://sidecar.acme.test/webhooks/chatwoot"

FIRST_RUN_WRITES = [
    "POST /agent_bots",
    "POST /inboxes/3/set_agent_bot",
    "POST /inboxes/7/set_agent_bot",
    "POST /inboxes",
    *["POST /custom_attribute_definitions"] * 10,
    *["POST /labels"] * 7,
    "POST /custom_filters",
    "POST /dashboard_apps",
]


def settings_for(fake: FakeChatwoot, **extra: str) -> Settings:
    return load_settings(
        {
            "CHATWOOT_URL": fake.base_url,
            "CHATWOOT_ACCOUNT_ID": "1",
            "CHATWOOT_ADMIN_TOKEN": ADMIN,
            "SPEECH_BACKEND": "local",
            **extra,
        }
    )


async def run(fake: FakeChatwoot, env_file: Path, *inboxes: str, settings: Settings | None = None) -> int:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        return await setup_command(
            settings or settings_for(fake),
            token=None,
            webhook_url=WEBHOOK,
            panel_url=None,
            inboxes=list(inboxes or ("3=autopilot", "7=copilot")),
            env_file=env_file,
            docker=False,
            http=http,
        )


def read_env(path: Path) -> dict[str, str]:
    return read_env_file(path.read_text())


async def test_setup_creates_each_object_once_and_writes_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeChatwoot()
    env_file = tmp_path / "sidecar.env"
    env_file.write_text("# ours\nGROQ_API_KEY=keep-me\n")

    assert await run(fake, env_file) == 0

    assert fake.writes() == FIRST_RUN_WRITES
    [bot] = fake.bots.values()
    assert (bot["name"], bot["outgoing_url"]) == ("STR sidecar", WEBHOOK)
    assert fake.inbox_bot == {3: bot["id"], 7: bot["id"]}
    [calls_inbox] = [i for i in fake.inboxes.values() if i["name"] == "Phone calls"]
    assert calls_inbox["channel_type"] == "Channel::Api"
    assert sorted(a["attribute_key"] for a in fake.attributes) == sorted(a.key for a in ATTRIBUTES)
    assert [label["title"] for label in fake.labels] == [
        "bot-handoff",
        "inquiry",
        "pre-stay",
        "during-stay",
        "post-stay",
        "missed-call",
        "voicemail",
    ]
    [saved] = fake.filters
    assert saved["name"] == "Bot conversations"
    assert [(c["attribute_key"], c["values"]) for c in saved["query"]["payload"]] == [
        ("status", ["pending"]),
        ("inbox_id", [3, 7]),
    ]
    [app] = fake.apps.values()
    env = read_env(env_file)
    assert app["content"] == [{"type": "frame", "url": f"https://sidecar.acme.test/panel#token={env['PANEL_TOKEN']}"}]
    assert env == {
        "GROQ_API_KEY": "keep-me",
        "CHATWOOT_URL": fake.base_url,
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_BOT_TOKEN": bot["access_token"],
        "CHATWOOT_BOT_SECRET": bot["secret"],
        "SIDECAR_WEBHOOK_URL": WEBHOOK,
        "CHATWOOT_CALLS_INBOX_ID": str(calls_inbox["id"]),
        "PANEL_TOKEN": env["PANEL_TOKEN"],
    }
    assert len(env["PANEL_TOKEN"]) >= 32
    out = capsys.readouterr().out
    assert "created  agent bot 'STR sidecar' (id 11)" in out
    assert '[inboxes.7]\nmode = "copilot"' in out
    assert "by hand: Saved filters are per user in Chatwoot" in out
    assert "changed Chatwoot" in out


async def test_second_run_creates_nothing_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeChatwoot()
    env_file = tmp_path / "sidecar.env"
    assert await run(fake, env_file) == 0
    first_env = env_file.read_text()
    capsys.readouterr()
    fake.calls.clear()

    assert await run(fake, env_file) == 0

    assert fake.writes() == []
    assert env_file.read_text() == first_env
    out = capsys.readouterr().out
    assert "nothing to change: Chatwoot already has everything" in out
    assert f"# {env_file} is up to date" in out
    assert "created" not in out and "updated" not in out


async def test_settings_setup_wrote_let_the_sidecar_talk_to_chatwoot(tmp_path: Path) -> None:
    fake = FakeChatwoot()
    env_file = tmp_path / "sidecar.env"
    assert await run(fake, env_file) == 0
    settings = load_settings({**read_env(env_file), "SPEECH_BACKEND": "local"})
    [bot] = fake.bots.values()

    # Chatwoot signs deliveries with the bot's secret; the sidecar verifies them with CHATWOOT_BOT_SECRET.
    body, now = b'{"event":"message_created","id":1}', int(time.time())
    headers = {"x-chatwoot-signature": sign(body, bot["secret"], now), "x-chatwoot-timestamp": str(now)}
    verify_signature(body, headers, settings.secret("chatwoot_bot_secret") or "")
    # The bot token reads a conversation, as the worker does before replying.
    fake.conversations[57] = {"id": 57, "status": "pending", "inbox_id": 3}
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        client = ChatwootClient(
            http,
            settings.chatwoot_url,
            settings.chatwoot_account_id or 0,
            bot_token=settings.secret("chatwoot_bot_token"),
            api_token=None,
        )
        assert (await client.get_conversation(57))["status"] == "pending"
    assert fake.inboxes[settings.chatwoot_calls_inbox_id or 0]["name"] == "Phone calls"
    assert settings.sidecar_webhook_url == WEBHOOK


async def test_chatwoot_4_10_gets_a_url_token_instead_of_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeChatwoot(version=(4, 10))
    env_file = tmp_path / "sidecar.env"
    assert await run(fake, env_file) == 0
    env = read_env(env_file)
    [bot] = fake.bots.values()

    assert "CHATWOOT_BOT_SECRET" not in env
    assert bot["outgoing_url"] == f"{WEBHOOK}/{env['CHATWOOT_WEBHOOK_TOKEN']}"
    verify_url_token(bot["outgoing_url"].rsplit("/", 1)[1], env["CHATWOOT_WEBHOOK_TOKEN"])
    assert fake.writes()[:2] == ["POST /agent_bots", "PATCH /agent_bots/11"]
    assert "older than 4.13 and signs nothing" in capsys.readouterr().out

    fake.calls.clear()
    assert await run(fake, env_file) == 0
    assert fake.writes() == []
    assert read_env(env_file)["CHATWOOT_WEBHOOK_TOKEN"] == env["CHATWOOT_WEBHOOK_TOKEN"]


async def test_a_moved_sidecar_updates_the_bot_url_and_keeps_everything_else(tmp_path: Path) -> None:
    fake = FakeChatwoot()
    env_file = tmp_path / "sidecar.env"
    assert await run(fake, env_file) == 0
    [bot] = fake.bots.values()
    bot["outgoing_url"] = "http://old-host:8000/webhooks/chatwoot"
    fake.calls.clear()

    assert await run(fake, env_file) == 0

    assert fake.writes() == [f"PATCH /agent_bots/{bot['id']}"]
    assert bot["outgoing_url"] == WEBHOOK


async def test_a_wrong_admin_token_stops_setup_naming_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeChatwoot()
    settings = settings_for(fake, CHATWOOT_ADMIN_TOKEN="wrong")
    assert await run(fake, Path("/nonexistent/env"), settings=settings) == 1
    err = capsys.readouterr().err
    assert 'Chatwoot GET /agent_bots answered 401: {"error":"Invalid Access Token"}' in err
    assert "setup needs an administrator's access token" in err
    assert fake.writes() == []


async def test_an_unknown_inbox_is_refused_before_anything_is_connected(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeChatwoot()
    assert await run(fake, Path("/nonexistent/env"), "99") == 1
    assert "inbox 99 does not exist" in capsys.readouterr().err
    assert fake.writes() == ["POST /agent_bots"]


async def test_without_bot_inboxes_no_filter_is_saved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeChatwoot()
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        assert (
            await setup_command(
                settings_for(fake),
                token=None,
                webhook_url=WEBHOOK,
                panel_url=None,
                inboxes=[],
                env_file=tmp_path / "env",
                docker=False,
                http=http,
            )
            == 0
        )
    assert "POST /custom_filters" not in fake.writes() and fake.inbox_bot == {}
    assert "by hand: 'Bot conversations' filters the bot's inboxes: name them with --inbox ID=MODE" in (
        capsys.readouterr().out
    )


async def test_a_chatwoot_without_filter_and_dashboard_app_apis_gets_instructions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeChatwoot(missing=frozenset({"custom_filters", "dashboard_apps"}))
    env_file = tmp_path / "sidecar.env"
    assert await run(fake, env_file) == 0
    out = capsys.readouterr().out
    assert "by hand: This Chatwoot has no saved-filter API: make 'Bot conversations' under Conversations" in out
    assert (
        "by hand: This Chatwoot has no Dashboard Apps API: add one under Settings → Integrations → Dashboard "
        "Apps named 'Guest & bot', URL https://sidecar.acme.test/panel#token=<PANEL_TOKEN>."
    ) in out
    token = read_env(env_file)["PANEL_TOKEN"]
    assert len(token) >= 32

    assert await run(fake, env_file) == 0  # a re-run keeps the token it wrote, as nothing else holds it
    assert read_env(env_file)["PANEL_TOKEN"] == token


def test_attribute_definitions_cover_every_key_the_mirrors_write() -> None:
    guesty = contact_attributes(
        code="HM1",
        property_name="Alfama",
        check_in=date(2026, 1, 1),
        check_out=date(2026, 1, 3),
        status="confirmed",
        guests_count=2,
    )
    aircall = contact_step(CallState(aircall_call_id=1, started_at=datetime(2026, 1, 1, tzinfo=UTC)), "missed")
    defined = {a.key for a in ATTRIBUTES if a.model == "contact_attribute"}
    assert set(guesty) | set(aircall.custom_attributes) <= defined


def test_labels_include_each_configured_handoff_label_once() -> None:
    titles = [label.title for label in labels_we_use(("bot-handoff", "needs-human", "bot-handoff"))]
    assert titles[:2] == ["bot-handoff", "needs-human"]
    assert titles.count("bot-handoff") == 1


def test_docker_output_turns_secrets_into_docker_secrets() -> None:
    out = render_docker({"CHATWOOT_BOT_TOKEN": "t0k'en", "CHATWOOT_CALLS_INBOX_ID": "12"})
    assert out == (
        "printf %s 't0k'\"'\"'en' | docker secret create chatwoot_bot_token -\nexport CHATWOOT_CALLS_INBOX_ID=12\n"
    )


def test_env_file_merge_replaces_in_place_and_appends() -> None:
    merged = merge_env_file("# c\nA=1\nB=2\n", {"B": "3", "C": "x y"})
    assert merged == "# c\nA=1\nB=3\nC='x y'\n"
    assert read_env_file(merged) == {"A": "1", "B": "3", "C": "x y"}
