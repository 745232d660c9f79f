"""Access-detail detection: credentials with a value are gated; mentions without one are not."""

from __future__ import annotations

import pytest

from bot.knowledge.access import (
    has_bare_code,
    has_heading_marker,
    has_private_marker,
    heading_is_arrival,
    heading_names_credential,
    looks_like_access_detail,
    looks_like_private_address,
    section_is_access,
    strip_heading_marker,
)
from bot.knowledge.chunking import chunk_document, split_markdown
from bot.knowledge.models import Document


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
        # free-text key/value lines
        "Door: 4821",
        "Wifi: Casa2024",
        "WLAN: Spree!Blick",
        "Key safe: 1 2 3 4",
        "Alarm: 9911",
        "Allarme: 9911",
        "Portone: 3719",
        "- **Door:** `4821`",
        "Caixa de chaves – 0930",
        "Zahlenschloss: 4-8-2-1",
        # sentences
        "the password is Ribeira2024",
        "The password for the guest network is sunshine.",
        "Das WLAN-Passwort lautet Spree!Hof#140",
        "Le mot de passe du Wi-Fi est : Montmartre75!",
        "La password è Colosseo!1",
        "A senha do Wi-Fi é azulejo1755.",
        "La contraseña es Sevilla2024.",
        "Use Terrace!42 as the Wi-Fi password.",
        'Wi-Fi network "Loft", password "gatito".',
        "Contraseña: sol y mar 2024",
        "WiFi name: CasaAzul / WiFi pass: Azul2023!",
        "Password: sunshine",
        # code words and things opened with a code
        "Lockbox combo 4821",
        "Codice del cancello 4821",
        "Code d'accès : 4821B",
        "Le digicode de l'immeuble est le 4B21A.",
        "Der Code für die Haustür lautet 4821.",
        "Schlüsseltresor am Eingang, Kombination 0558.",
        "La caja de llaves tiene la combinación 1-2-3-4.",
        "Il codice della cassetta delle chiavi è 1 2 3 4.",
        "Door code 482 then the # key.",
        # instructions to key in a number
        "Tapez 7390 sur le clavier.",
        "Digitare 4821 sul tastierino.",
        "Teclee 4821 en el portal.",
        "Geben Sie 7390 am Tastenfeld ein.",
        "Pulse 4 5 6 7 en el teclado del portal.",
        "For the garage, dial 6071 on the pad next to the shutter.",
        "El portal se abre marcando 4 1 2 3 en el telefonillo.",
        "Wireless network: VillaMar | Key: VillaMar2022",
        "Red: Hostal_Sol  Clave: hostal2024sol",
        "WiFi login: guest / Tagus#River",
        "Login: guest@example.com / Casa2024",
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
        "Check-in from 15:00, check-out by 11:00.",
        "A €25 cleaning fee applies to stays of one night.",
        "Call us on +351 912 345 678 at any time.",
        "Wi-Fi is free and fast (500 Mbps fibre).",
        "Wi-Fi: available in every room.",
        "Wi-Fi: Wi-Fi is available at the property.",
        "Wi-Fi network: Ribeira-Guest",
        "Please respect the code of conduct of the building.",
        "There is no dress code at the rooftop bar.",
        "Take bus 728 from the airport.",
        "The building dates from 1890 and was restored in 2019.",
        "The flat is on the 3rd floor; there is no lift.",
        "The key box code changes for every booking.",
        "The key safe is to the left of the entrance, next to the bins.",
        "Password: see the card on the fridge.",
        "The code is valid for 24h after check-in.",
        "Press the button for floor 3 in the lift.",
        "Scan the QR code 2024 on the fridge for the guide.",
        "Appelez le 15 ou le 112 en cas d'urgence.",
        "Composez le 112 en cas d'urgence.",
        "Le code de la route interdit de stationner ici.",
        "Il codice fiscale serve per la fattura.",
        "Código postal 28013 Madrid.",
        "Postleitzahl 10115 Berlin.",
        "Die Endreinigung kostet 40 €.",
        "Das WLAN-Passwort steht auf dem Router.",
        "Le mot de passe du Wi-Fi est indiqué sur la box.",
        "La password del Wi-Fi è sul router.",
        "The alarm clock is on the bedside table.",
        "Dial 304 on the intercom to reach us.",
        "Dial 1414 for a taxi.",
        "In an emergency dial 112 from the door phone.",
        "Key: under the mat",
        "Login: with your Booking.com account",
        "Login: https://portal.example.com/guest2024",
        "Wifi: Booking.com",
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


