"""Chatwoot's account settings API, for `sidecar chatwoot setup` and `sidecar doctor`.

Separate from client.py on purpose: the worker's client retries with backoff and speaks with the bot
token, while setup and doctor are run by a person, speak with an administrator's user token (agent bots,
inboxes, attribute definitions, labels, filters and Dashboard Apps are administrators' endpoints), and
want one attempt within a timeout and a message naming the token to fix. Failures use client.py's error
tree, so callers catch the same ChatwootError family. Facts: /work/shared/reference/chatwoot.md §5, and
SPEC-GAPS.md 13, 14 and 16 for the endpoints the spec gets wrong or leaves out.
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.chatwoot.client import (
    ERROR_BODY_CHARS,
    ChatwootAuthError,
    ChatwootBadRequest,
    ChatwootConfigError,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRetryable,
)

# attribute_model and attribute_display_type are integers in requests and names in answers (SPEC-GAPS 15).
ATTRIBUTE_MODELS = {"conversation_attribute": 0, "contact_attribute": 1}
DISPLAY_TYPES = {"text": 0, "number": 1, "currency": 2, "percent": 3, "link": 4, "date": 5, "list": 6, "checkbox": 7}
BOT_REFUSED = "not authorized for bots"  # Chatwoot's 401 text when a valid bot token calls a user-only endpoint
INVALID_TOKEN = "Invalid Access Token"  # its 401 text when no token matches


class ChatwootAdmin:
    """One account's settings, through one token; every call is a single attempt."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        account_id: int | None,
        token: str | None,
        *,
        token_name: str = "CHATWOOT_ADMIN_TOKEN",
        timeout: float = 15.0,
    ) -> None:
        if not base_url:
            raise ChatwootConfigError("CHATWOOT_URL is not set: set it to your Chatwoot's root URL")
        if not account_id:
            raise ChatwootConfigError("CHATWOOT_ACCOUNT_ID is not set: the number in /app/accounts/<id>/...")
        if not token:
            raise ChatwootConfigError(f"{token_name} is not set")
        self._http = http
        self._api = f"{base_url.rstrip('/')}/api/v1"
        self._account = f"/accounts/{account_id}"
        self._token = token
        self._token_name = token_name
        self._timeout = timeout

    # ------------------------------------------------------------------ who am I

    async def profile(self) -> dict[str, Any]:
        """The token's user, with `accounts: [{id, role}]` (a bot token gets 401)."""
        return _dict(await self._request("GET", "/profile", account=False))

    async def conversation(self, conversation_id: int) -> dict[str, Any]:
        """One conversation: doctor's harmless probe of a bot token (4.15+ lets bots read conversations)."""
        return _dict(await self._request("GET", f"/conversations/{conversation_id}"))

    # ------------------------------------------------------------------ agent bots

    async def agent_bots(self) -> list[dict[str, Any]]:
        return _items(await self._request("GET", "/agent_bots"))

    async def create_agent_bot(self, *, name: str, description: str, outgoing_url: str) -> dict[str, Any]:
        body = {"name": name, "description": description, "outgoing_url": outgoing_url, "bot_type": 0}
        return _dict(await self._request("POST", "/agent_bots", json=body))

    async def update_agent_bot(self, bot_id: int, *, outgoing_url: str) -> dict[str, Any]:
        return _dict(await self._request("PATCH", f"/agent_bots/{bot_id}", json={"outgoing_url": outgoing_url}))

    # ------------------------------------------------------------------ inboxes

    async def inboxes(self) -> list[dict[str, Any]]:
        return _items(await self._request("GET", "/inboxes"))

    async def create_api_inbox(self, name: str) -> dict[str, Any]:
        """An API-channel inbox without a webhook (the sidecar writes into it; nobody types there)."""
        body = {"name": name, "channel": {"type": "api"}}
        return _dict(await self._request("POST", "/inboxes", json=body))

    async def inbox_agent_bot(self, inbox_id: int) -> dict[str, Any] | None:
        """The bot connected to an inbox, or None (Chatwoot answers {"agent_bot": null} or an empty body)."""
        answer = await self._request("GET", f"/inboxes/{inbox_id}/agent_bot")
        bot = answer.get("agent_bot", answer) if isinstance(answer, dict) else None
        return bot if isinstance(bot, dict) and bot.get("id") is not None else None

    async def set_agent_bot(self, inbox_id: int, bot_id: int) -> None:
        await self._request("POST", f"/inboxes/{inbox_id}/set_agent_bot", json={"agent_bot": bot_id})

    # ------------------------------------------------------------------ attributes, labels, filters, apps

    async def attribute_definitions(self, model: str) -> list[dict[str, Any]]:
        """Definitions of one model ("contact_attribute" or "conversation_attribute")."""
        params = {"attribute_model": str(ATTRIBUTE_MODELS[model])}
        return _items(await self._request("GET", "/custom_attribute_definitions", params=params))

    async def create_attribute_definition(
        self, *, key: str, name: str, display_type: str, model: str, description: str, values: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "attribute_key": key,
            "attribute_display_name": name,
            "attribute_display_type": DISPLAY_TYPES[display_type],
            "attribute_model": ATTRIBUTE_MODELS[model],
            "attribute_description": description,
        }
        if values:
            body["attribute_values"] = values
        return _dict(await self._request("POST", "/custom_attribute_definitions", json=body))

    async def labels(self) -> list[dict[str, Any]]:
        return _items(await self._request("GET", "/labels"))

    async def create_label(self, *, title: str, description: str, color: str) -> dict[str, Any]:
        body = {"title": title, "description": description, "color": color, "show_on_sidebar": True}
        return _dict(await self._request("POST", "/labels", json=body))

    async def custom_filters(self) -> list[dict[str, Any]]:
        """The token owner's saved conversation filters (Chatwoot keeps them per user)."""
        return _items(await self._request("GET", "/custom_filters", params={"filter_type": "conversation"}))

    async def create_custom_filter(self, *, name: str, query: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "type": "conversation", "query": query}
        return _dict(await self._request("POST", "/custom_filters", json=body))

    async def dashboard_apps(self) -> list[dict[str, Any]]:
        return _items(await self._request("GET", "/dashboard_apps"))

    async def create_dashboard_app(self, *, title: str, url: str) -> dict[str, Any]:
        body = {"dashboard_app": {"title": title, "content": [{"type": "frame", "url": url}]}}
        return _dict(await self._request("POST", "/dashboard_apps", json=body))

    async def update_dashboard_app(self, app_id: int, *, title: str, url: str) -> dict[str, Any]:
        body = {"dashboard_app": {"title": title, "content": [{"type": "frame", "url": url}]}}
        return _dict(await self._request("PATCH", f"/dashboard_apps/{app_id}", json=body))

    # ------------------------------------------------------------------ plumbing

    async def _request(self, method: str, path: str, *, account: bool = True, **kwargs: Any) -> Any:
        url = self._api + (self._account if account else "") + path
        what = f"Chatwoot {method} {path}"
        headers = {"api_access_token": self._token, "Accept": "application/json"}
        try:
            response = await self._http.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise ChatwootRetryable(
                f"{what}: no answer within {self._timeout:g} s; is CHATWOOT_URL right and Chatwoot up?"
            ) from exc
        except httpx.TransportError as exc:
            raise ChatwootRetryable(
                f"{what}: could not connect ({type(exc).__name__}); check CHATWOOT_URL", not_processed=True
            ) from exc
        status = response.status_code
        if 200 <= status < 300:
            if not response.content.strip():
                return None
            try:
                return response.json()
            except ValueError:
                raise ChatwootError(
                    f"{what} answered {status} with a body that is not JSON; does CHATWOOT_URL "
                    "point at Chatwoot's root?",
                    status,
                ) from None
        detail = response.text[:ERROR_BODY_CHARS].strip().replace(self._token, "***")
        message = f"{what} answered {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            raise ChatwootAuthError(f"{message} (sent {self._token_name})", status)
        if status == 404:
            raise ChatwootNotFound(message, status)
        if status == 429 or status >= 500:
            raise ChatwootRetryable(message, status)
        if 400 <= status < 500:
            raise ChatwootBadRequest(message, status)
        raise ChatwootError(f"{message} (a redirect: CHATWOOT_URL is not Chatwoot's root URL)", status)


def bot_token(bot: dict[str, Any]) -> str | None:
    """The access token in an agent_bot answer: a string, or {"token": ...} in some versions."""
    token = bot.get("access_token")
    if isinstance(token, dict):
        token = token.get("token")
    return token if isinstance(token, str) and token else None


def _dict(answer: Any) -> dict[str, Any]:
    """The object of an answer, unwrapping {"payload": {...}} where Chatwoot wraps it."""
    if isinstance(answer, dict) and isinstance(answer.get("payload"), dict):
        return answer["payload"]
    if not isinstance(answer, dict):
        raise ChatwootError(f"Chatwoot answered {type(answer).__name__} where an object was expected")
    return answer


def _items(answer: Any) -> list[dict[str, Any]]:
    """The list of an answer: a bare array (agent bots, definitions, filters, apps) or {"payload": [...]}."""
    if isinstance(answer, dict):
        answer = answer.get("payload", [])
    if answer is None:
        return []
    if not isinstance(answer, list):
        raise ChatwootError(f"Chatwoot answered {type(answer).__name__} where a list was expected")
    return [item for item in answer if isinstance(item, dict)]
