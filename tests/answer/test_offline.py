from datetime import date

import pytest

from bot.answer.offline import NOT_FOUND, OFFLINE_PREFIX, offline_answer, terms, unwrap
from bot.answer.types import Answer, GuestFacts, Handoff
from tests.answer.support import Chunk

GUIDES = [
    Chunk(
        "Check-out is at 11:00. Please leave the keys on the kitchen table and close the windows. "
        "Quiet hours start at 22:00.",
        "house-rules.md",
        "Check-out",
        score=0.62,
    ),
    Chunk(
        "## Wi-Fi\n- Network: CasaAzul\n- Password: **sunshine2024**\nThe router is in the hallway cupboard.",
        "guide/wifi.md",
        "Wi-Fi",
        score=0.55,
    ),
    Chunk(
        "There is free street parking in front of the building. The public garage on Rua Nova costs "
        "15 EUR per day. Bikes can be locked in the courtyard.",
        "area.md",
        "Getting around",
        score=0.5,
    ),
    Chunk("Check-in is from 15:00. The key box is next to the door.", "arrival.md", "Check-in", score=0.4),
]


def answer(*lines: str) -> str:
    return "\n".join([OFFLINE_PREFIX, *lines])


def test_check_out_time() -> None:
    assert offline_answer("What time is check-out?", GUIDES) == Answer(
        answer("Check-out is at 11:00.", "Sources: house-rules.md › Check-out"),
        (("house-rules.md", "Check-out"),),
    )


def test_parking() -> None:
    assert offline_answer("Is there parking?", GUIDES) == Answer(
        answer(
            "There is free street parking in front of the building.",
            "The public garage on Rua Nova costs 15 EUR per day.",
            "Sources: area.md › Getting around",
        ),
        (("area.md", "Getting around"),),
    )


@pytest.mark.parametrize(
    "question",
    [
        "What's the wifi password?",
        "Qual é a senha do wi-fi?",
        "¿Cuál es la contraseña del wifi?",
        "Wie lautet das WLAN-Passwort?",
    ],
)
def test_wifi_password_in_several_languages(question: str) -> None:
    result = offline_answer(question, GUIDES)
    assert isinstance(result, Answer)
    assert result == Answer(
        answer("Password: sunshine2024", "Sources: guide/wifi.md › Wi-Fi"), (("guide/wifi.md", "Wi-Fi"),)
    )


def test_the_network_name_comes_along_when_asked_for_the_wifi() -> None:
    assert offline_answer("What is the wifi?", GUIDES) == Answer(
        answer(
            "Network: CasaAzul",
            "Password: sunshine2024",
            "The router is in the hallway cupboard.",
            "Sources: guide/wifi.md › Wi-Fi",
        ),
        (("guide/wifi.md", "Wi-Fi"),),
    )


def test_heading_match_alone_quotes_the_section() -> None:
    chunks = [Chunk("Please be out by 10:30. Strip the beds first.", "rules.md", "Checkout", score=0.5)]
    assert offline_answer("When is check out?", chunks) == Answer(
        answer("Please be out by 10:30.", "Strip the beds first.", "Sources: rules.md › Checkout"),
        (("rules.md", "Checkout"),),
    )


def test_booking_facts_answer_questions_about_the_stay() -> None:
    facts = GuestFacts(check_in_date=date(2026, 11, 20), check_in_time="16:00", property_name="Casa Azul")
    assert offline_answer("When is my check-in?", [], facts) == Answer(
        answer("Check-in: Friday 2026-11-20 from 16:00", "Sources: reservation"), (("reservation", None),)
    )


@pytest.mark.parametrize("question", ["Can I bring my dog?", "thanks", "Is there a sauna?", "?"])
def test_nothing_relevant_hands_off(question: str) -> None:
    assert offline_answer(question, GUIDES) == Handoff(NOT_FOUND)


def test_rrf_scores_are_not_mistaken_for_weak_matches() -> None:
    # bot.knowledge returns RRF fusion scores (about 0.016-0.033), so there is no score gate by default.
    ranked = [Chunk("Parking is free on Sundays.", "area.md", score=1 / 61 + 1 / 62)]
    assert offline_answer("Is there parking?", ranked) == Answer(
        answer("Parking is free on Sundays.", "Sources: area.md"), (("area.md", None),)
    )


def test_a_score_gate_can_be_set_for_cosine_scores() -> None:
    weak = [Chunk("Parking is free on Sundays.", "area.md", score=0.1)]
    assert offline_answer("Is there parking?", weak, min_score=0.25) == Handoff("not found in our guides")


