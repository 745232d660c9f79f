"""Aircall Public API client: auth, fresh media URLs, rate limits (429 + Retry-After), errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from integrations.aircall.client import (
    AircallAuthError,
    AircallClient,
    AircallConfigError,
    AircallError,
    AircallRetryable,
)
from integrations.aircall.tests.conftest import payload

API = "https://api.aircall.test"
Api = tuple[AircallClient, respx.MockRouter, list[float]]
FRESH = (
    "https://aircall-prod-voicemails.s3.eu-west-1.amazonaws.com/calls/2187411752/voicemail.mp3?X-Amz-Signature=fresh"
)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    router = respx.MockRouter(assert_all_called=False, base_url=API)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http:
        yield AircallClient(http, API + "/", "api-id", "api-secret", sleep=sleep), router, waits


def call_body(**changes: object) -> dict[str, object]:
    data = payload("call.voicemail_left")["data"]
    data.update(changes)
    return {"call": data}


async def test_get_call_uses_basic_auth_and_parses_the_call(api: Api) -> None:
    client, router, _ = api
    route = router.get("/v1/calls/2187411752").respond(200, json=call_body(voicemail=FRESH))
    assert await client.fresh_media_url(2187411752, "voicemail") == FRESH
    request = route.calls.last.request
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"api-id:api-secret").decode()
    assert str(request.url) == f"{API}/v1/calls/2187411752"
    assert await client.fresh_media_url(2187411752, "recording") is None


async def test_429_waits_for_retry_after_then_succeeds(api: Api) -> None:
    client, router, waits = api
    router.get("/v1/calls/1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "Too many requests"}),
            httpx.Response(503),
            httpx.Response(200, json=call_body(id=1)),
        ]
    )
    call = await client.get_call(1)
    assert call.id == 1
    assert waits == [7.0, 2.0]  # Retry-After honoured, then exponential backoff (1 s · 2^1)


async def test_rate_limit_reset_header_is_used_without_retry_after(api: Api) -> None:
    client, router, waits = api
    router.get("/v1/calls/1").mock(
        side_effect=[
            httpx.Response(429, headers={"X-AircallApi-Reset": "1"}),  # long past: wait nothing
            httpx.Response(200, json=call_body(id=1)),
        ]
    )
    await client.get_call(1)
    assert waits == [0.0]


async def test_retries_give_up_with_a_retryable_error(api: Api) -> None:
    client, router, waits = api
    route = router.get("/v1/calls/1").respond(429, headers={"Retry-After": "500"})
    with pytest.raises(AircallRetryable) as caught:
        await client.get_call(1)
    assert caught.value.status == 429 and route.call_count == 4
    assert waits == [60.0, 60.0, 60.0]  # capped


async def test_auth_failure_names_the_settings_and_hides_secrets(api: Api) -> None:
    client, router, _ = api
    router.get("/v1/calls/1").respond(401, text="invalid credentials for api-secret")
    with pytest.raises(AircallAuthError, match="AIRCALL_API_ID and AIRCALL_API_TOKEN") as caught:
        await client.get_call(1)
    assert "api-secret" not in str(caught.value)


async def test_transcription_and_summary(api: Api) -> None:
    client, router, _ = api
    transcript = payload("transcription.created")["data"]
    router.get("/v1/calls/5/transcription").respond(200, json={"transcription": transcript})
    router.get("/v1/calls/5/summary").respond(404, json={"error": "Not found"})
    transcription = await client.get_transcription(5)
    assert transcription is not None and transcription.content is not None
    assert len(transcription.content.utterances) == 4
    assert await client.get_summary(5) is None


async def test_body_without_call_is_an_error(api: Api) -> None:
    client, router, _ = api
    router.get("/v1/calls/1").respond(200, json={"calls": []})
    with pytest.raises(AircallError, match="without a 'call' object"):
        await client.get_call(1)


async def test_transport_errors_are_retried(api: Api) -> None:
    client, router, waits = api
    router.get("/v1/calls/1").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=call_body(id=1))]
    )
    assert (await client.get_call(1)).id == 1
    assert waits == [1.0]


async def test_missing_credentials_name_the_variables() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(AircallConfigError, match="AIRCALL_API_ID and AIRCALL_API_TOKEN"):
            AircallClient(http, API, "id", None)
