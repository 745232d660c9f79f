from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
import respx

from bot.answer.errors import LLMUnavailable
from bot.answer.groq_llm import GroqLLM
from bot.answer.offline import OFFLINE_PREFIX
from bot.answer.pipeline import (
    AnswerOutcome,
    answer_question,
    detect_human_request,
    parse_llm_answer,
    unsupported_numbers,
)
from bot.answer.types import Answer, GuestFacts, Handoff, Turn
from tests.answer.support import CHAT_URL, Chunk, FakeLLM, completion

CHUNKS = [
    Chunk("Check-out is at 11:00. Leave the keys on the table.", "house-rules.md", "Check-out", score=0.7),
    Chunk("The key box code is 4821.", "arrival.md", "Access", score=0.5),
    Chunk("Late check-out until 13:00 costs 30 EUR.", "house-rules.md", "Check-out", score=0.45),
]


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a person?",
        "I want to speak with a real human please",
        "human",
        "AGENT!!",
        "Please connect me to an agent",
        "Posso falar com uma pessoa?",
        "Quero falar com alguém, por favor",
        "Preciso de atendimento humano",
        "¿Puedo hablar con una persona?",
        "Quiero hablar con el anfitrión",
        "Kann ich mit einem Menschen sprechen?",
        "Ich möchte bitte mit einem echten Menschen reden",
        "Je voudrais parler à une personne",
        "Puis-je parler avec quelqu’un ?",
    ],
)
def test_requests_for_a_person_are_detected(text: str) -> None:
    assert detect_human_request(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "thanks",
        "Thank you so much!",
        "What time is check-out?",
        "the human body of the apartment",
        "Is the agency's agent coming to clean?",
        "Who is the host?",
        "I spoke to a person at the bakery yesterday",
        "A pessoa que limpa vem amanhã?",
        "Die Person im Erdgeschoss ist sehr nett",
        "Obrigado!",
        "Merci beaucoup",
    ],
)
def test_ordinary_messages_are_not_requests_for_a_person(text: str) -> None:
    assert detect_human_request(text) is False


@pytest.mark.parametrize(
    ("reply", "parsed"),
    [
        ("HANDOFF: pets are not covered", Handoff("pets are not covered")),
        ("**HANDOFF:** guest wants a refund", Handoff("guest wants a refund")),
        ("handoff - no info", Handoff("no info")),
        ("HANDOFF", Handoff("unspecified")),
        ("I'm not sure about that.\nHANDOFF: not in context", Handoff("not in context")),
        ("<think>no idea</think>HANDOFF: unknown", Handoff("unknown")),
        ("", Handoff("empty_answer")),
        ("<think>ran out of tokens", Handoff("empty_answer")),
        ("  Check-out is at 11:00.  ", Answer("Check-out is at 11:00.")),
        ("Handoff of the keys is at 15:00.", Answer("Handoff of the keys is at 15:00.")),
        (
            "Check-out is at 11:00 [1]. Late check-out costs 30 EUR [1, 3].",
            Answer("Check-out is at 11:00. Late check-out costs 30 EUR."),
        ),
        ("[2]", Handoff("empty_answer")),
    ],
)
def test_parse_llm_answer(reply: str, parsed: Answer | Handoff) -> None:
    assert parse_llm_answer(reply) == parsed


def test_unsupported_numbers_ignores_formatting_but_not_digits() -> None:
    evidence = "Call +351 912 345 678. Code 4821. Check-out 11:00 on 2026-11-22. Garage 1200 EUR/month."
    assert unsupported_numbers("Call +351912345678 or 912 345 678; code 4821 by 11:00 on 22/11/2026.", evidence) == []
    assert unsupported_numbers("The garage is 1.200 EUR a month.", evidence) == []
    assert unsupported_numbers("The code is 1234 and parking is 25 EUR.", evidence) == ["1234"]
    assert unsupported_numbers("Call 912 345 679.", evidence) == ["679"]
    assert unsupported_numbers("The key box code is 4821.", "Key box code: 4 8 2 1.") == []


async def test_a_good_answer_carries_its_sources_and_model() -> None:
    llm = FakeLLM("Check-out is at 11:00; late check-out until 13:00 costs 30 EUR.")
    outcome = await answer_question("When is check-out?", chunks=CHUNKS, turns=[], facts=None, llm=llm)

    assert outcome.kind == "answer"
    assert outcome.text == "Check-out is at 11:00; late check-out until 13:00 costs 30 EUR."
    assert outcome.reason is None
    assert outcome.sources == [("house-rules.md", "Check-out"), ("arrival.md", "Access")]
    assert outcome.model == "fake-model"
    assert outcome.latency_ms >= 0
    [messages] = llm.calls
    assert messages[0]["content"].startswith("You are the messaging assistant of a short-term-rental host.")
    assert "[2] (arrival.md › Access) The key box code is 4821." in messages[0]["content"]
    assert messages[1]["content"].endswith("<guest_message>\nWhen is check-out?\n</guest_message>")


async def test_a_request_for_a_person_hands_off_without_asking_the_model() -> None:
    llm = FakeLLM("unused")
    outcome = await answer_question("Posso falar com uma pessoa?", chunks=CHUNKS, llm=llm)
    assert (outcome.kind, outcome.reason, outcome.model) == ("handoff", "human_requested", "none")
    assert outcome.text == "The guest asked to talk to a person. Over to you."
    assert llm.calls == []


