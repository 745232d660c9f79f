"""The doctor's checks of the services around the sidecar: Chatwoot, Groq, Azure Speech, Aircall, Guesty.

Each asks the cheapest question that proves the credential: Chatwoot's profile (user token), a read of
conversation 0 (the bot token: 404 means accepted, Chatwoot's 401 text tells a wrong token from an old
Chatwoot), the bot as an administrator sees it (its URL and secret against ours), Groq's model list, one
synthesized word from Azure, Aircall's ping, and a Guesty read with the shared, budgeted token.
"""

from __future__ import annotations

from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from bot.answer.groq_llm import sdk_base_url
from bot.service.checkup import Check, CheckFn, Probe, ok, problem, skipped
from bot.service.setup import BOT_NAME
from integrations.chatwoot.admin import BOT_REFUSED, INVALID_TOKEN, ChatwootAdmin, bot_token
from integrations.chatwoot.client import ChatwootAuthError, ChatwootNotFound
from integrations.guesty.client import (
    GuestyAuthError,
    GuestyBadRequest,
    GuestyClient,
    GuestyError,
    GuestyNotFound,
    TokenStore,
)
from speech.azure import AzureSpeech
from speech.errors import SpeechAuthError, SpeechError

FIX_BOT_TOKEN = (
    "copy the bot's access token from Chatwoot (Settings → Bots) into CHATWOOT_BOT_TOKEN, "
    "or run `sidecar chatwoot setup`"
)
FIX_USER_TOKEN = "copy a user's access token (Chatwoot → Profile settings → Access token) into CHATWOOT_API_TOKEN"
PROBE_LISTING = "000000000000000000000000"  # an id no listing has: a 404 proves the token was accepted


def _admin(probe: Probe, token: str | None, token_name: str) -> ChatwootAdmin:
    s = probe.settings
    return ChatwootAdmin(
        probe.http, s.chatwoot_url, s.chatwoot_account_id, token, token_name=token_name, timeout=probe.timeout
    )


def _chatwoot_missing(probe: Probe) -> str | None:
    s = probe.settings
    return None if s.chatwoot_url and s.chatwoot_account_id else "CHATWOOT_URL or CHATWOOT_ACCOUNT_ID not set"


async def check_user_token(probe: Probe) -> Check:
    name = "chatwoot user token"
    s = probe.settings
    if missing := _chatwoot_missing(probe):
        return skipped(name, missing)
    if not s.secret("chatwoot_api_token"):
        if s.secret("aircall_webhook_token") or s.secret("guesty_webhook_secret"):
            return problem(name, "CHATWOOT_API_TOKEN not set: Aircall and Guesty contacts need it", FIX_USER_TOKEN)
        return skipped(name, "CHATWOOT_API_TOKEN not set: no contacts or message history from Chatwoot")
    try:
        profile = await _admin(probe, s.secret("chatwoot_api_token"), "CHATWOOT_API_TOKEN").profile()
    except ChatwootAuthError as exc:
        if BOT_REFUSED in str(exc):
            return problem(
                name, "CHATWOOT_API_TOKEN is a bot's token; contacts and history need a user's", FIX_USER_TOKEN
            )
        return problem(name, f"CHATWOOT_API_TOKEN refused: {exc}", FIX_USER_TOKEN)
    accounts = {a.get("id"): a for a in profile.get("accounts", []) if isinstance(a, dict)}
    account = accounts.get(s.chatwoot_account_id)
    who = profile.get("name") or profile.get("email") or f"user {profile.get('id')}"
    if account is None:
        return problem(
            name,
            f"{who} is not a member of account {s.chatwoot_account_id}",
            "use a token of a user in this account, or fix CHATWOOT_ACCOUNT_ID",
        )
    role = account.get("role", "agent")
    reach = (
        "reads every inbox"
        if role == "administrator"
        else "reads only the inboxes it is a member of: add it to the bot's and the Phone calls inbox"
    )
    return ok(name, f"{who}, {role} of account {s.chatwoot_account_id}: contacts and history allowed; {reach}")


async def check_bot_token(probe: Probe) -> Check:
    name = "chatwoot bot token"
    if missing := _chatwoot_missing(probe):
        return skipped(name, missing)
    token = probe.settings.secret("chatwoot_bot_token")
    if not token:
        return problem(name, "CHATWOOT_BOT_TOKEN not set: the bot cannot reply", FIX_BOT_TOKEN)
    try:
        await _admin(probe, token, "CHATWOOT_BOT_TOKEN").conversation(0)
    except ChatwootNotFound:
        return ok(name, "accepted; may reply, hand off, and read conversations and labels (Chatwoot 4.15+)")
    except ChatwootAuthError as exc:
        if INVALID_TOKEN in str(exc):
            return problem(name, "CHATWOOT_BOT_TOKEN refused by Chatwoot: no such token", FIX_BOT_TOKEN)
        if BOT_REFUSED in str(exc):
            return problem(
                name,
                "accepted, but this Chatwoot (older than 4.15) does not let a bot read a "
                "conversation or its labels: hand-off labels and the check before replying fail",
                "upgrade Chatwoot to 4.15 or later",
            )
        return problem(
            name,
            f"refused for account {probe.settings.chatwoot_account_id}: {exc}",
            "connect the bot to an inbox of this account (`sidecar chatwoot setup --inbox ID`)",
        )
    return ok(name, "accepted")


