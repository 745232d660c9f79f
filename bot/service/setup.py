"""`sidecar chatwoot setup`: create or find, in Chatwoot, everything the sidecar relies on.

Idempotent by design: each object is looked up by its name (or key) first and created only when missing,
so a second run changes nothing and says so. What the sidecar then needs (tokens, ids, secrets) comes out
as an env file or `docker secret create` commands. Where Chatwoot versions differ (signing from 4.13,
private-network webhooks from 4.14, the bot token's reach from 4.15) the report says what to do by hand.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from bot.errors import ConfigurationError
from config.inboxes import MODES, Mode, load_inboxes
from config.settings import Settings
from integrations.aircall.templates import MISSED_LABEL, VOICEMAIL_LABEL
from integrations.chatwoot.admin import ChatwootAdmin, bot_token
from integrations.chatwoot.client import ChatwootAuthError, ChatwootError, ChatwootNotFound
from integrations.guesty.stays import STAGE_LABELS

Outcome = Literal["created", "updated", "found"]

BOT_NAME = "STR sidecar"
BOT_DESCRIPTION = "Answers guests from the property guides and hands over to people (chatwoot-str-sidecar)."
CALLS_INBOX = "Phone calls"
FILTER_NAME = "Bot conversations"
APP_TITLE = "Guest & bot"


class SetupError(Exception):
    """Setup cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class AttributeDef:
    key: str
    name: str
    display_type: str  # text | number | date | list ... (admin.DISPLAY_TYPES)
    model: str  # contact_attribute | conversation_attribute
    description: str
    values: tuple[str, ...] = ()


# The custom attributes the sidecar writes: Guesty's booking (integrations/guesty/transforms.py
# contact_attributes) and Aircall's last call (integrations/aircall/transforms.py contact_step), plus the
# stay stage and the guest's language. tests/ops/test_setup.py checks this list against those writers.
ATTRIBUTES: tuple[AttributeDef, ...] = (
    AttributeDef("reservation_code", "Booking code", "text", "contact_attribute", "Guesty confirmation code"),
    AttributeDef("property_name", "Property", "text", "contact_attribute", "The booked property"),
    AttributeDef("check_in", "Check-in", "date", "contact_attribute", "Check-in date at the property"),
    AttributeDef("check_out", "Check-out", "date", "contact_attribute", "Check-out date at the property"),
    AttributeDef(
        "reservation_status",
        "Booking status",
        "text",
        "contact_attribute",
        "Guesty status: inquiry, reserved, confirmed, canceled...",
    ),
    AttributeDef("guests_count", "Guests", "number", "contact_attribute", "Number of guests booked"),
    AttributeDef("stay_stage", "Stay stage", "list", "contact_attribute", "Where the guest's stay is", STAGE_LABELS),
    AttributeDef("last_call_at", "Last call", "date", "contact_attribute", "Time of the latest Aircall call"),
    AttributeDef(
        "last_call_outcome",
        "Last call outcome",
        "text",
        "contact_attribute",
        "answered, missed, voicemail, outbound_answered or outbound_unanswered",
    ),
    AttributeDef("language", "Language", "text", "conversation_attribute", "The guest's language in this conversation"),
)

LABEL_COLORS = {"handoff": "#E0483E", "stage": "#1F93FF", "call": "#F5A623"}


@dataclass(frozen=True)
class LabelDef:
    title: str
    description: str
    color: str


def labels_we_use(handoff_labels: tuple[str, ...]) -> tuple[LabelDef, ...]:
    """Hand-off labels (per inbox), stay stages (Guesty) and call follow-ups (Aircall), as the code names them."""
    found = [
        LabelDef(label, "The bot handed this conversation to people", LABEL_COLORS["handoff"])
        for label in dict.fromkeys(handoff_labels)
    ]
    found += [LabelDef(stage, f"The guest's stay: {stage}", LABEL_COLORS["stage"]) for stage in STAGE_LABELS]
    found.append(LabelDef(MISSED_LABEL, "A missed Aircall call to return", LABEL_COLORS["call"]))
    found.append(LabelDef(VOICEMAIL_LABEL, "An Aircall voicemail to listen to", LABEL_COLORS["call"]))
    return tuple(found)


def bot_filter_query(inbox_ids: list[int]) -> dict[str, Any]:
    """Pending conversations in the bot's inboxes: the ones the bot is handling (Chatwoot's filter payload)."""
    return {
        "payload": [
            {
                "attribute_key": "status",
                "attribute_model": "standard",
                "filter_operator": "equal_to",
                "values": ["pending"],
                "query_operator": "and",
            },
            {
                "attribute_key": "inbox_id",
                "attribute_model": "standard",
                "filter_operator": "equal_to",
                "values": inbox_ids,
                "query_operator": None,
            },
        ]
    }


