"""Access-detail detection: credentials with a value are gated; mentions without one are not."""

from __future__ import annotations

import pytest

from bot.knowledge.access import (
    has_heading_marker,
    has_private_marker,
    looks_like_access_detail,
    looks_like_private_address,
    strip_heading_marker,
)


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


@pytest.mark.parametrize(
    "text",
    [
        "building at Rua dos Remédios 42, 1100-448 Lisbon.",
        "Linienstraße 140, 10115 Berlin, ground floor on the right.",
        "Our house is at 12 Main Street, Springfield.",
        "221b Baker St.",
        "Calle Mayor 5, 28013 Madrid",
        "Calle Mayor, 5",
        "Avenida da Liberdade 110, 1250-146 Lisboa",
        "Av. da República 45",
        "Rua Augusta, nº 12",
        "Rua da\nFonte Taurina 18, in Porto",
        "Via della Scala 16, Firenze",
        "12 rue de Rivoli, 75004 Paris",
        "Kastanienallee 12a",
        "Rosenthaler Platz 3",
    ],
)
def test_a_street_with_its_house_number_is_a_private_address(text: str) -> None:
    assert looks_like_private_address(text)


@pytest.mark.parametrize(
    "text",
    [
        "Bins are at the corner of Rua dos Remédios and Beco do Mexias.",
        "Groceries: Pingo Doce on Rua de Mouzinho da Silveira, 8:00–21:00.",
        "Glas und Papier kommen in die Container in der Torstraße.",
        "Underground bins are on Praça da Ribeira, 2 minutes away.",
        "Sunday market: Feira da Vandoma, Avenida 25 de Abril, 8:00–13:00.",
        "Tram 28 stops at Largo Chafariz de Dentro, 3 minutes away.",
        "The U8 station Rosenthaler Platz is 4 minutes away.",
        "Rosenthaler Platz 5 Min. zu Fuß",
        "Torstraße 8–22 Uhr geöffnet",
        "Drive via the A1 for 12 km.",
        "Take bus 12 to Main St and walk two places further.",
        "Check-in from 15:00. Up to 4 guests.",
    ],
)
def test_a_street_without_a_house_number_is_not(text: str) -> None:
    assert not looks_like_private_address(text)


def test_private_heading_marker() -> None:
    assert has_private_marker("Address [private]")
    assert has_private_marker("Morada [PRIVATE]")
    assert not has_private_marker("Private parking")
    assert strip_heading_marker("Address [private]") == "Address"
