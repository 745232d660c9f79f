"""Reading check-in/out times, guest counts and the pets rule from guide text, in the bundled languages."""

from __future__ import annotations

import pytest

from bot.knowledge.facts import GuideFacts, normalize_time, read_facts


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("Check-in is from 15:00 (3 pm). Self check-in is available until midnight.", GuideFacts(check_in="15:00")),
        ("Check-out is by 10:30. Put the key back in the key safe.", GuideFacts(check_out="10:30")),
        ("Check in after 4pm, check out before 11am.", GuideFacts(check_in="16:00", check_out="11:00")),
        ("Die Anreise ist ab 15 Uhr möglich, die Abreise bis 10 Uhr.", GuideFacts(check_in="15:00", check_out="10:00")),
        ("O check-in é a partir das 14h00.", GuideFacts(check_in="14:00")),
        ("La llegada es a partir de las 16:00.", GuideFacts(check_in="16:00")),
        ("L'arrivée se fait à partir de 15h.", GuideFacts(check_in="15:00")),
        ("The flat sleeps 4 guests.", GuideFacts(max_guests=4)),
        ("Die Wohnung ist für bis zu 3 Personen.", GuideFacts(max_guests=3)),
        ("No smoking anywhere in the building. No parties. No pets, sorry.", GuideFacts(pets=False)),
        ("Small pets are welcome on request (one pet, 30 EUR cleaning fee).", GuideFacts(pets=True)),
        ("Keine Haustiere erlaubt.", GuideFacts(pets=False)),
        ("Non si accettano feste. Animali non ammessi.", GuideFacts(pets=False)),
        ("Check-in for 2 guests is easy: the key box is by the door.", GuideFacts()),
        ("Bus 728 stops at the corner; the museum opens at 10:00.", GuideFacts()),
    ],
)
def test_guide_facts_are_read_in_each_language(text: str, facts: GuideFacts) -> None:
    assert read_facts(text) == facts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15:00", "15:00"),
        ("3:00 PM", "15:00"),
        ("15", "15:00"),
        ("11am", "11:00"),
        ("", None),
        ("noon", None),
    ],
)
def test_listing_times_are_normalised(value: str, expected: str | None) -> None:
    assert normalize_time(value) == expected