@dataclass(frozen=True)
class SetupOptions:
    """What to set up; every name has a default that matches the README."""

    webhook_url: str  # where Chatwoot posts bot events: https://<sidecar>/webhooks/chatwoot
    panel_url: str  # what agents' browsers open: https://<sidecar>/panel
    inboxes: Mapping[int, Mode]  # Chatwoot inbox id -> the bot's mode there
    handoff_labels: tuple[str, ...] = ("bot-handoff",)
    panel_token: str | None = None  # keep this PANEL_TOKEN instead of the one in the Dashboard App's URL
    bot_name: str = BOT_NAME
    calls_inbox: str = CALLS_INBOX
    filter_name: str = FILTER_NAME
    app_title: str = APP_TITLE


@dataclass(frozen=True)
class Step:
    what: str
    outcome: Outcome
    detail: str = ""

    def line(self) -> str:
        return f"{self.outcome:8} {self.what}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class SetupReport:
    steps: list[Step] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # what the sidecar needs, by variable name
    by_hand: list[str] = field(default_factory=list)  # what Chatwoot's API could not do for us
    inboxes_toml: str = ""

    @property
    def changed(self) -> bool:
        return any(step.outcome != "found" for step in self.steps)

    def add(self, what: str, outcome: Outcome, detail: str = "") -> None:
        self.steps.append(Step(what, outcome, detail))

    def summary(self) -> str:
        lines = [step.line() for step in self.steps]
        lines.append("changed Chatwoot" if self.changed else "nothing to change: Chatwoot already has everything")
        return "\n".join(lines)


TokenFactory = Callable[[], str]


async def run_setup(
    admin: ChatwootAdmin,
    opts: SetupOptions,
    *,
    chatwoot_url: str,
    account_id: int,
    new_token: TokenFactory = lambda: secrets.token_urlsafe(24),
) -> SetupReport:
    """Bring Chatwoot's account in line with `opts`; returns what was done and what the sidecar needs."""
    report = SetupReport()
    report.env.update({"CHATWOOT_URL": chatwoot_url, "CHATWOOT_ACCOUNT_ID": str(account_id)})
    bot = await _agent_bot(admin, opts, report)
    await _connect_inboxes(admin, opts, int(bot["id"]), report)
    await _calls_inbox(admin, opts, report)
    await _attributes(admin, report)
    await _labels(admin, opts, report)
    try:
        await _bot_filter(admin, opts, report)
    except ChatwootNotFound:
        report.by_hand.append(
            f"This Chatwoot has no saved-filter API: make '{opts.filter_name}' under "
            "Conversations → Filter (Status = Pending, Inbox = the bot's inboxes) → Save filter."
        )
    try:
        await _dashboard_app(admin, opts, report, new_token)
    except ChatwootNotFound:
        token = opts.panel_token or new_token()
        report.env["PANEL_TOKEN"] = token
        report.by_hand.append(
            f"This Chatwoot has no Dashboard Apps API: add one under Settings → Integrations → "
            f"Dashboard Apps named '{opts.app_title}', URL {opts.panel_url}#token=<PANEL_TOKEN>."
        )
    report.inboxes_toml = inboxes_toml(opts.inboxes, opts.handoff_labels[0])
    _version_notes(opts, report)
    return report


async def _agent_bot(admin: ChatwootAdmin, opts: SetupOptions, report: SetupReport) -> dict[str, Any]:
    what = f"agent bot '{opts.bot_name}'"
    bot = next((b for b in await admin.agent_bots() if b.get("name") == opts.bot_name), None)
    if bot is None:
        bot = await admin.create_agent_bot(
            name=opts.bot_name, description=BOT_DESCRIPTION, outgoing_url=opts.webhook_url
        )
        report.add(what, "created", f"id {bot['id']}")
    current = str(bot.get("outgoing_url") or "")
    signed = bool(bot.get("secret"))
    # Chatwoot < 4.13 signs nothing: the URL then carries CHATWOOT_WEBHOOK_TOKEN, which a re-run reads back.
    url_token = _url_token(current, opts.webhook_url)
    wanted = opts.webhook_url if signed else f"{opts.webhook_url}/{url_token or secrets.token_urlsafe(24)}"
    if current != wanted:
        bot = {**bot, **await admin.update_agent_bot(int(bot["id"]), outgoing_url=wanted)}
        if not any(step.what == what for step in report.steps):
            report.add(what, "updated", f"outgoing URL was {_redact_url(current, url_token) or 'empty'}")
    elif not any(step.what == what for step in report.steps):
        report.add(what, "found", f"id {bot['id']}")
    token = bot_token(bot)
    if token:
        report.env["CHATWOOT_BOT_TOKEN"] = token
    else:
        report.by_hand.append(
            f"CHATWOOT_BOT_TOKEN: Chatwoot did not show the bot's access token; copy it from "
            f"Settings → Bots → {opts.bot_name}"
        )
    if signed:
        report.env["CHATWOOT_BOT_SECRET"] = str(bot["secret"])
    else:
        report.env["CHATWOOT_WEBHOOK_TOKEN"] = wanted.rsplit("/", 1)[1]
        report.by_hand.append(
            "This Chatwoot returns no bot secret (it is older than 4.13 and signs nothing): the "
            "bot's URL carries CHATWOOT_WEBHOOK_TOKEN instead. After upgrading to 4.13+, run "
            "setup again to switch to signed deliveries."
        )
    report.env["SIDECAR_WEBHOOK_URL"] = opts.webhook_url
    return bot


