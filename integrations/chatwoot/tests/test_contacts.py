"""Shared contact helper: phone/email normalisation, find-or-create with cache and locks, call conversations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.contacts import (
    display_phone,
    find_or_create_contact,
    find_or_create_conversation,
    forget_contact,
    normalize_email,
    normalize_phone,
    pick_open_conversation,
)
from integrations.chatwoot.tests.spec import validate_request

BASE = "https://chat.example.com"
ROOT = f"{BASE}/api/v1/accounts/1"
INBOX = 7


# --------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+44 7700 900123", None, "+447700900123"),
        ("+447700900123", None, "+447700900123"),
        ("0044 7700 900123", None, "+447700900123"),
        ("447700900123", None, "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("07700 900123", "gb", "+447700900123"),
        ("+33 (0)6 12 34 56 78", None, "+33612345678"),
        ("0033612345678", "US", "+33612345678"),  # 00 is not the US exit code; still read as international
        ("+1 (415) 555-0134", None, "+14155550134"),
        ("(415) 555-0134", "US", "+14155550134"),
        ("+351 21 000 0456", None, "+351210000456"),
        ("912 345 678", "PT", "+351912345678"),
        ("+49 30 901820", None, "+4930901820"),
        ("+86 138 0013 8000", None, "+8613800138000"),
        (" +44 7700 900123 ext. 12 ", None, "+447700900123"),
        ("anonymous", None, None),
        ("Anonymous", None, None),
        ("withheld", None, None),
        ("", None, None),
        (None, None, None),
        ("+4412", None, None),  # too short for the UK
        ("12", None, None),
        ("call me", None, None),
        ("x+351912345678", None, None),  # junk before the "+": Chatwoot's unanchored check lets it through
        ("tel:+351912345678", None, None),
        ("x351912345678", None, None),
        ("351+912345678", None, None),
        ("++351912345678", None, None),
    ],
)
def test_normalize_phone(raw: str | None, region: str | None, e164: str | None) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        (" Oliver.Bennett@Example.co.uk ", "oliver.bennett@example.co.uk"),
        ("guest@example.com", "guest@example.com"),
        ("not-an-email", None),
        ("@example.com", None),
        ("guest@localhost", None),
        ("a b@example.com", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw: str | None, email: str | None) -> None:
    assert normalize_email(raw) == email


def test_display_phone() -> None:
    assert display_phone("+447700900123") == "+44 7700 900123"
    assert display_phone("not a number") == "not a number"


def test_pick_open_conversation_prefers_the_newest_unresolved_in_the_inbox() -> None:
    conversations = [
        {"id": 10, "inbox_id": INBOX, "status": "open"},
        {"id": 12, "inbox_id": INBOX, "status": "pending"},
        {"id": 14, "inbox_id": INBOX, "status": "resolved"},
        {"id": 15, "inbox_id": 3, "status": "open"},
        {"id": 11, "inbox_id": str(INBOX), "status": "snoozed"},
    ]
    assert pick_open_conversation(conversations, INBOX) == 12
    assert pick_open_conversation([{"id": 14, "inbox_id": INBOX, "status": "resolved"}], INBOX) is None


# ------------------------------------------------------------------------------------- with I/O


class Chatwoot:
    """respx routes for the contact endpoints, with a little state and an optional delay."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.contacts: list[dict[str, Any]] = []
        self.conversations: list[dict[str, Any]] = []
        self.router = respx.MockRouter(assert_all_called=False, base_url=ROOT)
        self.search = self.router.get("/contacts/search").mock(side_effect=self._search)
        self.create = self.router.post("/contacts").mock(side_effect=self._create)
        self.update = self.router.put(path__regex=r"/contacts/(?P<cid>\d+)$").mock(side_effect=self._update)
        self.filter = self.router.post("/contacts/filter").mock(side_effect=self._filter)
        self.list = self.router.get(path__regex=r"/contacts/(?P<cid>\d+)/conversations").mock(side_effect=self._list)
        self.inbox = self.router.post(path__regex=r"/contacts/(?P<cid>\d+)/contact_inboxes").mock(
            return_value=httpx.Response(
                200, json={"source_id": "c0ffee00-1111-4222-8333-444455556666", "inbox": {"id": INBOX}}
            )
        )
        self.start = self.router.post("/conversations").mock(side_effect=self._start)

    def add(self, **fields: Any) -> dict[str, Any]:
        contact = {"id": 600 + len(self.contacts), "name": None, "email": None, "phone_number": None, **fields}
        self.contacts.append(contact)
        return contact

    def requests(self) -> list[tuple[str, str, Any]]:
        out = []
        for call in self.router.calls:
            request = call.request
            validate_request(request)
            detail = dict(request.url.params) if request.method == "GET" else json.loads(request.content)
            out.append((request.method, request.url.path.removeprefix("/api/v1/accounts/1"), detail))
        return out

    async def _search(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        q = request.url.params["q"].lower()
        hits = [
            c for c in self.contacts if any(q in str(c.get(k) or "").lower() for k in ("name", "email", "phone_number"))
        ]
        return httpx.Response(200, json={"meta": {"count": len(hits), "has_more": False}, "payload": hits})

    async def _create(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        body = json.loads(request.content)
        for key in ("email", "phone_number"):
            if body.get(key) and any(c.get(key) == body[key] for c in self.contacts):
                return httpx.Response(422, json={"message": f"{key.replace('_', ' ').title()} has already been taken"})
        contact = self.add(name=body.get("name"), email=body.get("email"), phone_number=body.get("phone_number"))
        return httpx.Response(200, json={"payload": {"contact": contact, "contact_inbox": None}})

    def _update(self, request: httpx.Request, cid: str) -> httpx.Response:
        contact = next(c for c in self.contacts if c["id"] == int(cid))
        contact.update(json.loads(request.content))
        return httpx.Response(200, json={"payload": contact})

    def _filter(self, request: httpx.Request) -> httpx.Response:
        (condition,) = json.loads(request.content)["payload"]
        hits = [c for c in self.contacts if c.get(condition["attribute_key"]) in condition["values"]]
        return httpx.Response(200, json={"meta": {"count": len(hits)}, "payload": hits})

    def _list(self, request: httpx.Request, cid: str) -> httpx.Response:
        return httpx.Response(200, json={"payload": [c for c in self.conversations if c["contact_id"] == int(cid)]})

    async def _start(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        body = json.loads(request.content)
        conversation = {
            "id": 80 + len(self.conversations),
            "inbox_id": body["inbox_id"],
            "status": "open",
            "contact_id": body["contact_id"],
        }
        self.conversations.append(conversation)
        return httpx.Response(200, json=conversation)


@pytest.fixture
async def pool(clean_db: str) -> AsyncIterator[AsyncConnectionPool]:
    db = AsyncConnectionPool(clean_db, min_size=1, max_size=10, open=False, kwargs={"autocommit": True})
    await db.open(wait=True, timeout=10)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def chatwoot() -> Chatwoot:
    return Chatwoot()


@pytest.fixture
async def client(chatwoot: Chatwoot) -> AsyncIterator[ChatwootClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(chatwoot.router.async_handler)) as http:
        yield ChatwootClient(http, BASE, 1, bot_token="bot", api_token="user")


def links(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: r[1] for r in conn.execute("SELECT key, chatwoot_contact_id FROM contact_links")}


async def test_cached_contact_needs_no_request(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, clean_db: str
) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO contact_links (key, chatwoot_contact_id) VALUES ('phone:+447700900123', 42)")
    assert await find_or_create_contact(pool, client, phone="+44 7700 900123") == 42
    assert chatwoot.router.calls.call_count == 0


async def test_search_keeps_only_the_exact_number(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, clean_db: str
) -> None:
    chatwoot.add(name="Longer", phone_number="+4477009001234")
    chatwoot.add(name="Called from +447700900123")
    oliver = chatwoot.add(name="Oliver", phone_number="+447700900123")
    assert await find_or_create_contact(pool, client, phone="0044 7700 900123", name="ignored") == oliver["id"]
    assert chatwoot.requests() == [("GET", "/contacts/search", {"q": "+447700900123", "page": "1"})]
    assert links(clean_db) == {"phone:+447700900123": oliver["id"]}


async def test_a_contact_with_junk_before_the_plus_never_holds_the_guests_number(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, clean_db: str
) -> None:
    impostor = chatwoot.add(name="x", phone_number="x+447700900123")  # Chatwoot's unanchored check lets it in
    oliver = chatwoot.add(name="Oliver", phone_number="+447700900123")
    assert await find_or_create_contact(pool, client, phone="+44 7700 900123") == oliver["id"] != impostor["id"]
    assert links(clean_db) == {"phone:+447700900123": oliver["id"]}


async def test_unknown_person_is_created_once_and_cached(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, clean_db: str
) -> None:
    contact_id = await find_or_create_contact(
        pool, client, phone="+33 6 12 34 56 78", email="Camille@Example.fr", name="Camille Martin", inbox_id=INBOX
    )
    assert chatwoot.requests() == [
        ("GET", "/contacts/search", {"q": "camille@example.fr", "page": "1"}),
        ("GET", "/contacts/search", {"q": "+33612345678", "page": "1"}),
        (
            "POST",
            "/contacts",
            {
                "name": "Camille Martin",
                "email": "camille@example.fr",
                "phone_number": "+33612345678",
                "inbox_id": INBOX,
            },
        ),
    ]
    assert links(clean_db) == {"email:camille@example.fr": contact_id, "phone:+33612345678": contact_id}
    assert await find_or_create_contact(pool, client, phone="+33612345678") == contact_id
    assert await find_or_create_contact(pool, client, email="camille@example.fr") == contact_id
    assert chatwoot.router.calls.call_count == 3


async def test_email_wins_over_phone_and_fills_nothing_taken(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, clean_db: str
) -> None:
    by_email = chatwoot.add(name="Oliver", email="oliver@example.co.uk")
    by_phone = chatwoot.add(name="Someone else", phone_number="+447700900123")
    found = await find_or_create_contact(pool, client, phone="+447700900123", email="oliver@example.co.uk")
    assert found == by_email["id"]
    assert chatwoot.requests() == [
        ("GET", "/contacts/search", {"q": "oliver@example.co.uk", "page": "1"}),
        ("GET", "/contacts/search", {"q": "+447700900123", "page": "1"}),  # is the phone free? no
    ]
    assert links(clean_db) == {"email:oliver@example.co.uk": by_email["id"]}
    assert await find_or_create_contact(pool, client, phone="+447700900123") == by_phone["id"]


async def test_found_contact_is_completed_with_the_missing_phone(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, clean_db: str
) -> None:
    guest = chatwoot.add(name="Oliver", email="oliver@example.co.uk")
    found = await find_or_create_contact(pool, client, phone="+447700900123", email="oliver@example.co.uk")
    assert found == guest["id"]
    assert chatwoot.requests()[-1] == ("PUT", f"/contacts/{guest['id']}", {"phone_number": "+447700900123"})
    assert links(clean_db) == {"email:oliver@example.co.uk": guest["id"], "phone:+447700900123": guest["id"]}


async def test_taken_on_create_falls_back_to_an_exact_filter(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot
) -> None:
    hidden = chatwoot.add(name="Hidden", phone_number="+447700900123")
    chatwoot.search.mock(return_value=httpx.Response(200, json={"meta": {"has_more": False}, "payload": []}))
    assert await find_or_create_contact(pool, client, phone="+447700900123") == hidden["id"]
    assert chatwoot.requests()[-2:] == [
        ("POST", "/contacts", {"phone_number": "+447700900123"}),
        (
            "POST",
            "/contacts/filter",
            {
                "payload": [
                    {"attribute_key": "phone_number", "filter_operator": "equal_to", "values": ["+447700900123"]}
                ]
            },
        ),
    ]


@pytest.mark.parametrize("fields", [{"phone": "anonymous"}, {"email": "nobody"}, {}, {"phone": None, "email": None}])
async def test_nothing_usable_gives_none(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot, fields: dict[str, Any]
) -> None:
    assert await find_or_create_contact(pool, client, **fields) is None
    assert chatwoot.router.calls.call_count == 0


async def test_concurrent_lookups_of_a_new_number_create_one_contact(
    clean_db: str, chatwoot: Chatwoot, client: ChatwootClient
) -> None:
    chatwoot.delay = 0.05
    pools = [
        AsyncConnectionPool(clean_db, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) for _ in range(6)
    ]
    for db in pools:
        await db.open(wait=True, timeout=10)
    try:
        ids = await asyncio.gather(
            *(find_or_create_contact(db, client, phone="+351 912 345 678", name="Guest") for db in pools)
        )
    finally:
        for db in pools:
            await db.close()
    assert len(set(ids)) == 1
    assert chatwoot.create.call_count == 1
    assert links(clean_db) == {"phone:+351912345678": ids[0]}


async def test_conversation_is_reused_or_opened_once(
    pool: AsyncConnectionPool, client: ChatwootClient, chatwoot: Chatwoot
) -> None:
    chatwoot.delay = 0.05
    chatwoot.conversations.append({"id": 70, "inbox_id": INBOX, "status": "resolved", "contact_id": 600})
    ids = await asyncio.gather(
        *(find_or_create_conversation(pool, client, contact_id=600, inbox_id=INBOX) for _ in range(4))
    )
    assert ids == [81] * 4
    assert chatwoot.start.call_count == 1 and chatwoot.inbox.call_count == 1
    requests = chatwoot.requests()
    assert (
        "POST",
        "/conversations",
        {"inbox_id": INBOX, "contact_id": 600, "source_id": "c0ffee00-1111-4222-8333-444455556666"},
    ) in requests
    assert await find_or_create_conversation(pool, client, contact_id=600, inbox_id=INBOX) == 81
    assert chatwoot.start.call_count == 1


async def test_forget_contact_drops_every_link(pool: AsyncConnectionPool, clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO contact_links (key, chatwoot_contact_id) VALUES ('phone:+1', 5), ('email:a@b.c', 5),"
            " ('phone:+2', 6)"
        )
    await forget_contact(pool, 5)
    assert links(clean_db) == {"phone:+2": 6}
