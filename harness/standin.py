"""A Chatwoot stand-in for the harness, with fault injection, run as its own process.

It answers the Agent Bot API calls the sidecar makes (shapes after Chatwoot 4.15's swagger.json and
controllers: create message, conversation, labels, toggle_status, toggle_typing_status,
toggle_priority, message list, contacts search/filter/create/show/update) and keeps what was saved,
so the harness can count answers, hand-offs and duplicates. Control routes under /_harness/:

    POST /_harness/incoming {conversation_id, message_id, inbox_id, contact_id, content}
         Chatwoot creating the guest's message before it calls the bot
    POST /_harness/faults   {errors_for_s, after_save, after_save_for_s, after_save_max, hang_s}
         errors: 500/429 alternately on every API call for a window, nothing saved;
         after_save "502": the message is saved, then 502; "hang": saved, then no answer for hang_s
    GET  /_harness/state    everything saved, for the report

Run: python -m harness.standin --port N
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.sidecar import ACCOUNT_ID, BOT_TOKEN, USER_TOKEN

BOT_SENDER = {"id": 2, "name": "Sidecar", "avatar_url": "", "type": "agent_bot"}
BOT_ROUTES = {"create_message", "conversation", "labels", "toggle_status", "toggle_typing_status", "toggle_priority"}


@dataclass
class Saved:
    """A message the bot created (what Chatwoot would show in the conversation)."""

    id: int
    conversation_id: int
    content: str | None
    private: bool
    message_type: int
    answered: int  # the HTTP status the stand-in answered after saving
    at: float


@dataclass
class Faults:
    errors_until: float = 0.0
    after_save: str | None = None  # "502" | "hang"
    after_save_until: float = 0.0
    after_save_left: int = 0
    hang_s: float = 25.0
    error_flip: int = 0


@dataclass
class World:
    messages: list[Saved] = field(default_factory=list)
    incoming: dict[int, dict[str, Any]] = field(default_factory=dict)  # conversation -> guest message
    status: dict[int, str] = field(default_factory=dict)
    opened_by_bot: set[int] = field(default_factory=set)
    labels: dict[int, list[str]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(50_000_000))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app() -> Starlette:
    world = World()

    def authorize(request: Request, route: str) -> Response | None:
        token = request.headers.get("api_access_token")
        if int(request.path_params.get("account", ACCOUNT_ID)) != ACCOUNT_ID:
            return _error(404, "account not found")
        if token == USER_TOKEN or (token == BOT_TOKEN and route in BOT_ROUTES):
            return None
        if token == BOT_TOKEN:
            return _error(401, "Access to this endpoint is not authorized for bots")
        return _error(401, "You need to sign in or sign up before continuing.")

    def injected_error(route: str) -> Response | None:
        f = world.faults
        if time.monotonic() < f.errors_until:
            f.error_flip += 1
            status = 429 if f.error_flip % 2 else 500
            world.injected[f"{route}:{status}"] = world.injected.get(f"{route}:{status}", 0) + 1
            headers = {"Retry-After": "1"} if status == 429 else {}
            return JSONResponse({"error": "injected"}, status_code=status, headers=headers)
        return None

    async def guard(request: Request, route: str) -> Response | None:
        world.calls[route] = world.calls.get(route, 0) + 1
        return authorize(request, route) or injected_error(route)

    def conversation_json(conv: int) -> dict[str, Any]:
        guest = world.incoming.get(conv, {})
        return {
            "id": conv,
            "account_id": ACCOUNT_ID,
            "inbox_id": guest.get("inbox_id", 3),
            "status": world.status.get(conv, "pending"),
            "labels": world.labels.get(conv, []),
            "meta": {
                "sender": {"id": guest.get("contact_id"), "type": "contact"},
                "assignee": None,
                "assignee_type": None,
                "team": None,
                "hmac_verified": False,
            },
            "messages": [],
            "priority": None,
            "unread_count": 0,
            "custom_attributes": {},
            "additional_attributes": {},
            "can_reply": True,
            "timestamp": int(time.time()),
        }

    async def create_message(request: Request) -> Response:
        if (refused := await guard(request, "create_message")) is not None:
            return refused
        conv = int(request.path_params["conv"])
        body = await _body(request)
        private = body.get("private") in (True, "true", "1")
        message_type = {"outgoing": 1, "incoming": 0}.get(str(body.get("message_type", "outgoing")), 1)
        saved = Saved(next(world.ids), conv, body.get("content"), private, message_type, 200, time.time())
        world.messages.append(saved)
        reply = {
            "id": saved.id,
            "content": saved.content,
            "inbox_id": world.incoming.get(conv, {}).get("inbox_id", 3),
            "conversation_id": conv,
            "message_type": message_type,
            "content_type": "text",
            "status": "sent",
            "content_attributes": {},
            "created_at": int(saved.at),
            "private": private,
            "source_id": None,
            "sender": BOT_SENDER,
        }
        f = world.faults
        if f.after_save and time.monotonic() < f.after_save_until and f.after_save_left > 0:
            f.after_save_left -= 1
            world.injected[f"create_message:{f.after_save}"] = (
                world.injected.get(f"create_message:{f.after_save}", 0) + 1
            )
            if f.after_save == "502":
                saved.answered = 502
                return Response("<html><body>502 Bad Gateway</body></html>", status_code=502, media_type="text/html")
            saved.answered = -1  # the client gave up waiting (or did not)
            await asyncio.sleep(f.hang_s)
        return JSONResponse(reply)

    async def list_messages(request: Request) -> Response:
        if (refused := await guard(request, "list_messages")) is not None:
            return refused
        conv = int(request.path_params["conv"])
        payload: list[dict[str, Any]] = []
        guest = world.incoming.get(conv)
        if guest:
            payload.append(
                {
                    "id": guest["message_id"],
                    "content": guest["content"],
                    "message_type": 0,
                    "private": False,
                    "conversation_id": conv,
                    "content_type": "text",
                    "created_at": int(guest["at"]),
                    "sender": {"id": guest["contact_id"], "type": "contact"},
                }
            )
        payload += [
            {
                "id": m.id,
                "content": m.content,
                "message_type": m.message_type,
                "private": m.private,
                "conversation_id": conv,
                "content_type": "text",
                "created_at": int(m.at),
                "sender": BOT_SENDER,
            }
            for m in world.messages
            if m.conversation_id == conv
        ]
        return JSONResponse(
            {
                "meta": {
                    "labels": world.labels.get(conv, []),
                    "additional_attributes": {},
                    "contact": {},
                    "assignee": None,
                    "agent_last_seen_at": None,
                    "assignee_last_seen_at": None,
                },
                "payload": payload[-20:],
            }
        )

    async def conversation(request: Request) -> Response:
        if (refused := await guard(request, "conversation")) is not None:
            return refused
        return JSONResponse(conversation_json(int(request.path_params["conv"])))

    async def labels(request: Request) -> Response:
        if (refused := await guard(request, "labels")) is not None:
            return refused
        conv = int(request.path_params["conv"])
        if request.method == "POST":
            body = await _body(request)
            wanted = body.get("labels")
            if not isinstance(wanted, list):
                return _error(422, "labels must be an array")
            world.labels[conv] = [str(x) for x in wanted]
        return JSONResponse({"payload": world.labels.get(conv, [])})

    async def toggle_status(request: Request) -> Response:
        if (refused := await guard(request, "toggle_status")) is not None:
            return refused
        conv = int(request.path_params["conv"])
        body = await _body(request)
        current = world.status.get(conv, "pending")
        wanted = body.get("status") or ("open" if current != "open" else "resolved")
        if wanted not in ("open", "resolved", "pending", "snoozed"):
            return _error(422, "invalid status")
        world.status[conv] = str(wanted)
        if wanted == "open" and request.headers.get("api_access_token") == BOT_TOKEN:
            world.opened_by_bot.add(conv)
        return JSONResponse(
            {
                "meta": {},
                "payload": {"success": True, "conversation_id": conv, "current_status": wanted, "snoozed_until": None},
            }
        )

    async def head_ok(request: Request) -> Response:
        route = request.url.path.rsplit("/", 1)[-1]
        if (refused := await guard(request, route)) is not None:
            return refused
        return Response(status_code=200)

    async def contacts_search(request: Request) -> Response:
        if (refused := await guard(request, "contacts_search")) is not None:
            return refused
        q = request.query_params.get("q", "").strip().lower()
        if not q:
            return _error(422, "Specify search string with parameter q")
        found = [
            c
            for c in world.contacts.values()
            if any(q in str(c.get(k) or "").lower() for k in ("name", "email", "phone_number", "identifier"))
        ]
        return JSONResponse({"meta": {"count": len(found), "current_page": 1}, "payload": found[:15]})

    async def contacts_filter(request: Request) -> Response:
        if (refused := await guard(request, "contacts_filter")) is not None:
            return refused
        body = await _body(request)
        conditions = body.get("payload") or []
        found = [
            c
            for c in world.contacts.values()
            if all(str(c.get(x.get("attribute_key"), "")) in map(str, x.get("values", [])) for x in conditions)
        ]
        return JSONResponse({"meta": {"count": len(found), "current_page": 1}, "payload": found[:15]})

    async def contacts_create(request: Request) -> Response:
        if (refused := await guard(request, "contacts_create")) is not None:
            return refused
        body = await _body(request)
        contact_id = next(world.ids)
        contact: dict[str, Any] = {
            "id": contact_id,
            "name": body.get("name"),
            "email": body.get("email"),
            "phone_number": body.get("phone_number"),
            "identifier": body.get("identifier"),
            "custom_attributes": body.get("custom_attributes") or {},
            "additional_attributes": body.get("additional_attributes") or {},
            "contact_inboxes": [],
        }
        world.contacts[contact_id] = contact
        return JSONResponse({"payload": {"contact": contact, "contact_inbox": {"inbox": None, "source_id": None}}})

    async def contact_show(request: Request) -> Response:
        if (refused := await guard(request, "contact")) is not None:
            return refused
        found = world.contacts.get(int(request.path_params["contact"]))
        if found is None:
            return _error(404, "Resource could not be found")
        if request.method == "PUT":
            body = await _body(request)
            for key in ("custom_attributes", "additional_attributes"):
                found[key] = {**found.get(key, {}), **(body.pop(key, None) or {})}
            found.update({k: v for k, v in body.items() if k in ("name", "email", "phone_number", "identifier")})
        return JSONResponse({"payload": found})

    async def incoming(request: Request) -> Response:
        body = await request.json()
        conv = int(body["conversation_id"])
        world.incoming[conv] = {**body, "at": time.time()}
        world.status.setdefault(conv, "pending")
        return JSONResponse({"ok": True})

    async def faults(request: Request) -> Response:
        body = await request.json()
        f, now = world.faults, time.monotonic()
        if "errors_for_s" in body:
            f.errors_until = now + float(body["errors_for_s"])
        if "after_save" in body:
            f.after_save = body["after_save"]
            f.after_save_until = now + float(body.get("after_save_for_s", 0))
            f.after_save_left = int(body.get("after_save_max", 1_000_000))
            f.hang_s = float(body.get("hang_s", f.hang_s))
        return JSONResponse({"ok": True})

    async def state(request: Request) -> Response:
        return JSONResponse(
            {
                "messages": [asdict(m) for m in world.messages],
                "incoming": list(world.incoming.values()),
                "opened_by_bot": sorted(world.opened_by_bot),
                "calls": world.calls,
                "injected": world.injected,
            }
        )

    base = "/api/v1/accounts/{account:int}/conversations/{conv:int}"
    contacts = "/api/v1/accounts/{account:int}/contacts"
    return Starlette(
        routes=[
            Route(base + "/messages", create_message, methods=["POST"]),
            Route(base + "/messages", list_messages, methods=["GET"]),
            Route(base, conversation, methods=["GET"]),
            Route(base + "/labels", labels, methods=["GET", "POST"]),
            Route(base + "/toggle_status", toggle_status, methods=["POST"]),
            Route(base + "/toggle_typing_status", head_ok, methods=["POST"]),
            Route(base + "/toggle_priority", head_ok, methods=["POST"]),
            Route(base + "/custom_attributes", head_ok, methods=["POST"]),
            Route(base + "/assignments", head_ok, methods=["POST"]),
            Route(contacts + "/search", contacts_search, methods=["GET"]),
            Route(contacts + "/filter", contacts_filter, methods=["POST"]),
            Route(contacts, contacts_create, methods=["POST"]),
            Route(contacts + "/{contact:int}", contact_show, methods=["GET", "PUT"]),
            Route("/_harness/incoming", incoming, methods=["POST"]),
            Route("/_harness/faults", faults, methods=["POST"]),
            Route("/_harness/state", state, methods=["GET"]),
        ]
    )


async def _body(request: Request) -> dict[str, Any]:
    """JSON or multipart form (voice replies) as a dict; anything else as {}."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def main() -> None:
    parser = argparse.ArgumentParser(description="Chatwoot stand-in with fault injection (harness only)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