def _url_token(current: str, base: str) -> str | None:
    prefix = base.rstrip("/") + "/"
    tail = current[len(prefix) :] if current.startswith(prefix) else ""
    return tail if tail and "/" not in tail else None


def _redact_url(url: str, token: str | None) -> str:
    return url.replace(token, "<token>") if token else url


async def _connect_inboxes(admin: ChatwootAdmin, opts: SetupOptions, bot_id: int, report: SetupReport) -> None:
    names = {int(inbox["id"]): str(inbox.get("name", "")) for inbox in await admin.inboxes()}
    for inbox_id, mode in opts.inboxes.items():
        if inbox_id not in names:
            raise SetupError(
                f"inbox {inbox_id} does not exist in account; the ids are the numbers in "
                "/app/accounts/<account>/inbox/<id>"
            )
        what = f"bot in inbox {inbox_id} '{names[inbox_id]}' ({mode})"
        if mode == "off":
            continue  # an inbox the bot stays out of needs no connection
        current = await admin.inbox_agent_bot(inbox_id)
        if current is not None and int(current["id"]) == bot_id:
            report.add(what, "found")
            continue
        await admin.set_agent_bot(inbox_id, bot_id)
        report.add(
            what, "updated" if current else "created", f"replaced bot '{current.get('name')}'" if current else ""
        )


async def _calls_inbox(admin: ChatwootAdmin, opts: SetupOptions, report: SetupReport) -> None:
    what = f"API inbox '{opts.calls_inbox}'"
    inbox = next((i for i in await admin.inboxes() if i.get("name") == opts.calls_inbox), None)
    if inbox is None:
        inbox = await admin.create_api_inbox(opts.calls_inbox)
        report.add(what, "created", f"id {inbox['id']}")
    else:
        report.add(what, "found", f"id {inbox['id']}")
    report.env["CHATWOOT_CALLS_INBOX_ID"] = str(inbox["id"])


async def _attributes(admin: ChatwootAdmin, report: SetupReport) -> None:
    for model in ("contact_attribute", "conversation_attribute"):
        existing = {str(d.get("attribute_key")) for d in await admin.attribute_definitions(model)}
        for attr in (a for a in ATTRIBUTES if a.model == model):
            what = f"{model.split('_')[0]} attribute '{attr.key}'"
            if attr.key in existing:
                report.add(what, "found")
                continue
            await admin.create_attribute_definition(
                key=attr.key,
                name=attr.name,
                display_type=attr.display_type,
                model=model,
                description=attr.description,
                values=list(attr.values),
            )
            report.add(what, "created")


async def _labels(admin: ChatwootAdmin, opts: SetupOptions, report: SetupReport) -> None:
    existing = {str(label.get("title", "")).lower() for label in await admin.labels()}
    for label in labels_we_use(opts.handoff_labels):
        what = f"label '{label.title}'"
        if label.title.lower() in existing:
            report.add(what, "found")
            continue
        await admin.create_label(title=label.title, description=label.description, color=label.color)
        report.add(what, "created")


async def _bot_filter(admin: ChatwootAdmin, opts: SetupOptions, report: SetupReport) -> None:
    what = f"conversation filter '{opts.filter_name}'"
    bot_inboxes = sorted(i for i, mode in opts.inboxes.items() if mode != "off")
    if not bot_inboxes:
        report.by_hand.append(f"'{opts.filter_name}' filters the bot's inboxes: name them with --inbox ID=MODE")
        return
    if any(f.get("name") == opts.filter_name for f in await admin.custom_filters()):
        report.add(what, "found")
    else:
        await admin.create_custom_filter(name=opts.filter_name, query=bot_filter_query(bot_inboxes))
        report.add(what, "created")
    report.by_hand.append(
        f"Saved filters are per user in Chatwoot: '{opts.filter_name}' exists for the token's "
        f"owner only. Others make it under Conversations → Filter: Status = Pending and "
        f"Inbox = {', '.join(map(str, bot_inboxes))}, then 'Save filter'."
    )