def test_terms_unify_spellings_and_languages() -> None:
    assert terms("Check out") == terms("check-out") == terms("CHECKOUT") == {"checkout"}
    assert terms("Wo kann ich parken?") == {"parking"}
    assert terms("Where are the towels?") == {"towel"}


def test_same_input_same_answer() -> None:
    first = offline_answer("Is there parking near the building?", GUIDES)
    assert all(offline_answer("Is there parking near the building?", GUIDES) == first for _ in range(5))


# Hard-wrapped like the example guides, ranked as the retriever ranks them (RRF scores).
WRAPPED = [
    Chunk(
        "The router is on the bookshelf in the living room. Network: Alfama-Terrace. Password: azulejo-1755.\n"
        "Speed is about 200 Mbit/s; the terrace has coverage too.",
        "lis-alfama/en/guide.md",
        "In the apartment > Wi-Fi",
        score=0.05,
    ),
    Chunk(
        "O router está na estante da sala. Rede: Alfama-Terrace. Senha: azulejo-1755.",
        "lis-alfama/pt/guia.md",
        "No apartamento > Wi-Fi",
        language="pt",
        score=0.048,
    ),
    Chunk(
        "Door codes, key-box codes and Wi-Fi passwords are shared two days before check-in, in this chat,\n"
        "once the booking is confirmed.",
        "shared/en/faq.md",
        "When do I get the access details?",
        score=0.033,
    ),
    Chunk(
        "Check-in is from 15:00 (3 pm). Self check-in is available until midnight; if you arrive later, tell\n"
        "us the day before. You can leave luggage in the entrance cupboard from 11:00.",
        "lis-alfama/en/guide.md",
        "Arrival and departure > Check-in",
        score=0.032,
    ),
    Chunk(
        "Check-out is by 11:00 (11 am). Late check-out until 13:00 costs 20 EUR and depends on the next\n"
        "booking – ask the day before.",
        "lis-alfama/en/guide.md",
        "Arrival and departure > Check-out",
        score=0.031,
    ),
]


def test_the_passage_that_covers_the_question_is_quoted_in_the_retrievers_order() -> None:
    # The FAQ speaks of "Wi-Fi passwords" too, but the Wi-Fi section covers the question as well and ranks first;
    # the Portuguese copy of the section does not repeat it.
    assert offline_answer("What's the wifi password?", WRAPPED) == Answer(
        answer("Password: azulejo-1755.", "Sources: lis-alfama/en/guide.md › In the apartment > Wi-Fi"),
        (("lis-alfama/en/guide.md", "In the apartment > Wi-Fi"),),
    )


def test_hard_wrapped_sentences_are_quoted_whole() -> None:
    assert offline_answer("Where can I leave my luggage?", WRAPPED) == Answer(
        answer(
            "You can leave luggage in the entrance cupboard from 11:00.",
            "Sources: lis-alfama/en/guide.md › Arrival and departure > Check-in",
        ),
        (("lis-alfama/en/guide.md", "Arrival and departure > Check-in"),),
    )
    late = offline_answer("How much is a late check-out?", WRAPPED)
    assert isinstance(late, Answer)
    assert "Late check-out until 13:00 costs 20 EUR and depends on the next booking – ask the day before." in late.text


def test_a_second_passage_covers_what_the_first_leaves_out() -> None:
    # Check-out is the rarer term, so its section leads; the Check-in section (not the FAQ that merely
    # mentions check-in) completes the answer.
    assert offline_answer("When are check-in and check-out?", WRAPPED) == Answer(
        answer(
            "Check-out is by 11:00 (11 am).",
            "Late check-out until 13:00 costs 20 EUR and depends on the next booking – ask the day before.",
            "Check-in is from 15:00 (3 pm).",
            "Sources: lis-alfama/en/guide.md › Arrival and departure > Check-out; "
            "lis-alfama/en/guide.md › Arrival and departure > Check-in",
        ),
        (
            ("lis-alfama/en/guide.md", "Arrival and departure > Check-out"),
            ("lis-alfama/en/guide.md", "Arrival and departure > Check-in"),
        ),
    )


def test_unwrap_keeps_paragraphs_items_and_headings_apart() -> None:
    text = "## Wi-Fi\nThe router is\nin the hall.\n- Network: X\n- Password: Y\nAsk us.\n\nNew paragraph\ngoes on."
    assert unwrap(text) == (
        "## Wi-Fi\nThe router is in the hall.\n- Network: X\n- Password: Y\nAsk us.\n\nNew paragraph goes on."
    )
