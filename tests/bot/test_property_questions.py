"""A guest without a booking names a property in a general inbox, end to end through POST /webhooks/chatwoot.

Inbox 6 has no `property`: the shared website widget. The example guides are indexed; answers are offline
(quoted sentences with their sources) unless a test puts a Groq stand-in in front of the prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import respx

from bot.agent.properties import WHICH
from bot.agent.verification import ASK
from bot.answer.offline import OFFLINE_PREFIX
from tests.bot.conftest import INBOXES, messages_posted
from tests.bot.guests import ADDRESS, DOOR_CODE, WIFI, book, current, groq_says, message, prompts

PROPERTIES = """
[inboxes.8]
mode = "copilot"

[properties.lis-alfama]
aliases = ["Casa Alfama", "the Lisbon flat", "Portugal"]

[properties.por-ribeira]
aliases = ["Portugal"]

[properties.ber-mitte]
"""
TITLES = {
    "lis-alfama": "Alfama Terrace Apartment",
    "por-ribeira": "Ribeira Riverside Loft",
    "ber-mitte": "Mitte Courtyard Studio",
}
RIBEIRA_GATED = ("7 3 9 0", "DouroRiver2024", "Rua da Fonte Taurina 18")  # its door code, Wi-Fi password, address
BOTH = "Alfama Terrace Apartment or Ribeira Riverside Loft"


@pytest.fixture
def settings(bot_settings: Any, tmp_path: Path) -> Any:
    """The test inboxes plus [properties.*] aliases, and the three rentals in the Guesty mirror."""
    path = tmp_path / "inboxes-with-properties.toml"
    path.write_text(INBOXES + PROPERTIES, encoding="utf-8")
    with psycopg.connect(bot_settings.database_dsn, autocommit=True) as conn:
        for code, title in TITLES.items():
            conn.execute(
                "INSERT INTO properties (code, name, raw) VALUES (%s, %s, jsonb_build_object('title', %s::text))",
                (code, title, title),
            )
    return bot_settings.model_copy(update={"inboxes_config": path})


def ask(
    deliver: Any,
    drain: Any,
    settings: Any,
    meta: dict[int, Any],
    conv: int,
    mid: int,
    text: str,
    *,
    contact: int = 860,
    inbox: int = 6,
) -> None:
    payload = message(conv, mid, text, contact=contact, inbox=inbox)
    meta.setdefault(conv, current(payload))
    deliver(payload)
    drain(settings)


def said(router: respx.MockRouter, conv: int) -> list[str]:
    return [
        b["content"] for p, b in messages_posted(router) if p == f"/conversations/{conv}/messages" and not b["private"]
    ]


def answered(dsn: str, conv: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT message_ids, property_code, model, outcome FROM qa_records WHERE conversation_id = %s ORDER BY id",
            (conv,),
        ).fetchall()


def test_a_question_naming_a_property_in_a_general_inbox_is_answered_from_its_open_guide(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    ask(deliver, drain, settings, conversation_meta, 200, 2001, "Is there parking at the Alfama flat?")
    [reply] = said(chatwoot, 200)
    lines = reply.splitlines()
    assert lines[0] == OFFLINE_PREFIX
    assert "We do not have a private parking space." in lines
    assert lines[-1] == "Sources: lis-alfama/en/guide.md › Getting around > Parking"
    assert answered(settings.database_dsn, 200) == [([2001], "lis-alfama", "offline", "answered")]


def test_a_spanish_question_naming_mitte_is_answered_from_the_mitte_guide(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    # With a model: the offline quotes cannot bridge "perros" to the guide's "Haustiere".
    groq = groq_says(chatwoot, "No, lo siento: no se admiten mascotas en el estudio.")
    with_groq = settings.model_copy(update={"groq_api_key": "gsk_test"})
    ask(deliver, drain, with_groq, conversation_meta, 201, 2011, "¿admiten perros en el estudio de Mitte?")
    assert said(chatwoot, 201) == ["No, lo siento: no se admiten mascotas en el estudio."]
    [prompt] = prompts(groq)
    assert "¿admiten perros en el estudio de Mitte?" in prompt  # the model reads the guest's own words
    assert "Keine Partys, keine Haustiere." in prompt and "ber-mitte/de/hausordnung.md" in prompt
    assert "lis-alfama" not in prompt and "por-ribeira" not in prompt
    assert answered(settings.database_dsn, 201) == [([2011], "ber-mitte", "openai/gpt-oss-120b", "answered")]


def test_a_question_fitting_two_properties_asks_which_and_the_named_one_gets_the_parked_question_answered(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn = settings.database_dsn
    ask(deliver, drain, settings, conversation_meta, 202, 2021, "Is there parking at your flat in Portugal?")
    assert said(chatwoot, 202) == [WHICH["en"].format(options=BOTH)]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT question, candidates, asked_message_id FROM property_questions").fetchall() == [
            ("Is there parking at your flat in Portugal?", ["lis-alfama", "por-ribeira"], 2021)
        ]

    ask(deliver, drain, settings, conversation_meta, 202, 2022, "The Ribeira one")
    which, reply = said(chatwoot, 202)
    assert which == WHICH["en"].format(options=BOTH)
    lines = reply.splitlines()
    assert lines[0] == OFFLINE_PREFIX and "There is no parking at the building." in lines
    assert lines[-1] == "Sources: por-ribeira/en/guide.md › Parking"
    assert answered(dsn, 202) == [
        ([2021], None, "which-property", "clarifying"),
        ([2022], "por-ribeira", "offline", "answered"),
    ]

    # The property stays named for the guest's next question in the conversation.
    ask(deliver, drain, settings, conversation_meta, 202, 2023, "And how do I get to the port wine cellars?")
    assert answered(dsn, 202)[-1] == ([2023], "por-ribeira", "offline", "answered")
    assert "Sources: por-ribeira/en/guide.md › Local tips" in said(chatwoot, 202)[-1]


def test_a_reply_naming_no_property_drops_the_parked_question_and_is_answered_on_its_own(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn = settings.database_dsn
    ask(deliver, drain, settings, conversation_meta, 207, 2071, "Is there parking at your flat in Portugal?")
    ask(deliver, drain, settings, conversation_meta, 207, 2072, "What is the cancellation policy?")
    ask(deliver, drain, settings, conversation_meta, 207, 2073, "Ribeira")
    assert answered(dsn, 207) == [
        ([2071], None, "which-property", "clarifying"),
        ([2072], None, "offline", "answered"),
        ([2073], "por-ribeira", "offline", "answered"),
    ]
    assert said(chatwoot, 207)[1].splitlines()[-1].startswith("Sources: shared/en/faq.md")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT asked_message_id, answered_by FROM property_questions").fetchall() == [(2071, 2072)]


def test_nothing_gated_reaches_the_prompt_when_a_property_is_only_named(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    with_groq = settings.model_copy(update={"groq_api_key": "gsk_test"})
    groq = groq_says(chatwoot)
    ask(deliver, drain, with_groq, conversation_meta, 203, 2031, "How do I get in to your place in Portugal?")
    assert said(chatwoot, 203) == [WHICH["en"].format(options=BOTH)]
    assert prompts(groq) == []
    ask(deliver, drain, with_groq, conversation_meta, 203, 2032, "ribeira")
    [prompt] = prompts(groq)
    assert "How do I get in to your place in Portugal?" in prompt and "por-ribeira" in prompt
    assert not [secret for secret in (*RIBEIRA_GATED, DOOR_CODE, WIFI, ADDRESS) if secret in prompt]
    # Asking for the code outright gets the identity check, not the code.
    ask(deliver, drain, with_groq, conversation_meta, 203, 2033, "What is the door code at the Ribeira loft?")
    assert said(chatwoot, 203)[-1] == ASK["en"] and len(prompts(groq)) == 1


def test_the_clarifying_question_is_asked_in_the_guests_language(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    ask(deliver, drain, settings, conversation_meta, 204, 2041, "¿Hay aparcamiento en vuestro piso de Portugal?")
    assert said(chatwoot, 204) == ["¿A qué alojamiento te refieres: Alfama Terrace Apartment o Ribeira Riverside Loft?"]


def test_copilot_suggests_the_clarifying_question_and_then_the_answer_for_the_property_named(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    ask(deliver, drain, settings, conversation_meta, 208, 2081, "Is there parking at your flat in Portugal?", inbox=8)
    ask(deliver, drain, settings, conversation_meta, 208, 2082, "alfama", inbox=8)
    notes = [b["content"] for p, b in messages_posted(chatwoot) if p == "/conversations/208/messages"]
    assert [b["private"] for p, b in messages_posted(chatwoot)] == [True, True]
    assert notes[0] == f"💡 Suggested reply (not sent to the guest):\n\n{WHICH['en'].format(options=BOTH)}"
    assert notes[1].startswith(f"💡 Suggested reply (not sent to the guest):\n\n{OFFLINE_PREFIX}")
    assert notes[1].endswith("Sources: lis-alfama/en/guide.md › Getting around > Parking")
    assert answered(settings.database_dsn, 208) == [
        ([2081], None, "which-property", "suggested"),
        ([2082], "lis-alfama", "offline", "suggested"),
    ]


def test_a_booking_or_a_dedicated_inbox_keeps_its_property_whatever_the_guest_names(
    settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn = settings.database_dsn
    book(dsn, guesty_id="r-205", code="HMPROP2050", property_code="lis-alfama", contact=865, email=None, phone=None)
    ask(deliver, drain, settings, conversation_meta, 205, 2051, "Is there parking at the Mitte studio?", contact=865)
    ask(deliver, drain, settings, conversation_meta, 206, 2061, "Is there parking at the Mitte studio?", inbox=3)
    assert answered(dsn, 205) == [([2051], "lis-alfama", "offline", "answered")]
    assert answered(dsn, 206) == [([2061], "lis-alfama", "offline", "answered")]
    assert said(chatwoot, 205)[0].splitlines()[-1] == "Sources: lis-alfama/en/guide.md › Getting around > Parking"