async def test_no_passages_and_no_facts_hand_off_without_asking_the_model() -> None:
    llm = FakeLLM("unused")
    outcome = await answer_question("Is there a sauna?", chunks=[], facts=GuestFacts(), llm=llm)
    assert outcome == AnswerOutcome(
        "handoff",
        "The bot found nothing in the guides or the booking about this question. Over to you.",
        "no_context",
        [],
        "none",
        outcome.latency_ms,
        None,
    )
    assert llm.calls == []


async def test_facts_alone_are_enough_context() -> None:
    llm = FakeLLM("You check in on Friday from 15:00.")
    facts = GuestFacts(check_in_date=date(2026, 11, 20), check_in_time="15:00")
    outcome = await answer_question("When do I check in?", chunks=[], facts=facts, llm=llm)
    assert (outcome.kind, outcome.text, outcome.sources) == ("answer", "You check in on Friday from 15:00.", [])
    assert "- Check-in: Friday 2026-11-20 from 15:00" in llm.calls[0][0]["content"]


async def test_the_model_handing_off_becomes_a_handoff_with_its_reason() -> None:
    outcome = await answer_question("Can I bring my dog?", chunks=CHUNKS, llm=FakeLLM("HANDOFF: pets not covered"))
    assert (outcome.kind, outcome.reason, outcome.detail) == ("handoff", "model_handoff", "pets not covered")
    assert outcome.text == "The bot could not answer from the guides (pets not covered). Over to you."
    assert outcome.model == "fake-model"


async def test_an_empty_model_answer_hands_off() -> None:
    outcome = await answer_question("When is check-out?", chunks=CHUNKS, llm=FakeLLM("<think>hmm</think>  "))
    assert (outcome.kind, outcome.reason, outcome.text) == (
        "handoff",
        "empty_answer",
        "The AI returned an empty answer. Over to you.",
    )


async def test_an_invented_code_is_not_sent() -> None:
    outcome = await answer_question("What's the door code?", chunks=CHUNKS, llm=FakeLLM("The door code is 1234."))
    assert (outcome.kind, outcome.reason, outcome.detail) == ("handoff", "unverified_number", "1234")
    assert outcome.text == (
        "The AI's draft contained numbers not found in the guides (1234); it was not sent. Over to you."
    )


async def test_numbers_from_the_conversation_count_as_evidence() -> None:
    turns = [Turn("guest", "We are 3 people, booking HMX12345.")]
    outcome = await answer_question(
        "Is HMX12345 confirmed for check-out at 11:00?",
        chunks=CHUNKS,
        turns=turns,
        llm=FakeLLM("Booking HMX12345: check-out is at 11:00."),
    )
    assert outcome.kind == "answer"


async def test_an_unavailable_model_hands_off_saying_the_ai_is_unavailable() -> None:
    llm = FakeLLM(LLMUnavailable("rate_limit", "429 after retries", status=429))
    outcome = await answer_question("When is check-out?", chunks=CHUNKS, llm=llm)
    assert (outcome.kind, outcome.reason, outcome.model) == ("handoff", "llm_unavailable", "fake-model")
    assert outcome.text == (
        "The AI is unavailable (Groq rate limit reached; it clears by itself, or raise the "
        "plan's limits), so the bot handed this conversation off. Over to you."
    )


async def test_without_a_model_the_guides_are_quoted_offline() -> None:
    outcome = await answer_question("What time is check-out?", chunks=CHUNKS, llm=None)
    assert outcome.kind == "answer"
    assert outcome.model == "offline"
    assert outcome.text == "\n".join([OFFLINE_PREFIX, "Check-out is at 11:00.", "Sources: house-rules.md › Check-out"])
    assert outcome.sources == [("house-rules.md", "Check-out")]


async def test_without_a_model_an_unanswerable_question_hands_off() -> None:
    outcome = await answer_question("Is there a sauna?", chunks=CHUNKS, llm=None)
    assert (outcome.kind, outcome.reason, outcome.model, outcome.detail) == (
        "handoff",
        "not_found",
        "offline",
        "not found in our guides",
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_groq_failing_after_retries_hands_off(http: httpx.AsyncClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(CHAT_URL).respond(500, headers={"retry-after-ms": "1"}, json={"error": {"message": "x"}})
    llm = GroqLLM(http, api_key="k", max_retries=1)
    outcome = await answer_question("When is check-out?", chunks=CHUNKS, llm=llm)
    assert route.call_count == 2
    assert (outcome.kind, outcome.reason, outcome.model) == ("handoff", "llm_unavailable", "openai/gpt-oss-120b")


async def test_groq_answer_end_to_end(http: httpx.AsyncClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(CHAT_URL).respond(json=completion("<think>easy</think>O check-out é às 11:00."))
    outcome = await answer_question("A que horas é o check-out?", chunks=CHUNKS[:1], llm=GroqLLM(http, api_key="k"))
    assert (outcome.kind, outcome.text, outcome.sources, outcome.model) == (
        "answer",
        "O check-out é às 11:00.",
        [("house-rules.md", "Check-out")],
        "openai/gpt-oss-120b",
    )