async def _dashboard_app(
    admin: ChatwootAdmin, opts: SetupOptions, report: SetupReport, new_token: TokenFactory
) -> None:
    what = f"dashboard app '{opts.app_title}'"
    app = next((a for a in await admin.dashboard_apps() if a.get("title") == opts.app_title), None)
    current = _app_url(app) if app else ""
    token = opts.panel_token or _fragment_token(current, opts.panel_url) or new_token()
    url = f"{opts.panel_url}#token={token}"
    if app is None:
        app = await admin.create_dashboard_app(title=opts.app_title, url=url)
        report.add(what, "created", f"id {app.get('id')}")
    elif current != url:
        await admin.update_dashboard_app(int(app["id"]), title=opts.app_title, url=url)
        report.add(what, "updated", "panel URL or token changed")
    else:
        report.add(what, "found", f"id {app.get('id')}")
    report.env["PANEL_TOKEN"] = token


def _app_url(app: Mapping[str, Any]) -> str:
    content = app.get("content")
    frames = [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []
    return str(frames[0].get("url", "")) if frames else ""


def _fragment_token(url: str, panel_url: str) -> str | None:
    base, _, fragment = url.partition("#")
    token = fragment.removeprefix("token=") if fragment.startswith("token=") else ""
    return token if base == panel_url and token else None


def inboxes_toml(inboxes: Mapping[int, Mode], handoff_label: str) -> str:
    """The [inboxes.N] sections for INBOXES_CONFIG (config/inboxes.py) matching what setup connected."""
    lines = [
        "[defaults]",
        'mode = "off"            # inboxes not listed below: the bot stays out',
        f'handoff_label = "{handoff_label}"',
        "",
    ]
    for inbox_id, mode in sorted(inboxes.items()):
        lines += [f"[inboxes.{inbox_id}]", f'mode = "{mode}"', ""]
    return "\n".join(lines)


def _version_notes(opts: SetupOptions, report: SetupReport) -> None:
    host = urlsplit(opts.webhook_url).hostname or ""
    if _private_host(host):
        report.by_hand.append(
            f"Chatwoot 4.14+ refuses webhooks to private addresses such as {host}: run Chatwoot "
            "with SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true (web and Sidekiq)."
        )
    report.by_hand.append(
        "Chatwoot before 4.15 does not let the bot token read a conversation or its labels, "
        "which the sidecar needs for hand-off labels and its last check before replying: run "
        "`sidecar doctor` to see what this Chatwoot allows."
    )
    if "CHATWOOT_API_TOKEN" not in report.env:
        report.by_hand.append(
            "CHATWOOT_API_TOKEN: contacts and message history need a user token; use an "
            "agent's (Profile settings → Access token) who is a member of the bot's inboxes "
            "and of the Phone calls inbox."
        )


def _private_host(host: str) -> bool:
    if host in ("localhost",) or "." not in host:
        return True  # a Docker service name or localhost
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------- output

SECRETS = ("CHATWOOT_BOT_TOKEN", "CHATWOOT_BOT_SECRET", "CHATWOOT_WEBHOOK_TOKEN", "PANEL_TOKEN")


def render_env(env: Mapping[str, str]) -> str:
    """KEY=value lines for an env file (values quoted only when the shell would need it)."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items())


def render_docker(env: Mapping[str, str]) -> str:
    """`docker secret create` for the secrets (the stack reads NAME_FILE) and exports for the rest."""
    lines = []
    for key, value in env.items():
        if key in SECRETS:
            lines.append(f"printf %s {shlex.quote(value)} | docker secret create {key.lower()} -")
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def read_env_file(text: str) -> dict[str, str]:
    """KEY=value pairs of an env file (shell quoting undone), comments and blank lines skipped."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            parts = shlex.split(value) if value.strip() else [""]
            found[key.strip()] = parts[0] if parts else ""
    return found


def merge_env_file(existing: str, env: Mapping[str, str]) -> str:
    """An env file's text with `env`'s keys set (replaced in place, else appended), other lines kept."""
    out, seen = [], set()
    for line in existing.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else ""
        if key in env:
            out.append(f"{key}={shlex.quote(env[key])}")
            seen.add(key)
        else:
            out.append(line)
    out += [f"{key}={shlex.quote(value)}" for key, value in env.items() if key not in seen]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------- command


def parse_inbox(text: str) -> tuple[int, Mode | None]:
    """`7` or `7=copilot` from the command line."""
    inbox, _, mode = text.partition("=")
    if not inbox.strip().isdigit():
        raise SetupError(f"--inbox {text!r}: give the inbox id, optionally with its mode: 7 or 7=copilot")
    if mode and mode not in MODES:
        raise SetupError(f"--inbox {text!r}: the mode must be one of {', '.join(MODES)}")
    return int(inbox), mode or None  # type: ignore[return-value]


def options_from(
    settings: Settings, *, webhook_url: str | None, panel_url: str | None, inboxes: list[str]
) -> SetupOptions:
    """SetupOptions from the command line, completed by the settings (INBOXES_CONFIG modes and labels)."""
    webhook = (webhook_url or settings.sidecar_webhook_url).rstrip("/")
    if not webhook.startswith(("http://", "https://")):
        raise SetupError(
            "--webhook-url is required (or SIDECAR_WEBHOOK_URL): the sidecar's URL as Chatwoot "
            "reaches it, e.g. http://sidecar-web:8000/webhooks/chatwoot"
        )
    if panel_url is None:
        parts = urlsplit(webhook)
        panel_url = f"{parts.scheme}://{parts.netloc}/panel"
    table = load_inboxes(settings.inboxes_config, settings.default_inbox_mode)
    modes: dict[int, Mode] = {}
    for text in inboxes:
        inbox_id, mode = parse_inbox(text)
        modes[inbox_id] = mode or table.for_inbox(inbox_id).mode
    labels = (table.defaults.handoff_label, *(p.handoff_label for p in table.inboxes.values()))
    return SetupOptions(
        webhook_url=webhook,
        panel_url=panel_url.rstrip("/"),
        inboxes=modes,
        handoff_labels=tuple(dict.fromkeys(labels)),
        panel_token=settings.secret("panel_token"),
    )


async def setup_command(
    settings: Settings,
    *,
    token: str | None,
    webhook_url: str | None,
    panel_url: str | None,
    inboxes: list[str],
    env_file: Path | None,
    docker: bool,
    http: httpx.AsyncClient | None = None,
) -> int:
    """Run setup and print its report; 0 on success, 1 when Chatwoot refused, 2 for bad options."""
    try:
        opts = options_from(settings, webhook_url=webhook_url, panel_url=panel_url, inboxes=inboxes)
        if not settings.chatwoot_url or not settings.chatwoot_account_id:
            raise SetupError("set CHATWOOT_URL and CHATWOOT_ACCOUNT_ID first")
        if opts.panel_token is None and env_file is not None and env_file.exists():
            # keep the token an earlier run wrote (where no Dashboard App holds it, a re-run must not rotate it)
            written = read_env_file(env_file.read_text()).get("PANEL_TOKEN")
            opts = replace(opts, panel_token=written or None)
    except (SetupError, ConfigurationError) as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    async with contextlib.AsyncExitStack() as stack:
        client = http if http is not None else await stack.enter_async_context(httpx.AsyncClient())
        try:
            admin = ChatwootAdmin(
                client,
                settings.chatwoot_url,
                settings.chatwoot_account_id,
                token or settings.secret("chatwoot_admin_token"),
                token_name="--token / CHATWOOT_ADMIN_TOKEN",
            )
            report = await run_setup(
                admin, opts, chatwoot_url=settings.chatwoot_url, account_id=settings.chatwoot_account_id
            )
        except ChatwootAuthError as exc:
            print(
                f"sidecar: {exc}\nsetup needs an administrator's access token (Profile settings → Access "
                "token of an administrator of this account)",
                file=sys.stderr,
            )
            return 1
        except (ChatwootError, SetupError) as exc:
            print(f"sidecar: {exc}", file=sys.stderr)
            return 1
    print(report.summary())
    print("\n# INBOXES_CONFIG (config/inboxes.toml):\n" + report.inboxes_toml)
    if env_file is not None:
        old = env_file.read_text() if env_file.exists() else ""
        new = merge_env_file(old, report.env)
        if new != old:
            env_file.write_text(new)
            env_file.chmod(0o600)
        print(f"# wrote {', '.join(report.env)} to {env_file}" if new != old else f"# {env_file} is up to date")
    else:
        print("# settings for the sidecar:\n" + (render_docker(report.env) if docker else render_env(report.env)))
    for note in report.by_hand:
        print(f"by hand: {note}")
    return 0
