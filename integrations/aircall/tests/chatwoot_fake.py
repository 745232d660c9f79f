"""A small in-memory Chatwoot (contacts, contact inboxes, conversations, messages, labels) behind respx.

It answers the way Chatwoot 4.15.1's controllers do (shapes from /work/shared/reference/chatwoot.md and
SPEC-GAPS.md), keeps every request for exact assertions, and can wait inside a request so concurrent
jobs really overlap.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

ROOT = "/api/v1/accounts/1"


@dataclass
class FakeChatwoot:
    base_url: str = "https://chat.example.com"
    delay: float = 0.0  # seconds each search and create waits, to widen race windows
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    contact_inboxes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    next_ids: dict[str, int] = field(default_factory=lambda: {"contact": 500, "conversation": 40})

    def install(self, router: respx.MockRouter) -> None:
        """Answer every request to base_url on this router."""
        router.route(url__startswith=self.base_url).mock(side_effect=self.handle)

    def add_contact(
        self, name: str | None, *, email: str | None = None, phone: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        contact_id = self._next("contact")
        contact = {
            "id": contact_id,
            "name": name,
            "email": email,
            "phone_number": phone,
            "identifier": None,
            "custom_attributes": {},
            "additional_attributes": {},
            **extra,
        }
        self.contacts[contact_id] = contact
        return contact

    def add_conversation(self, contact_id: int, inbox_id: int, status: str = "open") -> dict[str, Any]:
        conversation_id = self._next("conversation")
        conversation = {
            "id": conversation_id,
            "inbox_id": inbox_id,
            "status": status,
            "contact_id": contact_id,
            "labels": [],
            "priority": None,
        }
        self.conversations[conversation_id] = conversation
        return conversation

    def _next(self, kind: str) -> int:
        self.next_ids[kind] += 1  # ids are never reused, as in a database
        return self.next_ids[kind]

    def calls(self, method: str | None = None, path: str | None = None) -> list[tuple[str, str, Any]]:
        """(method, path relative to the account, decoded body or query) of each request, in order."""
        out: list[tuple[str, str, Any]] = []
        for request in self.requests:
            rel = request.url.path.removeprefix(ROOT)
            if (method and request.method != method) or (path and not re.fullmatch(path, rel)):
                continue
            if request.method == "GET":
                out.append((request.method, rel, {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}))
            else:
                out.append((request.method, rel, json.loads(request.content) if request.content else None))
        return out

    def notes(self, conversation_id: int | None = None) -> list[str]:
        return [
            m["content"] for m in self.messages if conversation_id is None or m["conversation_id"] == conversation_id
        ]

    # ------------------------------------------------------------------------------------ handling

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix(ROOT)
        body = json.loads(request.content) if request.content else {}
        method = request.method
        if method == "GET" and path == "/contacts/search":
            await asyncio.sleep(self.delay)
            q = request.url.params.get("q", "").lower()
            hits = [
                c
                for c in self.contacts.values()
                if any(q in str(c.get(k) or "").lower() for k in ("name", "email", "phone_number"))
            ]
            return _json({"meta": {"count": len(hits), "current_page": 1, "has_more": False}, "payload": hits})
        if method == "POST" and path == "/contacts":
            await asyncio.sleep(self.delay)
            for key in ("email", "phone_number"):
                if body.get(key) and any(c.get(key) == body[key] for c in self.contacts.values()):
                    return _json({"message": f"{key} has already been taken"}, 422)
            contact = self.add_contact(
                body.get("name"),
                email=body.get("email"),
                phone=body.get("phone_number"),
                custom_attributes=body.get("custom_attributes") or {},
            )
            inbox: dict[str, Any] | None = None
            if body.get("inbox_id"):
                inbox = self._contact_inbox(contact["id"], body["inbox_id"])
            return _json({"payload": {"contact": contact, "contact_inbox": inbox}})
        if method == "POST" and path == "/contacts/filter":
            (condition,) = body["payload"]
            hits = [c for c in self.contacts.values() if c.get(condition["attribute_key"]) in condition["values"]]
            return _json({"meta": {"count": len(hits)}, "payload": hits})
        if found := re.fullmatch(r"/contacts/(\d+)", path):
            person = self.contacts.get(int(found[1]))
            if person is None:
                return _json({"error": "Resource could not be found"}, 404)
            if method == "PUT":
                for key, value in body.items():
                    if key in ("custom_attributes", "additional_attributes"):
                        person[key] = {**person.get(key, {}), **value}  # Chatwoot merges these
                    else:
                        person[key] = value
            return _json({"payload": person})
        if found := re.fullmatch(r"/contacts/(\d+)/conversations", path):
            if int(found[1]) not in self.contacts:
                return _json({"error": "Resource could not be found"}, 404)
            mine = [c for c in self.conversations.values() if c["contact_id"] == int(found[1])]
            return _json({"payload": mine})
        if found := re.fullmatch(r"/contacts/(\d+)/contact_inboxes", path):
            if int(found[1]) not in self.contacts:
                return _json({"error": "Resource could not be found"}, 404)
            return _json(self._contact_inbox(int(found[1]), body["inbox_id"]))
        if method == "POST" and path == "/conversations":
            await asyncio.sleep(self.delay)
            created = self.add_conversation(body["contact_id"], body["inbox_id"], body.get("status", "open"))
            return _json({**created, "account_id": 1, "messages": []})
        if found := re.fullmatch(r"/conversations/(\d+)(/.*)?", path):
            existing = self.conversations.get(int(found[1]))
            if existing is None:
                return _json({"error": "Resource could not be found"}, 404)
            query = dict(request.url.params) if method == "GET" else body
            return self._conversation(existing, found[2] or "", method, query)
        return _json({"error": f"fake Chatwoot has no {method} {path}"}, 501)

    def _contact_inbox(self, contact_id: int, inbox_id: int) -> dict[str, Any]:
        row = {
            "source_id": str(uuid.uuid4()),
            "inbox": {"id": inbox_id, "name": "Phone calls", "channel_type": "Channel::Api"},
            "contact_id": contact_id,
        }
        self.contact_inboxes.append(row)
        return row

    def _conversation(
        self, conversation: dict[str, Any], sub: str, method: str, body: dict[str, Any]
    ) -> httpx.Response:
        if sub == "/messages" and method == "POST":
            message = {
                "id": 9000 + len(self.messages) + 1,
                "content": body["content"],
                "private": body.get("private"),
                "message_type": 1,
                "conversation_id": conversation["id"],
                "content_attributes": body.get("content_attributes") or {},
                "created_at": int(time.time()),
            }
            self.messages.append(message)
            return _json(message)
        if sub == "/messages" and method == "GET":  # the newest 20 (or the 20 before `before`), oldest first
            before = body.get("before")
            ours = [m for m in self.messages if m["conversation_id"] == conversation["id"]]
            older = [m for m in ours if before is None or m["id"] < int(before)]
            return _json({"meta": {}, "payload": older[-20:]})
        if sub == "/toggle_status":
            conversation["status"] = body["status"]
            return _json(
                {"payload": {"success": True, "conversation_id": conversation["id"], "current_status": body["status"]}}
            )
        if sub == "/labels":
            if method == "POST":
                conversation["labels"] = list(body["labels"])
            return _json({"payload": conversation["labels"]})
        if sub == "/toggle_priority":
            conversation["priority"] = body["priority"]
            return httpx.Response(200)
        return _json({"error": f"fake Chatwoot has no {method} conversation{sub}"}, 501)


def _json(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)