async def check_bot_settings(probe: Probe) -> Check:
    """The bot's outgoing URL and secret as Chatwoot has them, against SIDECAR_WEBHOOK_URL and our secret."""
    name = "chatwoot bot settings"
    s = probe.settings
    if missing := _chatwoot_missing(probe):
        return skipped(name, missing)
    admin_token = s.secret("chatwoot_admin_token")
    if not admin_token:
        return skipped(name, "CHATWOOT_ADMIN_TOKEN not set: cannot compare the bot's URL and secret")
    try:
        bots = await _admin(probe, admin_token, "CHATWOOT_ADMIN_TOKEN").agent_bots()
    except ChatwootAuthError as exc:
        return problem(name, f"CHATWOOT_ADMIN_TOKEN refused: {exc}", "use an administrator's access token")
    ours = s.secret("chatwoot_bot_token")
    bot = next((b for b in bots if ours and bot_token(b) == ours), None)
    bot = bot or next((b for b in bots if b.get("name") == BOT_NAME), None)
    if bot is None:
        return problem(
            name,
            f"no agent bot has CHATWOOT_BOT_TOKEN (of {len(bots)} bots)",
            "run `sidecar chatwoot setup`, or copy the right bot's token",
        )
    found = _compare_bot(
        bot, s.sidecar_webhook_url, s.secret("chatwoot_webhook_token"), s.secret("chatwoot_bot_secret")
    )
    if bot_token(bot) not in (None, ours):  # found by name, and Chatwoot shows a token that is not ours
        found.insert(0, "CHATWOOT_BOT_TOKEN is not this bot's access token")
    if found:
        return problem(
            name,
            f"bot '{bot.get('name')}': " + "; ".join(found),
            "run `sidecar chatwoot setup` (or fix the bot under Settings → Bots and our settings)",
        )
    return ok(
        name,
        f"bot '{bot.get('name')}' posts to our URL"
        + (" and signs with our secret" if bot.get("secret") else " with our URL token (unsigned)"),
    )


def _compare_bot(bot: dict[str, Any], webhook_url: str, url_token: str | None, secret: str | None) -> list[str]:
    """What differs between the bot in Chatwoot and our settings (never printing a secret)."""
    found = []
    url = str(bot.get("outgoing_url") or "")
    expected = webhook_url.rstrip("/") if webhook_url else ""
    if expected and url_token and not bot.get("secret"):
        expected = f"{expected}/{url_token}"
    shown = url.replace(url_token, "<token>") if url_token else url
    if expected and url != expected:
        found.append(f"posts to {shown or 'nowhere'}, not SIDECAR_WEBHOOK_URL")
    elif not expected and "/webhooks/chatwoot" not in url:
        found.append(f"posts to {shown or 'nowhere'}, not a sidecar's /webhooks/chatwoot")
    theirs = bot.get("secret")
    if theirs and not secret:
        found.append("Chatwoot signs deliveries but CHATWOOT_BOT_SECRET is not set")
    elif theirs and secret != theirs:
        found.append("CHATWOOT_BOT_SECRET differs from the bot's secret in Chatwoot: every delivery gets 401")
    elif not theirs and secret and "secret" not in bot:
        found.append(
            "this Chatwoot (older than 4.13) signs nothing, yet CHATWOOT_BOT_SECRET is set: every "
            "delivery gets 401; unset it and use CHATWOOT_WEBHOOK_TOKEN"
        )
    return found


async def check_groq(probe: Probe) -> Check:
    name = "groq"
    s = probe.settings
    key = s.secret("groq_api_key")
    if not key:
        return skipped(name, "GROQ_API_KEY not set: answers are offline, quoted from the guides")
    root = f"{sdk_base_url(s.groq_base_url)}/openai/v1/models"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        response = await probe.http.get(root, headers=headers, timeout=probe.timeout)
    except httpx.HTTPError as exc:
        return problem(name, f"cannot reach {s.groq_base_url} ({type(exc).__name__})", "check GROQ_BASE_URL")
    if response.status_code in (401, 403):
        return problem(
            name,
            f"GROQ_API_KEY refused ({response.status_code})",
            "create a key at https://console.groq.com/keys and set GROQ_API_KEY",
        )
    if response.status_code != 200:
        return problem(name, f"GET /openai/v1/models answered {response.status_code}", "try again later")
    models = {m.get("id"): m for m in response.json().get("data", []) if isinstance(m, dict)}
    model = models.get(s.groq_model)
    current = ", ".join(sorted(str(m) for m, info in models.items() if info.get("active", True))[:6])
    fix = f"set GROQ_MODEL to a current model, e.g. openai/gpt-oss-120b (this key may use: {current})"
    if model is None:
        why = await _missing_model_reason(probe, root, headers, s.groq_model)
        return problem(name, f"GROQ_MODEL {s.groq_model} {why}", fix)
    if model.get("active") is False:
        return problem(name, f"GROQ_MODEL {s.groq_model} is decommissioned", fix)
    return ok(name, f"key accepted; {s.groq_model} available")


