"""Each ChatwootClient method sends exactly the request Chatwoot expects, with the right token.

Every recorded request is also checked against Chatwoot's OpenAPI spec (integrations/chatwoot/tests/spec.py).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from integrations.chatwoot.client import ChatwootClient, ChatwootConfigError
from integrations.chatwoot.tests.spec import assert_all_valid

BASE = "https://chat.acme.test"
ROOT = f"{BASE}/api/v1/accounts/1"
BOT = "bot-token-3f9a"
USER = "user-token-77c1"
FIXTURES = Path(__file__).parent / "fixtures"
CREATED_MESSAGE = json.loads((FIXTURES / "api_response.create_message.json").read_text())


async def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def client(http: httpx.AsyncClient) -> ChatwootClient:
    return ChatwootClient(http, BASE + "/", 1, BOT, USER, sleep=no_sleep)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def form_parts(request: httpx.Request) -> list[tuple[str, str | None, str | None, bytes]]:
    """(name, filename, content type, bytes) of each multipart part, in order."""
    raw = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = []
    for part in parsed.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        content_type = part["content-type"]
        parts.append(
            (
                str(part.get_param("name", header="content-disposition")),
                part.get_filename(),
                str(content_type) if content_type else None,
                payload,
            )
        )
    return parts


def only_request(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


# ------------------------------------------------------------------------------- bot token


async def test_post_message_sends_an_outgoing_public_message_with_the_bot_token(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.post(f"{ROOT}/conversations/57/messages").respond(200, json=CREATED_MESSAGE)
    created = await client.post_message(57, "Danke für die Sprachnachricht!", echo_id="reply-9120")
    request = only_request(route)
    assert request.headers["api_access_token"] == BOT
    assert request.headers["content-type"] == "application/json"
    assert body(request) == {
        "content": "Danke für die Sprachnachricht!",
        "message_type": "outgoing",
        "private": False,
        "echo_id": "reply-9120",
    }
    assert created == CREATED_MESSAGE
    assert_all_valid(router, bot_token=BOT)


async def test_post_message_as_private_note_with_content_attributes(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.post(f"{ROOT}/conversations/57/messages").respond(200, json=CREATED_MESSAGE)
    await client.post_message(
        57, "AI unavailable, handed off.", private=True, content_attributes={"sidecar": {"reason": "llm_down"}}
    )
    assert body(only_request(route)) == {
        "content": "AI unavailable, handed off.",
        "message_type": "outgoing",
        "private": True,
        "content_attributes": {"sidecar": {"reason": "llm_down"}},
    }
    assert_all_valid(router, bot_token=BOT)


async def test_post_attachment_sends_multipart_attachments_and_voice_flag(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.post(f"{ROOT}/conversations/57/messages").respond(200, json=CREATED_MESSAGE)
    created = await client.post_attachment(
        57, "Hier die Antwort als Audio.", [("reply.ogg", b"OggS\x00voice", "audio/ogg")], is_voice_message=True
    )
    request = only_request(route)
    assert request.headers["api_access_token"] == BOT
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert form_parts(request) == [
        ("message_type", None, None, b"outgoing"),
        ("private", None, None, b"false"),
        ("content", None, None, b"Hier die Antwort als Audio."),
        ("is_voice_message", None, None, b"true"),
        ("attachments[]", "reply.ogg", "audio/ogg", b"OggS\x00voice"),
    ]
    assert created == CREATED_MESSAGE
    assert_all_valid(router, bot_token=BOT)


async def test_post_attachment_without_text_sends_several_files_and_no_content(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.post(f"{ROOT}/conversations/57/messages").respond(200, json=CREATED_MESSAGE)
    files = [("a.pdf", b"%PDF-1", "application/pdf"), ("b.png", b"\x89PNG", "image/png")]
    await client.post_attachment(57, None, files, private=True)
    assert form_parts(only_request(route)) == [
        ("message_type", None, None, b"outgoing"),
        ("private", None, None, b"true"),
        ("attachments[]", "a.pdf", "application/pdf", b"%PDF-1"),
        ("attachments[]", "b.png", "image/png", b"\x89PNG"),
    ]
    assert_all_valid(router, bot_token=BOT)


async def test_post_attachment_refuses_no_files_or_too_many_without_sending(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    with pytest.raises(ValueError, match="at least one file"):
        await client.post_attachment(57, "x", [])
    with pytest.raises(ValueError, match="at most 15"):
        await client.post_attachment(57, "x", [("f.txt", b"", "text/plain")] * 16)
    assert router.calls.call_count == 0


async def test_toggle_status_hands_off_and_returns_the_payload(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    answer = {
        "meta": {},
        "payload": {"success": True, "conversation_id": 57, "current_status": "open", "snoozed_until": None},
    }
    route = router.post(f"{ROOT}/conversations/57/toggle_status").respond(200, json=answer)
    assert await client.toggle_status(57, "open") == answer["payload"]
    request = only_request(route)
    assert request.headers["api_access_token"] == BOT
    assert body(request) == {"status": "open"}
    assert_all_valid(router, bot_token=BOT)


async def test_toggle_status_snoozed_until(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.post(f"{ROOT}/conversations/57/toggle_status").respond(
        200, json={"payload": {"success": True, "conversation_id": 57, "current_status": "snoozed"}}
    )
    result = await client.toggle_status(57, "snoozed", snoozed_until=1781780000)
    assert result["current_status"] == "snoozed"
    assert body(only_request(route)) == {"status": "snoozed", "snoozed_until": 1781780000}
    assert_all_valid(router, bot_token=BOT)


@pytest.mark.parametrize(("on", "state"), [(True, "on"), (False, "off")])
async def test_toggle_typing(client: ChatwootClient, router: respx.MockRouter, on: bool, state: str) -> None:
    route = router.post(f"{ROOT}/conversations/57/toggle_typing_status").respond(200)
    await client.toggle_typing(57, on)
    request = only_request(route)
    assert request.headers["api_access_token"] == BOT
    assert body(request) == {"typing_status": state}
    assert_all_valid(router, bot_token=BOT)


@pytest.mark.parametrize("status", [401, 404])
async def test_toggle_typing_is_ignored_by_old_chatwoot(
    client: ChatwootClient, router: respx.MockRouter, status: int
) -> None:
    route = router.post(f"{ROOT}/conversations/57/toggle_typing_status").respond(
        status, json={"error": "Access to this endpoint is not authorized for bots"}
    )
    await client.toggle_typing(57, True)
    assert route.call_count == 1


@pytest.mark.parametrize(("priority", "sent"), [("urgent", "urgent"), (None, None)])
async def test_toggle_priority_sends_null_to_clear(
    client: ChatwootClient, router: respx.MockRouter, priority: str | None, sent: str | None
) -> None:
    route = router.post(f"{ROOT}/conversations/57/toggle_priority").respond(200)
    await client.toggle_priority(57, priority)
    assert body(only_request(route)) == {"priority": sent}
    assert_all_valid(router, bot_token=BOT)


async def test_get_conversation(client: ChatwootClient, router: respx.MockRouter) -> None:
    conversation = {"id": 57, "status": "pending", "inbox_id": 3, "labels": []}
    route = router.get(f"{ROOT}/conversations/57").respond(200, json=conversation)
    assert await client.get_conversation(57) == conversation
    request = only_request(route)
    assert (request.headers["api_access_token"], request.content) == (BOT, b"")
    assert_all_valid(router, bot_token=BOT)


async def test_get_labels(client: ChatwootClient, router: respx.MockRouter) -> None:
    router.get(f"{ROOT}/conversations/57/labels").respond(200, json={"payload": ["upgrade", "vip"]})
    assert await client.get_labels(57) == ["upgrade", "vip"]
    assert_all_valid(router, bot_token=BOT)


async def test_add_labels_posts_the_union_because_post_replaces_the_set(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    router.get(f"{ROOT}/conversations/57/labels").respond(200, json={"payload": ["upgrade", "vip"]})
    post = router.post(f"{ROOT}/conversations/57/labels").respond(
        200, json={"payload": ["upgrade", "vip", "voice-note"]}
    )
    assert await client.add_labels(57, ["voice-note", "upgrade", "voice-note"]) == ["upgrade", "vip", "voice-note"]
    request = only_request(post)
    assert request.headers["api_access_token"] == BOT
    assert body(request) == {"labels": ["upgrade", "vip", "voice-note"]}
    assert [call.request.method for call in router.calls] == ["GET", "POST"]
    assert_all_valid(router, bot_token=BOT)


async def test_add_labels_sends_nothing_when_all_are_present(client: ChatwootClient, router: respx.MockRouter) -> None:
    router.get(f"{ROOT}/conversations/57/labels").respond(200, json={"payload": ["upgrade"]})
    post = router.post(f"{ROOT}/conversations/57/labels")
    assert await client.add_labels(57, ["upgrade"]) == ["upgrade"]
    assert post.call_count == 0


async def test_set_labels_replaces_the_set_without_reading_it(client: ChatwootClient, router: respx.MockRouter) -> None:
    post = router.post(f"{ROOT}/conversations/57/labels").respond(200, json={"payload": ["checked-in"]})
    assert await client.set_labels(57, ["checked-in", "checked-in"]) == ["checked-in"]
    assert body(only_request(post)) == {"labels": ["checked-in"]}
    assert router.calls.call_count == 1
    assert_all_valid(router, bot_token=BOT)


async def test_set_labels_to_none_clears_them(client: ChatwootClient, router: respx.MockRouter) -> None:
    post = router.post(f"{ROOT}/conversations/57/labels").respond(200, json={"payload": []})
    assert await client.set_labels(57, []) == []
    assert body(only_request(post)) == {"labels": []}
    assert_all_valid(router, bot_token=BOT)


async def test_bot_methods_fall_back_to_the_user_token(http: httpx.AsyncClient, router: respx.MockRouter) -> None:
    client = ChatwootClient(http, BASE, 1, None, USER, sleep=no_sleep)
    route = router.post(f"{ROOT}/conversations/57/messages").respond(200, json=CREATED_MESSAGE)
    await client.post_message(57, "hi")
    assert only_request(route).headers["api_access_token"] == USER
    assert_all_valid(router, bot_token=BOT)


async def test_bot_methods_without_any_token_fail_before_sending(
    http: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    client = ChatwootClient(http, BASE, 1, None, None, sleep=no_sleep)
    with pytest.raises(ChatwootConfigError, match="CHATWOOT_BOT_TOKEN"):
        await client.post_message(57, "hi")
    assert router.calls.call_count == 0


# ------------------------------------------------------------------------------ user token


async def test_list_messages_returns_the_payload_with_the_user_token(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    messages = [{"id": 9120, "content": None, "message_type": 0}, {"id": 9121, "content": "Danke", "message_type": 1}]
    route = router.get(f"{ROOT}/conversations/57/messages").respond(
        200, json={"meta": {"labels": [], "contact": {"id": 812}}, "payload": messages}
    )
    assert await client.list_messages(57) == messages
    request = only_request(route)
    assert request.headers["api_access_token"] == USER
    assert str(request.url) == f"{ROOT}/conversations/57/messages"
    assert_all_valid(router, bot_token=BOT)


async def test_list_messages_before_an_id(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.get(f"{ROOT}/conversations/57/messages").respond(200, json={"meta": {}, "payload": []})
    assert await client.list_messages(57, before=9120) == []
    assert str(only_request(route).url) == f"{ROOT}/conversations/57/messages?before=9120"
    assert_all_valid(router, bot_token=BOT)


def contacts(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Guest {i}"} for i in range(first, first + count)]


async def test_search_contacts_pages_while_has_more(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.get(f"{ROOT}/contacts/search").mock(
        side_effect=[
            httpx.Response(
                200, json={"meta": {"count": 15, "current_page": "1", "has_more": True}, "payload": contacts(1, 15)}
            ),
            httpx.Response(
                200, json={"meta": {"count": 2, "current_page": "2", "has_more": False}, "payload": contacts(16, 2)}
            ),
        ]
    )
    found = await client.search_contacts(" +4915112345678 ")
    assert [c["id"] for c in found] == list(range(1, 18))
    assert [str(call.request.url) for call in route.calls] == [
        f"{ROOT}/contacts/search?q=%2B4915112345678&page=1",
        f"{ROOT}/contacts/search?q=%2B4915112345678&page=2",
    ]
    assert {call.request.headers["api_access_token"] for call in route.calls} == {USER}
    assert_all_valid(router, bot_token=BOT)


async def test_search_contacts_stops_at_the_page_bound(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.get(f"{ROOT}/contacts/search").respond(
        200, json={"meta": {"has_more": True}, "payload": contacts(1, 15)}
    )
    assert len(await client.search_contacts("guest")) == 75
    assert route.call_count == 5


async def test_search_contacts_with_blank_query_sends_nothing(client: ChatwootClient, router: respx.MockRouter) -> None:
    assert await client.search_contacts("   ") == []
    assert router.calls.call_count == 0


async def test_filter_contacts_equal_to_pages_by_total_count(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.post(f"{ROOT}/contacts/filter").mock(
        side_effect=[
            httpx.Response(200, json={"meta": {"count": 17, "current_page": 1}, "payload": contacts(1, 15)}),
            httpx.Response(200, json={"meta": {"count": 17, "current_page": 2}, "payload": contacts(16, 2)}),
        ]
    )
    found = await client.filter_contacts("guesty_guest_id", "gst-4412")
    assert [c["id"] for c in found] == list(range(1, 18))
    assert [str(call.request.url) for call in route.calls] == [
        f"{ROOT}/contacts/filter?page=1",
        f"{ROOT}/contacts/filter?page=2",
    ]
    for call in route.calls:
        assert call.request.headers["api_access_token"] == USER
        assert body(call.request) == {
            "payload": [{"attribute_key": "guesty_guest_id", "filter_operator": "equal_to", "values": ["gst-4412"]}]
        }
    assert_all_valid(router, bot_token=BOT)


async def test_create_contact_returns_the_contact_from_the_nested_payload(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    contact = {"id": 813, "name": "Jane Guest", "email": "jane@guest.test", "phone_number": "+4915112345678"}
    route = router.post(f"{ROOT}/contacts").respond(
        200, json={"payload": {"contact": contact, "contact_inbox": {"inbox": {"id": 4}, "source_id": "8f3c"}}}
    )
    created = await client.create_contact(
        name="Jane Guest",
        email="jane@guest.test",
        phone_number="+4915112345678",
        inbox_id=4,
        custom_attributes={"guesty_guest_id": "gst-4412"},
    )
    assert created == contact
    request = only_request(route)
    assert request.headers["api_access_token"] == USER
    assert body(request) == {
        "name": "Jane Guest",
        "email": "jane@guest.test",
        "phone_number": "+4915112345678",
        "inbox_id": 4,
        "custom_attributes": {"guesty_guest_id": "gst-4412"},
    }
    assert_all_valid(router, bot_token=BOT)


async def test_create_contact_leaves_out_missing_fields(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.post(f"{ROOT}/contacts").respond(
        200, json={"payload": {"contact": {"id": 814}, "contact_inbox": {"inbox": None, "source_id": None}}}
    )
    assert await client.create_contact(name=None, phone_number="+4930123456") == {"id": 814}
    assert body(only_request(route)) == {"phone_number": "+4930123456"}
    assert_all_valid(router, bot_token=BOT)


async def test_update_contact_puts_the_given_fields_and_returns_the_payload(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.put(f"{ROOT}/contacts/812").respond(200, json={"payload": {"id": 812, "name": "Jane Guest"}})
    updated = await client.update_contact(
        812, name="Jane Guest", email=None, custom_attributes={"last_stay": "2026-06"}
    )
    assert updated == {"id": 812, "name": "Jane Guest"}
    request = only_request(route)
    assert request.headers["api_access_token"] == USER
    assert body(request) == {"name": "Jane Guest", "custom_attributes": {"last_stay": "2026-06"}}
    assert_all_valid(router, bot_token=BOT)


async def test_contact_conversations(client: ChatwootClient, router: respx.MockRouter) -> None:
    conversations = [{"id": 57, "status": "resolved", "inbox_id": 3}, {"id": 61, "status": "open", "inbox_id": 4}]
    route = router.get(f"{ROOT}/contacts/812/conversations").respond(200, json={"payload": conversations})
    assert await client.contact_conversations(812) == conversations
    assert only_request(route).headers["api_access_token"] == USER
    assert_all_valid(router, bot_token=BOT)


async def test_create_conversation(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.post(f"{ROOT}/conversations").respond(200, json={"id": 62, "status": "pending", "inbox_id": 4})
    created = await client.create_conversation(inbox_id=4, contact_id=813, status="open")
    assert created == {"id": 62, "status": "pending", "inbox_id": 4}
    request = only_request(route)
    assert request.headers["api_access_token"] == USER
    assert body(request) == {"inbox_id": 4, "contact_id": 813, "status": "open"}
    assert_all_valid(router, bot_token=BOT)


async def test_create_conversation_with_source_id(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.post(f"{ROOT}/conversations").respond(200, json={"id": 63})
    await client.create_conversation(inbox_id=4, contact_id=813, source_id="8f3c")
    assert body(only_request(route)) == {"inbox_id": 4, "contact_id": 813, "source_id": "8f3c"}
    assert_all_valid(router, bot_token=BOT)


@pytest.mark.parametrize(
    ("source_id", "sent"),
    [
        (None, {"inbox_id": 4}),
        ("4915112345678", {"inbox_id": 4, "source_id": "4915112345678"}),
    ],
)
async def test_create_contact_inbox(
    client: ChatwootClient, router: respx.MockRouter, source_id: str | None, sent: dict[str, Any]
) -> None:
    answer = {"source_id": source_id or "generated", "inbox": {"id": 4, "name": "Phone"}}
    route = router.post(f"{ROOT}/contacts/813/contact_inboxes").respond(200, json=answer)
    assert await client.create_contact_inbox(813, 4, source_id) == answer
    request = only_request(route)
    assert request.headers["api_access_token"] == USER
    assert body(request) == sent
    assert_all_valid(router, bot_token=BOT)


UserCall = Callable[[ChatwootClient], Awaitable[Any]]
USER_CALLS: dict[str, UserCall] = {
    "list_messages": lambda c: c.list_messages(57),
    "search_contacts": lambda c: c.search_contacts("jane"),
    "filter_contacts": lambda c: c.filter_contacts("email", "jane@guest.test"),
    "create_contact": lambda c: c.create_contact(name="Jane"),
    "update_contact": lambda c: c.update_contact(812, name="Jane"),
    "contact_conversations": lambda c: c.contact_conversations(812),
    "create_conversation": lambda c: c.create_conversation(inbox_id=4, contact_id=812),
    "create_contact_inbox": lambda c: c.create_contact_inbox(812, 4),
}


@pytest.mark.parametrize("method", sorted(USER_CALLS))
async def test_user_token_methods_without_api_token_fail_before_sending(
    http: httpx.AsyncClient, router: respx.MockRouter, method: str
) -> None:
    client = ChatwootClient(http, BASE, 1, BOT, None, sleep=no_sleep)
    with pytest.raises(ChatwootConfigError, match="needs CHATWOOT_API_TOKEN") as raised:
        await USER_CALLS[method](client)
    assert BOT not in str(raised.value)
    assert router.calls.call_count == 0


@pytest.mark.parametrize(
    ("base_url", "account_id", "variable"), [("", 1, "CHATWOOT_URL"), (BASE, 0, "CHATWOOT_ACCOUNT_ID")]
)
def test_missing_url_or_account_is_a_config_error(
    http: httpx.AsyncClient, base_url: str, account_id: int, variable: str
) -> None:
    with pytest.raises(ChatwootConfigError, match=variable):
        ChatwootClient(http, base_url, account_id, BOT, USER)


async def test_base_url_with_a_path_prefix(http: httpx.AsyncClient, router: respx.MockRouter) -> None:
    client = ChatwootClient(http, "https://acme.test/chatwoot/", 1, BOT, USER, sleep=no_sleep)
    route = router.get("https://acme.test/chatwoot/api/v1/accounts/1/conversations/57/labels").respond(
        200, json={"payload": []}
    )
    assert await client.get_labels(57) == []
    assert route.call_count == 1
    assert_all_valid(router, bot_token=BOT, base_path="/chatwoot")
