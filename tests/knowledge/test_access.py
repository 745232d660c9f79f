"""Access-detail detection: credentials with a value are gated; mentions without one are not."""

from __future__ import annotations

import pytest

from bot.knowledge.access import has_heading_marker, looks_like_access_detail, strip_heading_marker


@pytest.mark.parametrize(
    "text",
    [
        "Key box code: 4 8 2 1. Turn all four wheels.",
        "The door code is 7390, then press the check mark.",
        "Alarm: after opening the door, enter 2 6 1 9 on the panel and press OFF.",
        "Street door: press the keypad until it lights up, then type 7 3 9 0 and the check mark.",
        "Gate PIN 55021",
        "Network: Alfama-Terrace. Password: azulejo-1755.",
        'The Wi-Fi password is "DouroRiver2024" (case-sensitive).',
        "WLAN-Passwort: Spree!Hof#140",
        "Rede: Alfama-Terrace. Senha: azulejo-1755.",
        "Código do cofre: 4 8 2 1.",
        "Der Schlüsseltresor hängt links. Code: 0-5-5-8.",
        "Türcode 1234#",
        "La contraseña del wifi: Playa2024",
        "Digite 4821 no teclado.",
    ],
)
def test_credentials_with_a_value_are_access_details(text: str) -> None:
    assert looks_like_access_detail(text)


@pytest.mark.parametrize(
    "text",
    [
        "Your personal door code is sent in the booking chat two days before arrival.",
        "The Wi-Fi password is printed on the router.",
        "Postal code for deliveries: 10115.",
        "Rua dos Remédios 42, código postal 1100-448 Lisboa.",
        "Zip code 94103, area code 415.",
        "In a life-threatening emergency call 112, from any phone.",
        "Late check-out until 13:00 costs 20 EUR.",
        "Use the promo code SUMMER10 for 10 % off your next stay.",
        "Parque da Ribeira is 300 m along the river, about 18 EUR per day.",
        "Quiet hours are 22:00 to 08:00.",
    ],
)
def test_mentions_without_a_value_are_not(text: str) -> None:
    assert not looks_like_access_detail(text)


def test_heading_markers() -> None:
    assert has_heading_marker("Key box [access]")
    assert has_heading_marker("Key safe 🔒")
    assert has_heading_marker("Door [ACCESS]")
    assert not has_heading_marker("Access to the terrace")
    assert strip_heading_marker("Key box  [access] ") == "Key box"
    assert strip_heading_marker("🔒 Key safe") == "Key safe"
