"""A Chatwoot stand-in for setup, doctor and the panel: stateful, and strict about what it accepts.

Every request is first checked against Chatwoot's own OpenAPI spec (integrations/chatwoot/tests/spec.py),
so setup cannot pass by sending something the real server would refuse. Dashboard Apps are missing from
the spec (SPEC-GAPS 16); their body is checked against the schema Chatwoot's model enforces instead.
Tokens behave as in Chatwoot: an unknown one gets 401 "Invalid Access Token", a bot token on a user-only
endpoint 401 "...not authorized for bots" (4.15 lets bots read a conversation; 4.10 does not), and
`version=(4, 10)` also drops the bot secret (signing came in 4.13).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema

from integrations.chatwoot.tests.spec import validate_request

ADMIN = "admin-token-0001"
AGENT = "agent-token-0002"
ACCOUNT = 1

# SPEC-GAPS 16: the body Chatwoot's DashboardApp model accepts (title, one or more http(s) frames).
GAP_16_DASHBOARD_APP: dict[str, Any] = {
    "type": "object",
    "required": ["dashboard_app"],
    "additionalProperties": False,
    "properties": {
        "dashboard_app": {
            "type": "object",
            "required": ["title", "content"],
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string", "minLength": 1},
                "content": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "url"],
                        "additionalProperties": False,
                        "properties": {"type": {"const": "frame"}, "url": {"type": "string", "pattern": "^https?://"}},
                    },
                },
            },
        }
    },
}
DASHBOARD_APPS = re.compile(rf"^/api/v1/accounts/{ACCOUNT}/dashboard_apps(?:/(\d+))?$")
DISPLAY_NAMES = ["text", "number", "currency", "percent", "link", "date", "list", "checkbox"]
MODEL_NAMES = ["conversation_attribute", "contact_attribute"]


@dataclass
class FakeChatwoot:
    """One account of a Chatwoot server, in memory."""

    base_url: str = "https://chat.acme.test"
    version: tuple[int, int] = (4, 15)
    inboxes: dict[int, dict[str, Any]] = field(
        default_factory=lambda: {
            3: {"id": 3, "name": "Website", "channel_type": "Channel::WebWidget"},
            7: {"id": 7, "name": "WhatsApp", "channel_type": "Channel::Whatsapp"},
        }
    )
    bots: dict[int, dict[str, Any]] = field(default_factory=dict)
    inbox_bot: dict[int, int] = field(default_factory=dict)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    apps: dict[int, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # "POST /agent_bots", account prefix removed
    missing: frozenset[str] = frozenset()  # endpoints this server lacks ("dashboard_apps"): 404, as Rails routes
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(11))

    @property
    def bot_tokens(self) -> dict[str, int]:
        return {bot["access_token"]: bot_id for bot_id, bot in self.bots.items()}

    def writes(self) -> list[str]:
        return [call for call in self.calls if not call.startswith("GET ")]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # ---------------------------------------------------------------------------------- dispatch

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        token = request.headers.get("api_access_token", "")
        is_bot = token in self.bot_tokens
        if DASHBOARD_APPS.match(path):
            body = request.read()
            if body:
                jsonschema.validate(json.loads(body), GAP_16_DASHBOARD_APP)
        else:
            validate_request(request, bot_token=token if is_bot else None)
        short = path.removeprefix(f"/api/v1/accounts/{ACCOUNT}").removeprefix("/api/v1")
        self.calls.append(f"{request.method} {short}")
        if token not in (ADMIN, AGENT) and not is_bot:
            return httpx.Response(401, json={"error": "Invalid Access Token"})
        if is_bot and not (short.startswith("/conversations/") and self.version >= (4, 15)):
            return httpx.Response(401, json={"error": "Access to this endpoint is not authorized for bots"})
        admin_only = not short.startswith(("/conversations/", "/profile"))
        if admin_only and token != ADMIN:
            return httpx.Response(401, json={"error": "You are not authorized to do this action"})
        if short.strip("/").split("/")[0] in self.missing:
            return httpx.Response(404, text="Not Found")
        body = json.loads(request.read() or b"null")
        if short == "/profile":
            name, role = ("Ana Admin", "administrator") if token == ADMIN else ("Aldo Agent", "agent")
            return httpx.Response(
                200, json={"id": 1, "name": name, "accounts": [{"id": ACCOUNT, "name": "Acme Stays", "role": role}]}
            )
        return self._route(request.method, short, body)

    def _route(self, method: str, path: str, body: Any) -> httpx.Response:
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["conversations", conv]:
                found = self.conversations.get(int(conv))
                return httpx.Response(200, json=found) if found else httpx.Response(404, json={"error": "not found"})
            case "GET", ["agent_bots"]:
                return httpx.Response(200, json=[self._bot_json(b) for b in self.bots.values()])
            case "POST", ["agent_bots"]:
                bot_id = next(self._ids)
                self.bots[bot_id] = {
                    "id": bot_id,
                    "name": body["name"],
                    "outgoing_url": body["outgoing_url"],
                    "access_token": f"bot-token-{bot_id}",
                    "secret": f"bot-secret-{bot_id}",
                }
                return httpx.Response(200, json=self._bot_json(self.bots[bot_id]))
            case "PATCH", ["agent_bots", bot_id]:
                self.bots[int(bot_id)].update(body)
                return httpx.Response(200, json=self._bot_json(self.bots[int(bot_id)]))
            case "GET", ["inboxes"]:
                return httpx.Response(200, json={"payload": list(self.inboxes.values())})
            case "POST", ["inboxes"]:
                inbox_id = next(self._ids)
                self.inboxes[inbox_id] = {"id": inbox_id, "name": body["name"], "channel_type": "Channel::Api"}
                return httpx.Response(200, json=self.inboxes[inbox_id])
            case "GET", ["inboxes", inbox_id, "agent_bot"]:
                bot_id = self.inbox_bot.get(int(inbox_id))
                return httpx.Response(200, json={"agent_bot": self._bot_json(self.bots[bot_id]) if bot_id else None})
            case "POST", ["inboxes", inbox_id, "set_agent_bot"]:
                self.inbox_bot[int(inbox_id)] = int(body["agent_bot"])
                return httpx.Response(200)  # SPEC-GAPS 13: 200, not the documented 204
            case "GET", ["custom_attribute_definitions"]:
                return httpx.Response(200, json=self.attributes)
            case "POST", ["custom_attribute_definitions"]:
                made = {
                    **body,
                    "id": next(self._ids),
                    "attribute_display_type": DISPLAY_NAMES[body["attribute_display_type"]],
                    "attribute_model": MODEL_NAMES[body["attribute_model"]],
                }
                self.attributes.append(made)
                return httpx.Response(200, json=made)
            case "GET", ["labels"]:
                return httpx.Response(200, json={"payload": self.labels})
            case "POST", ["labels"]:
                self.labels.append({**body, "id": next(self._ids)})
                return httpx.Response(200, json=self.labels[-1])
            case "GET", ["custom_filters"]:
                return httpx.Response(200, json=self.filters)
            case "POST", ["custom_filters"]:
                self.filters.append({**body, "id": next(self._ids)})
                return httpx.Response(200, json=self.filters[-1])
            case "GET", ["dashboard_apps"]:
                return httpx.Response(200, json=list(self.apps.values()))
            case "POST", ["dashboard_apps"]:
                app_id = next(self._ids)
                self.apps[app_id] = {"id": app_id, **body["dashboard_app"]}
                return httpx.Response(200, json=self.apps[app_id])
            case "PATCH", ["dashboard_apps", app_id]:
                self.apps[int(app_id)].update(body["dashboard_app"])
                return httpx.Response(200, json=self.apps[int(app_id)])
        return httpx.Response(404, json={"error": f"stand-in has no {method} {path}"})

    def _bot_json(self, bot: dict[str, Any]) -> dict[str, Any]:
        shown = {key: value for key, value in bot.items() if key != "secret" or self.version >= (4, 13)}
        return {**shown, "bot_type": "webhook", "bot_config": {}, "account_id": ACCOUNT, "system_bot": False}