async def _missing_model_reason(probe: Probe, root: str, headers: dict[str, str], model: str) -> str:
    """Groq leaves retired models out of the list; asking for one by id says whether it was decommissioned."""
    try:
        response = await probe.http.get(f"{root}/{model}", headers=headers, timeout=probe.timeout)
        error = response.json().get("error", {}) if response.status_code >= 400 else {}
    except (httpx.HTTPError, ValueError, AttributeError):
        error = {}
    text = f"{error.get('code', '')} {error.get('message', '')}" if isinstance(error, dict) else ""
    return "is decommissioned" if "decommission" in text else "does not exist for this key"


async def check_azure(probe: Probe) -> Check:
    name = "azure speech"
    s = probe.settings
    if s.speech_backend != "azure":
        return skipped(name, "SPEECH_BACKEND=local: offline Whisper and espeak-ng")
    speech = AzureSpeech(
        probe.http,
        key=s.secret("azure_speech_key") or "",
        region=s.azure_speech_region,
        endpoint=s.azure_speech_endpoint,
        max_attempts=1,
        timeout_s=probe.timeout,
    )
    try:
        audio = await speech.synthesize("OK", locale="en-US", fmt="mp3")
    except SpeechAuthError:
        return problem(
            name,
            "the key was refused",
            "check AZURE_SPEECH_KEY and that AZURE_SPEECH_REGION (or AZURE_SPEECH_ENDPOINT) is the resource's",
        )
    except SpeechError as exc:
        return problem(name, str(exc)[:200], "check AZURE_SPEECH_REGION / AZURE_SPEECH_ENDPOINT")
    return ok(name, f"key and region accepted: synthesized {len(audio)} bytes")


async def check_aircall(probe: Probe) -> Check:
    name = "aircall"
    s = probe.settings
    api_id, api_token = s.secret("aircall_api_id"), s.secret("aircall_api_token")
    if not (api_id and api_token):
        note = (
            "; voicemail transcripts need AIRCALL_API_ID and AIRCALL_API_TOKEN"
            if s.secret("aircall_webhook_token")
            else ""
        )
        return skipped(name, "API credentials not set" + note)
    try:
        response = await probe.http.get(
            f"{s.aircall_api_url}/v1/ping", auth=httpx.BasicAuth(api_id, api_token), timeout=probe.timeout
        )
    except httpx.HTTPError as exc:
        return problem(name, f"cannot reach {s.aircall_api_url} ({type(exc).__name__})", "check AIRCALL_API_URL")
    if response.status_code in (401, 403):
        return problem(
            name,
            f"credentials refused ({response.status_code})",
            "check AIRCALL_API_ID and AIRCALL_API_TOKEN (Aircall Dashboard → Integrations & API → API keys)",
        )
    if response.status_code != 200:
        return problem(name, f"GET /v1/ping answered {response.status_code}", "try again later")
    return ok(name, "API credentials accepted")


async def check_guesty(probe: Probe) -> Check:
    name = "guesty"
    s = probe.settings
    if not (s.secret("guesty_client_id") and s.secret("guesty_client_secret")):
        return skipped(name, "GUESTY_CLIENT_ID / GUESTY_CLIENT_SECRET not set: bookings come from webhooks only")
    pool = AsyncConnectionPool(s.database_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True})
    try:
        await pool.open(wait=True, timeout=probe.timeout)
    except Exception:
        return problem(
            name,
            "cannot check: the token cache lives in Postgres, which is unreachable",
            "fix the postgres check first",
        )
    try:
        client = GuestyClient(
            probe.http,
            s.guesty_api_url,
            s.secret("guesty_client_id"),
            s.secret("guesty_client_secret"),
            TokenStore(pool),
            max_attempts=1,
        )
        await client.get_listing(PROBE_LISTING)
    except (GuestyNotFound, GuestyBadRequest):
        pass  # the token was accepted; the made-up listing simply does not exist
    except GuestyAuthError:
        return problem(
            name,
            "Guesty refused the credentials",
            "check GUESTY_CLIENT_ID and GUESTY_CLIENT_SECRET (Guesty → Integrations → Developer tools)",
        )
    except GuestyError as exc:
        return problem(name, str(exc)[:300], "see the message")
    finally:
        await pool.close()
    return ok(name, "credentials accepted (with the shared token; a new one only when none was cached)")


CHECKS: list[tuple[str, CheckFn]] = [
    ("chatwoot user token", check_user_token),
    ("chatwoot bot token", check_bot_token),
    ("chatwoot bot settings", check_bot_settings),
    ("groq", check_groq),
    ("azure speech", check_azure),
    ("aircall", check_aircall),
    ("guesty", check_guesty),
]
