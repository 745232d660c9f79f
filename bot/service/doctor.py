"""`sidecar doctor`: is this installation able to work? One line per check, each with its fix.

Every check runs under its own timeout and at the same time as the others, so a dead service costs one
timeout, not the sum. Checks never change anything an operator would notice: the Chatwoot probes read,
Azure synthesizes one word, and Guesty is asked with the token the workers already cached (a new one is
requested only when none is cached, through the same budgeted store, so the workers reuse it).
The remote checks live in doctor_remote.py, the mechanism in checkup.py; this module has the local checks
and the command.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import psycopg
import redis

from bot.core import db
from bot.errors import ConfigurationError
from bot.knowledge import Embedder
from bot.service import doctor_remote as remote
from bot.service.checkup import Check, CheckFn, Probe, ok, problem, run_checks
from config.inboxes import load_inboxes
from config.settings import ConfigError, load_settings

# ------------------------------------------------------------------------------------ local checks


async def check_configuration(probe: Probe) -> Check:
    """Settings were valid to get here; what they leave out decides what the sidecar can do."""
    s = probe.settings
    problems: list[str] = []
    try:
        load_inboxes(s.inboxes_config, s.default_inbox_mode)
    except ConfigurationError as exc:
        problems.append(str(exc))
    if not (s.chatwoot_url and s.chatwoot_account_id and s.secret("chatwoot_bot_token")):
        problems.append("CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_BOT_TOKEN are needed to answer guests")
    if not (s.secret("chatwoot_bot_secret") or s.secret("chatwoot_webhook_token")):
        problems.append(
            "CHATWOOT_BOT_SECRET (Chatwoot 4.13+) or CHATWOOT_WEBHOOK_TOKEN is needed, or every "
            "Chatwoot delivery is refused"
        )
    if s.secret("aircall_webhook_token") and not s.chatwoot_calls_inbox_id:
        problems.append("CHATWOOT_CALLS_INBOX_ID is needed for Aircall call notes")
    if problems:
        return problem("configuration", "; ".join(problems), "set them (`sidecar chatwoot setup` prints most)")
    return ok("configuration", "settings valid" + (f", inboxes from {s.inboxes_config}" if s.inboxes_config else ""))


async def check_postgres(probe: Probe) -> Check:
    def connect() -> tuple[int, int]:
        with psycopg.connect(probe.settings.database_dsn, connect_timeout=max(1, int(probe.timeout))) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        bundled = {name for name, _ in db.migration_files()}
        return len(bundled - names), len(bundled)

    try:
        pending, total = await asyncio.to_thread(connect)
    except psycopg.errors.UndefinedTable:
        return problem("postgres", "connected, but no migrations applied", "run `sidecar db upgrade`")
    except psycopg.Error as exc:
        return problem(
            "postgres",
            f"cannot connect ({type(exc).__name__}: {_first_line(exc)})",
            "start PostgreSQL or fix DATABASE_URL, then `sidecar db upgrade`",
        )
    if pending:
        return problem("postgres", f"{pending} of {total} migrations not applied", "run `sidecar db upgrade`")
    return ok("postgres", f"connected, {total} migrations applied")


async def check_redis(probe: Probe) -> Check:
    url = probe.settings.redis_url

    def ping() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=probe.timeout, socket_timeout=probe.timeout)
        try:
            client.ping()
        finally:
            client.close()

    try:
        await asyncio.to_thread(ping)
    except redis.RedisError as exc:
        return problem(
            "redis",
            f"cannot reach {_redact(url)} ({type(exc).__name__})",
            "start Redis (scripts/services.sh) or fix REDIS_URL",
        )
    return ok("redis", f"{_redact(url)} answers")


async def check_qdrant(probe: Probe) -> Check:
    s = probe.settings
    if s.qdrant_url:
        headers = {"api-key": key} if (key := s.secret("qdrant_api_key")) else {}
        try:
            response = await probe.http.get(f"{s.qdrant_url}/readyz", headers=headers, timeout=probe.timeout)
        except httpx.HTTPError as exc:
            return problem(
                "qdrant",
                f"cannot reach {s.qdrant_url} ({type(exc).__name__})",
                "start the Qdrant server or fix QDRANT_URL",
            )
        if response.status_code in (401, 403):
            return problem("qdrant", f"{s.qdrant_url} refused the key ({response.status_code})", "fix QDRANT_API_KEY")
        if response.status_code != 200:
            return problem(
                "qdrant", f"{s.qdrant_url}/readyz answered {response.status_code}", "see the Qdrant server's log"
            )
        return ok("qdrant", f"server {s.qdrant_url} ready")
    folder = s.qdrant_path
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not os.access(existing, os.W_OK):
        return problem(
            "qdrant",
            f"embedded store {folder}: {existing} is not writable",
            "make QDRANT_PATH writable by this user, or set QDRANT_URL to a Qdrant server",
        )
    return ok("qdrant", f"embedded store at {folder} ({'present' if folder.exists() else 'created on first use'})")


async def check_embeddings(probe: Probe) -> Check:
    def load() -> int:
        return len(Embedder.from_settings(probe.settings).embed_query("Where do I leave the keys?").dense)

    started = time.perf_counter()
    try:
        dim = await asyncio.to_thread(load)
    except (ConfigurationError, OSError, ValueError) as exc:
        return problem(
            "embedding model",
            str(exc)[:300],
            "fix EMBEDDING_MODEL_PATH / EMBEDDING_DIM, or unset them for the packaged model",
        )
    return ok(
        "embedding model",
        f"{probe.settings.embedding_model_name} loads, {dim}-d vectors ({time.perf_counter() - started:.1f} s)",
    )


async def check_ffmpeg(probe: Probe) -> Check:
    path = shutil.which("ffmpeg")
    if path is None:
        return problem("ffmpeg", "not found on PATH", "install it: apt-get install ffmpeg (or `make setup`)")
    result = await asyncio.to_thread(
        subprocess.run,
        [path, "-hide_banner", "-version"],
        capture_output=True,
        text=True,
        timeout=probe.timeout,
        check=False,
    )
    version = " ".join(result.stdout.split()[:3]) or "version unknown"  # "ffmpeg version 5.1.9-0+deb12u1"
    return (
        ok("ffmpeg", version)
        if result.returncode == 0
        else problem("ffmpeg", f"{path} fails to run", "reinstall ffmpeg")
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _redact(url: str) -> str:
    """A URL without its password, for output."""
    head, sep, tail = url.partition("@")
    return (head.split("//")[0] + "//***@" + tail) if sep else url


# ------------------------------------------------------------------------------------ the command


def all_checks() -> list[tuple[str, CheckFn]]:
    return [
        ("configuration", check_configuration),
        ("postgres", check_postgres),
        ("redis", check_redis),
        ("qdrant", check_qdrant),
        ("embedding model", check_embeddings),
        *remote.CHECKS,
        ("ffmpeg", check_ffmpeg),
    ]


def render(checks: list[Check], as_json: bool) -> str:
    failed = [c for c in checks if c.status == "problem"]
    if as_json:
        return json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2)
    summary = f"{len(failed)} problem(s)" if failed else "everything checked is fine"
    return "\n".join([*(c.line() for c in checks), summary])


async def doctor_command(
    environ: dict[str, str] | None = None,
    *,
    as_json: bool = False,
    timeout: float = 8.0,
    http: httpx.AsyncClient | None = None,
    checks: list[tuple[str, CheckFn]] | None = None,
) -> int:
    """Print the checks; 0 when no check found a problem, else 1."""
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        found = [problem("configuration", " ".join(str(exc).split()), "fix the variables named")]
        print(render(found, as_json))
        return 1
    client = http if http is not None else httpx.AsyncClient(follow_redirects=False)
    try:
        found = await run_checks(Probe(settings, client, timeout), checks if checks is not None else all_checks())
    finally:
        if http is None:
            await client.aclose()
    print(render(found, as_json))
    sys.stdout.flush()
    return 1 if any(c.status == "problem" for c in found) else 0