@pytest.mark.parametrize(
    "heading",
    [
        "Wi-Fi password",
        "Door code",
        "Codice del cancello",
        "Türcode",
        "Código da porta",
        "Code d'accès",
        "Mot de passe Wi-Fi",
        "Contraseña del wifi",
        "WLAN-Passwort",
        "Key safe",
        "Lockbox",
        "Schlüsseltresor",
        "Boîte à clés",
        "Alarm code",
        "Guide > In the apartment > Wi-Fi password",
        "Wi-Fi password > Older devices",
    ],
)
def test_headings_that_name_a_credential(heading: str) -> None:
    assert heading_names_credential(heading)


@pytest.mark.parametrize(
    "heading",
    [
        None,
        "",
        "Wi-Fi",
        "Check-in",
        "Arrival and access",
        "When do I get the door code?",
        "Quando recebo os dados de acesso?",
        "Wann bekomme ich den Türcode",
        "Dress code",
        "Code of conduct",
        "Postal code",
        "Fire alarm",
        "Parking",
    ],
)
def test_headings_that_do_not(heading: str | None) -> None:
    assert not heading_names_credential(heading)


def test_arrival_headings() -> None:
    for heading in (
        "Check-in instructions",
        "Access",
        "Arrival",
        "Self check-in",
        "Getting in",
        "Keys",
        "Chegada",
        "Llegada",
        "Anreise",
        "Arrivée",
        "Arrivo",
        "Accès",
        "Guide > Arrival and departure > Check-in",
    ):
        assert heading_is_arrival(heading), heading
    for heading in (None, "Check-out", "Parking", "Wi-Fi", "Accessibility", "Local tips"):
        assert not heading_is_arrival(heading), heading


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The street door opens with 4821.", True),
        ("Then 5 8 2 1 on the panel.", True),
        ("Door 482#", True),
        ("Check-in from 15:00; late arrival after 22:00 costs €25.", False),
        ("Take bus 728 from the airport; 25 minutes.", False),
        ("The building is from 1890.", False),
        ("Call +351 912 345 678.", False),
        ("Flight TP1234 lands at Terminal 1.", False),
        ("Walk 1200 m along the river.", False),
        ("Lisboa 1100-148.", False),
        ("Keys are handed over at the office, Rua Augusta 1100.", False),
        ("A Masterlock 5400D key safe.", False),
    ],
)
def test_bare_codes(text: str, expected: bool) -> None:
    assert has_bare_code(text) is expected


def test_section_rules() -> None:
    # A heading that names a credential gates its section whatever the body says.
    assert section_is_access("Wi-Fi password", "The password for the guest network is on the little card.")
    assert section_is_access("Codice del cancello", "Valido tutto il giorno; cambia ogni mese.")
    # An FAQ question about codes is not a label; its answer holds no code.
    assert not section_is_access("When do I get the door code?", "Two days before check-in, in this chat.")
    # An arrival heading gates a body holding a bare code, not one holding times and bus numbers.
    assert section_is_access("Check-in instructions", "The building door opens with 4821; third floor.")
    assert not section_is_access("Arrival", "Check-in from 15:00. Take bus 728, then walk 400 m.")
    assert not section_is_access("Check-in and check-out", "Check-in from 15:00. Check-out by 11:00.")
    # Elsewhere a bare number is not enough, a labelled one is; the heading is the label of a bare value.
    assert not section_is_access("Parking", "The garage is 4821 Rua X? No: it is 300 m away.")
    assert section_is_access("Parking", "Garage door: 4821")


def test_credential_heading_gates_subsections_in_chunks() -> None:
    body = (
        "## Wi-Fi password\n\nThe password for the guest network is sunshine.\n\n"
        "### Older devices\n\nUse the second network, same password.\n\n"
        "## Parking\n\nStreet parking only, 2 EUR per hour.\n\n"
        "## When do I get the door code?\n\nTwo days before arrival.\n"
    )
    document = Document(source="p/en/g.md", property_code="p", language="en", sections=tuple(split_markdown(body)))
    gates = {c.heading: c.gate for c in chunk_document(document, collection="kb", model_id="m")}
    assert gates == {
        "Wi-Fi password": "access",
        "Wi-Fi password > Older devices": "access",
        "Parking": "open",
        "When do I get the door code?": "open",
    }
