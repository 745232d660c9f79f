import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from bot.answer.errors import LLMUnavailable
from bot.answer.groq_llm import GroqLLM, llm_from_settings, sdk_base_url, sentences
from bot.answer.llm import Usage
from bot.answer.types import ChatMessage
from config.settings import load_settings
from tests.answer.support import CHAT_URL, completion, sse_response

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are the messaging assistant of a short-term-rental host."},
    {"role": "user", "content": "<guest_message>\nWhat time is check-out?\n</guest_message>"},
]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


async def test_complete_posts_the_chat_request_under_the_service_root(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(CHAT_URL).respond(
        json=completion("<think>They ask about check-out.</think>\nCheck-out is at 11:00.")
    )
    llm = GroqLLM(http, api_key="gsk_test", base_url="https://api.groq.com")

    result = await llm.complete(MESSAGES)

    assert result.text == "Check-out is at 11:00."
    assert result.model == "openai/gpt-oss-120b"
    assert result.usage == Usage(prompt_tokens=321, completion_tokens=45, total_tokens=366)
    assert result.finish_reason == "stop"
    request = route.calls.last.request
    assert request.url == CHAT_URL
    assert request.headers["authorization"] == "Bearer gsk_test"
    assert body(request) == {
        "messages": MESSAGES,
        "model": "openai/gpt-oss-120b",
        "temperature": 0.2,
        "max_completion_tokens": 1024,
        "reasoning_format": "hidden",
        "reasoning_effort": "low",
        "stream": False,
    }
    assert not http.is_closed  # the shared client belongs to the caller


async def test_a_base_url_copied_with_the_openai_path_is_not_doubled(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    assert sdk_base_url("https://api.groq.com/openai/v1/") == "https://api.groq.com"
    assert sdk_base_url("http://proxy.internal:8080/groq") == "http://proxy.internal:8080/groq"
    route = respx_mock.post(CHAT_URL).respond(json=completion("Hi."))
    await GroqLLM(http, api_key="k", base_url="https://api.groq.com/openai/v1").complete(MESSAGES)
    assert route.call_count == 1


async def test_options_can_be_left_out_for_non_reasoning_models(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(CHAT_URL).respond(json=completion("Hi.", model="some/other-model"))
    llm = GroqLLM(
        http, api_key="k", model="some/other-model", reasoning_format=None, temperature=0.0, max_completion_tokens=300
    )
    result = await llm.complete(MESSAGES)
    assert result.model == "some/other-model"
    assert body(route.calls.last.request) == {
        "messages": MESSAGES,
        "model": "some/other-model",
        "temperature": 0.0,
        "max_completion_tokens": 300,
        "stream": False,
    }


async def test_rate_limit_with_retry_after_is_retried_by_the_sdk(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    limited = httpx.Response(
        429,
        headers={"retry-after": "0"},
        json={
            "error": {
                "message": "Rate limit reached. Please try again in 0s.",
                "type": "tokens",
                "code": "rate_limit_exceeded",
            }
        },
    )
    route = respx_mock.post(CHAT_URL).mock(side_effect=[limited, httpx.Response(200, json=completion("Ok."))])
    # The SDK obeys retry-after only within (0, 60] s; for "0" it waits its own first backoff (about 0.5 s).

    result = await GroqLLM(http, api_key="k").complete(MESSAGES)

    assert result.text == "Ok."
    assert route.call_count == 2
    assert route.calls[1].request.headers["x-stainless-retry-count"] == "1"
    assert body(route.calls[1].request) == body(route.calls[0].request)


@pytest.mark.parametrize(
    ("status", "kind", "hint"),
    [
        (503, "server", "Groq answered with a server error; it is usually temporary"),
        (500, "server", "Groq answered with a server error; it is usually temporary"),
        (429, "rate_limit", "Groq rate limit reached; it clears by itself, or raise the plan's limits"),
    ],
)
async def test_retryable_errors_until_retries_run_out_raise_llm_unavailable(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int, kind: str, hint: str
) -> None:
    # retry-after-ms keeps the SDK's waits at 1 ms; without it the SDK backs off 0.5 s, then 1 s.
    failing = httpx.Response(status, headers={"retry-after-ms": "1"}, json={"error": {"message": "busy"}})
    route = respx_mock.post(CHAT_URL).mock(return_value=failing)

    with pytest.raises(LLMUnavailable) as caught:
        await GroqLLM(http, api_key="k", max_retries=2).complete(MESSAGES)

    assert route.call_count == 3
    assert caught.value.kind == kind
    assert caught.value.status == status
    assert caught.value.hint == hint


@pytest.mark.parametrize(
    ("status", "kind", "hint_names"),
    [(401, "auth", "GROQ_API_KEY"), (404, "rejected", "GROQ_MODEL"), (400, "rejected", "GROQ_MODEL")],
)
async def test_client_errors_are_not_retried_and_name_the_setting(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int, kind: str, hint_names: str
) -> None:
    route = respx_mock.post(CHAT_URL).respond(status, json={"error": {"message": "nope", "code": "model_not_found"}})
    with pytest.raises(LLMUnavailable) as caught:
        await GroqLLM(http, api_key="k").complete(MESSAGES)
    assert route.call_count == 1
    assert caught.value.kind == kind
    assert caught.value.status == status
    assert hint_names in caught.value.hint


@pytest.mark.parametrize(
    ("error", "kind"),
    [(httpx.ReadTimeout("slow"), "timeout"), (httpx.ConnectError("refused"), "connection")],
)
async def test_transport_failures_raise_llm_unavailable(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter, error: Exception, kind: str
) -> None:
    route = respx_mock.post(CHAT_URL).mock(side_effect=error)
    with pytest.raises(LLMUnavailable) as caught:
        await GroqLLM(http, api_key="k", max_retries=0).complete(MESSAGES)
    assert route.call_count == 1
    assert caught.value.kind == kind


async def test_stream_yields_deltas_without_reasoning_split_across_events(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    deltas = ["<thi", "nk>short plan</th", "ink>", "\nCheck-out is", " at 11:00. Leave the", " keys inside. Thanks!"]
    route = respx_mock.post(CHAT_URL).mock(return_value=sse_response(deltas))

    got = [d async for d in GroqLLM(http, api_key="k").stream(MESSAGES)]

    assert "".join(got) == "Check-out is at 11:00. Leave the keys inside. Thanks!"
    assert body(route.calls.last.request) == {
        "messages": MESSAGES,
        "model": "openai/gpt-oss-120b",
        "temperature": 0.2,
        "max_completion_tokens": 1024,
        "reasoning_format": "hidden",
        "reasoning_effort": "low",
        "stream": True,
    }


async def test_stream_grouped_into_sentences_for_speech(http: httpx.AsyncClient, respx_mock: respx.MockRouter) -> None:
    deltas = ["Olá Ana! O check", "-out é às 11:00. Deixe as chaves na", " mesa, por favor."]
    respx_mock.post(CHAT_URL).mock(return_value=sse_response(deltas))

    got = [s async for s in sentences(GroqLLM(http, api_key="k").stream(MESSAGES))]

    assert got == ["Olá Ana!", "O check-out é às 11:00.", "Deixe as chaves na mesa, por favor."]


async def test_an_error_event_mid_stream_raises_llm_unavailable(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(CHAT_URL).mock(return_value=sse_response(["Check-out is "], error="upstream reset"))
    got: list[str] = []
    with pytest.raises(LLMUnavailable) as caught:
        async for delta in GroqLLM(http, api_key="k").stream(MESSAGES):
            got.append(delta)
    assert got == ["Check-out is "]
    assert caught.value.kind == "stream"


async def test_a_stream_that_cannot_open_raises_llm_unavailable(
    http: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(CHAT_URL).respond(401, json={"error": {"message": "Invalid API Key"}})
    with pytest.raises(LLMUnavailable) as caught:
        async for _ in GroqLLM(http, api_key="bad").stream(MESSAGES):
            pass
    assert caught.value.kind == "auth"


async def test_llm_from_settings(http: httpx.AsyncClient, respx_mock: respx.MockRouter) -> None:
    assert llm_from_settings(load_settings({}), http) is None
    assert llm_from_settings(load_settings({"GROQ_API_KEY": ""}), http) is None

    settings = load_settings(
        {"GROQ_API_KEY": "gsk_x", "GROQ_MODEL": "qwen/qwen3.6-27b", "GROQ_BASE_URL": "https://groq-proxy.example.com/"}
    )
    llm = llm_from_settings(settings, http, reasoning_format=None)
    assert llm is not None and llm.model == "qwen/qwen3.6-27b"
    route = respx_mock.post("https://groq-proxy.example.com/openai/v1/chat/completions").respond(
        json=completion("Hi.", model="qwen/qwen3.6-27b")
    )
    await llm.complete(MESSAGES)
    sent = body(route.calls.last.request)
    assert sent["model"] == "qwen/qwen3.6-27b"
    assert "reasoning_effort" not in sent and "reasoning_format" not in sent
