"""How ChatwootClient maps failures onto its error tree, and when it retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

from integrations.chatwoot.client import (
    ChatwootAuthError,
    ChatwootBadRequest,
    ChatwootClient,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRetryable,
    parse_retry_after,
)

BASE = "https://chat.acme.test"
ROOT = f"{BASE}/api/v1/accounts/1"
BOT = "bot-token-3f9a"
USER = "user-token-77c1"
LABELS = f"{ROOT}/conversations/57/labels"
MESSAGES = f"{ROOT}/conversations/57/messages"
SENT = {"id": 9121, "content": "hi"}


class Sleeps:
    """Records the waits the client asks for, instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(sleeps: Sleeps) -> AsyncIterator[ChatwootClient]:
    async with httpx.AsyncClient() as http:
        yield ChatwootClient(http, BASE, 1, BOT, USER, sleep=sleeps)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


# --------------------------------------------------------------------------------- retries


async def test_429_with_retry_after_waits_that_long_then_succeeds(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(LABELS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "Too many requests"}),
            httpx.Response(200, json={"payload": ["vip"]}),
        ]
    )
    assert await client.get_labels(57) == ["vip"]
    assert route.call_count == 2
    assert sleeps.waits == [3.0]


async def test_retry_after_is_capped(client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps) -> None:
    router.get(LABELS).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, json={"payload": []})]
    )
    assert await client.get_labels(57) == []
    assert sleeps.waits == [30.0]


async def test_429_on_a_new_message_is_retried_because_it_was_not_processed(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.post(MESSAGES).mock(side_effect=[httpx.Response(429), httpx.Response(200, json=SENT)])
    assert await client.post_message(57, "hi") == SENT
    assert route.call_count == 2
    assert sleeps.waits == [0.5]


async def test_persistent_500_gives_up_after_four_attempts_with_backoff(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(LABELS).respond(500, text="Internal Server Error")
    with pytest.raises(ChatwootRetryable) as raised:
        await client.get_labels(57)
    assert raised.value.status == 500
    assert str(raised.value) == "Chatwoot GET /conversations/57/labels answered 500: Internal Server Error"
    assert route.call_count == 4
    assert sleeps.waits == [0.5, 1.0, 2.0]


async def test_attempts_and_backoff_are_configurable(router: respx.MockRouter, sleeps: Sleeps) -> None:
    route = router.get(LABELS).respond(502)
    async with httpx.AsyncClient() as http:
        client = ChatwootClient(http, BASE, 1, BOT, USER, sleep=sleeps, max_attempts=2, backoff=0.01)
        with pytest.raises(ChatwootRetryable):
            await client.get_labels(57)
    assert route.call_count == 2
    assert sleeps.waits == [0.01]


async def test_500_on_a_new_message_is_not_resent_to_avoid_a_duplicate_reply(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.post(MESSAGES).respond(500)
    with pytest.raises(ChatwootRetryable) as raised:
        await client.post_message(57, "hi")
    assert (raised.value.status, raised.value.not_processed) == (500, False)
    assert route.call_count == 1
    assert sleeps.waits == []


async def test_503_on_a_new_message_is_retried(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.post(MESSAGES).mock(side_effect=[httpx.Response(503), httpx.Response(200, json=SENT)])
    assert await client.post_message(57, "hi") == SENT
    assert route.call_count == 2


async def test_connection_refused_is_retried_even_for_a_new_message(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.post(MESSAGES).mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=SENT)])
    assert await client.post_message(57, "hi") == SENT
    assert route.call_count == 2
    assert sleeps.waits == [0.5]


async def test_read_timeout_on_a_new_message_raises_retryable_without_resending(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.post(MESSAGES).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ChatwootRetryable, match="timed out") as raised:
        await client.post_message(57, "hi")
    assert raised.value.status is None
    assert route.call_count == 1


async def test_read_timeout_on_a_read_is_retried(
    client: ChatwootClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(LABELS).mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={"payload": []})])
    assert await client.get_labels(57) == []
    assert route.call_count == 2


async def test_persistent_transport_errors_raise_retryable(client: ChatwootClient, router: respx.MockRouter) -> None:
    route = router.get(LABELS).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ChatwootRetryable, match=r"could not connect.*CHATWOOT_URL"):
        await client.get_labels(57)
    assert route.call_count == 4


# ---------------------------------------------------------------------- no retry, mapped


async def test_401_raises_auth_error_at_once_naming_the_token_but_not_showing_it(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.get(LABELS).respond(401, json={"error": "Access to this endpoint is not authorized for bots"})
    with pytest.raises(ChatwootAuthError) as raised:
        await client.get_labels(57)
    assert raised.value.status == 401
    assert route.call_count == 1
    message = str(raised.value)
    assert "CHATWOOT_BOT_TOKEN" in message and "not authorized for bots" in message
    assert BOT not in message and USER not in message


async def test_403_on_a_user_call_names_the_api_token(client: ChatwootClient, router: respx.MockRouter) -> None:
    router.get(f"{ROOT}/contacts/812/conversations").respond(403)
    with pytest.raises(ChatwootAuthError, match="CHATWOOT_API_TOKEN") as raised:
        await client.contact_conversations(812)
    assert raised.value.status == 403


async def test_404_raises_not_found(client: ChatwootClient, router: respx.MockRouter) -> None:
    router.get(f"{ROOT}/conversations/999").respond(404, json={"error": "Resource could not be found"})
    with pytest.raises(ChatwootNotFound, match=r"answered 404: .*Resource could not be found") as raised:
        await client.get_conversation(999)
    assert raised.value.status == 404


async def test_toggle_typing_still_raises_on_server_errors(client: ChatwootClient, router: respx.MockRouter) -> None:
    router.post(f"{ROOT}/conversations/57/toggle_typing_status").respond(500)
    with pytest.raises(ChatwootRetryable):
        await client.toggle_typing(57, True)


async def test_422_raises_bad_request_with_echoed_tokens_scrubbed(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    route = router.post(f"{ROOT}/contacts").respond(
        422, json={"message": f"Phone number should be in e164 format (token {USER})"}
    )
    with pytest.raises(ChatwootBadRequest) as raised:
        await client.create_contact(name="Jane", phone_number="0151")
    assert raised.value.status == 422
    assert route.call_count == 1
    assert "e164 format (token ***)" in str(raised.value)
    assert USER not in str(raised.value)


async def test_non_json_success_is_an_error_pointing_at_the_url(
    client: ChatwootClient, router: respx.MockRouter
) -> None:
    router.get(f"{ROOT}/conversations/57").respond(200, text="<!doctype html><title>Chatwoot</title>")
    with pytest.raises(ChatwootError, match="not JSON; does CHATWOOT_URL point"):
        await client.get_conversation(57)


async def test_redirect_is_an_error_pointing_at_the_url(client: ChatwootClient, router: respx.MockRouter) -> None:
    router.get(f"{ROOT}/conversations/57").respond(301, headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(ChatwootError, match="CHATWOOT_URL") as raised:
        await client.get_conversation(57)
    assert raised.value.status == 301
    assert type(raised.value) is ChatwootError


def test_every_error_is_a_chatwoot_error() -> None:
    for error in (ChatwootAuthError, ChatwootNotFound, ChatwootBadRequest, ChatwootRetryable):
        assert issubclass(error, ChatwootError)


# ----------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("Thu, 18 Jun 2026 09:41:37 GMT", 30.0),
        ("Thu, 18 Jun 2026 09:40:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=datetime(2026, 6, 18, 9, 41, 7, tzinfo=UTC)) == seconds
