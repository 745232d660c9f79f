"""The pure parts of the trust rules: what a channel vouches for, gated intent in six languages, the check's
factors, and the access log as operators read it."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from bot.agent.identity import SenderView, claimed, same_number, vouched
from bot.agent.intent import gated_facts
from bot.agent.verification import ASK, HELP, LANGUAGES, RETRY, VERIFIED, code_candidates, language_for, names_booking
from bot.service.cli import main as cli

PHONE, EMAIL = "+351912345678", "oliver.bennett@example.co.uk"


def sender(
    channel: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    source_id: str | None = None,
    hmac: bool = False,
) -> SenderView:
    return SenderView(
        contact_id=812, channel=channel, email=email, phone_number=phone, source_id=source_id, hmac_verified=hmac
    )


@pytest.mark.parametrize(
    ("view", "phone", "email", "how"),
    [
        (sender("Channel::Whatsapp", phone=PHONE, source_id="351912345678"), PHONE, None, "WhatsApp number"),
        (sender("Channel::TwilioSms", phone=PHONE, source_id="whatsapp:+351912345678"), PHONE, None, "Twilio number"),
        (sender("Channel::Sms", phone=PHONE, source_id=PHONE), PHONE, None, "SMS number"),
        (sender("Channel::Email", email=EMAIL.upper(), source_id=EMAIL), None, EMAIL, "email sender address"),
        (
            sender("Channel::WebWidget", email=EMAIL, phone=PHONE, source_id="uuid", hmac=True),
            PHONE,
            EMAIL,
            "widget identity validation",
        ),
    ],
    ids=["whatsapp", "twilio-whatsapp", "sms", "email", "widget-validated"],
)
def test_the_channel_vouches_for_the_senders_own_number_or_address(
    view: SenderView, phone: str | None, email: str | None, how: str
) -> None:
    found = vouched(view)
    assert (found.phone, found.email, found.how) == (phone, email, how)


@pytest.mark.parametrize(
    "view",
    [
        sender("Channel::Whatsapp", phone="x+351912345678", source_id="351912345678"),  # junk before the +
        sender("Channel::Whatsapp", phone=PHONE, source_id="351911111111"),  # the contact's phone was edited
        sender("Channel::Whatsapp", phone=PHONE, source_id=None),
        sender("Channel::WebWidget", email=EMAIL, phone=PHONE, source_id="uuid"),  # typed in the widget
        sender("Channel::Email", email=EMAIL, source_id="someone.else@example.com"),
        sender("Channel::Api", email=EMAIL, phone=PHONE, source_id=PHONE),
        sender("Channel::Telegram", phone=PHONE, source_id=PHONE, hmac=True),
    ],
    ids=["junk-before-plus", "edited-phone", "no-source-id", "widget-typed", "email-other-sender", "api", "telegram"],
)
def test_nothing_the_sender_could_type_is_vouched_for(view: SenderView) -> None:
    assert not vouched(view)


def test_a_claim_is_whatever_the_contact_holds_parsed_strictly() -> None:
    said = claimed(sender("Channel::WebWidget", email=f" {EMAIL.upper()} ", phone="x+351912345678"))
    assert (said.phone, said.email) == (None, EMAIL)


@pytest.mark.parametrize(
    ("source_id", "same"),
    [
        ("351912345678", True),
        ("+351912345678", True),
        ("whatsapp:+351912345678", True),
        ("x351912345678", False),
        ("3519123456789", False),
        ("", False),
        (None, False),
    ],
)
def test_a_source_id_is_the_same_number_only_digit_for_digit(source_id: str | None, same: bool) -> None:
    assert same_number(source_id, PHONE) is same


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("What is the key box code?", {"access"}),
        ("What's the wifi password?", {"access"}),
        ("Qual é o código da porta?", {"access"}),
        ("Qual é a morada exata?", {"address"}),
        ("¿Cuál es la contraseña del wifi?", {"access"}),
        ("¿Me das la dirección del piso?", {"address"}),
        ("Wie lautet der Code für die Tür?", {"access"}),
        ("Wie ist die genaue Adresse? Und das WLAN-Passwort?", {"access", "address"}),
        ("Quel est le code de la porte ?", {"access"}),
        ("Quelle est l'adresse exacte ?", {"address"}),
        ("Qual è il codice della porta?", {"access"}),
        ("Mi mandi l'indirizzo?", {"address"}),
        ("What is the zip code?", {"address"}),  # a postal code is part of an address, not an access code
        ("What time is check-out?", set()),
        ("Is there a pharmacy nearby?", set()),
        ("Onde fica o supermercado mais próximo?", set()),
    ],
)
def test_gated_questions_are_recognised_in_the_six_languages(text: str, facts: set[str]) -> None:
    assert gated_facts(text) == facts


def test_every_template_exists_in_the_six_languages() -> None:
    for table in (ASK, RETRY, VERIFIED, HELP):
        assert set(table) == set(LANGUAGES) and all(table.values())


@pytest.mark.parametrize(
    ("candidates", "language"),
    [
        (("pt-PT", None, "en"), "pt"),
        ((None, "de", "en"), "de"),
        ((None, None, "it"), "it"),
        (("ja-JP", "zh", "nl"), "en"),
        ((), "en"),
    ],
)
def test_the_guests_language_is_the_first_we_have_templates_for(
    candidates: tuple[str | None, ...], language: str
) -> None:
    assert language_for(*candidates) == language


@pytest.mark.parametrize(
    "text", ["HMQ4ZX8Y2K Bennett", "my code is hm-q4zx8y2k", "H M Q 4 Z X 8 Y 2 K, Bennett", "HMQ 4ZX8 Y2K"]
)
def test_a_code_is_found_written_or_spelled_out(text: str) -> None:
    assert "HMQ4ZX8Y2K" in code_candidates(text)


@pytest.mark.parametrize(
    "text", ["we arrive at 15:30 tomorrow", "check-in on 2026-02-13 please", "Bennett", "Can we check in early?"]
)
def test_times_dates_and_words_are_no_code(text: str) -> None:
    assert code_candidates(text) == []


@pytest.mark.parametrize(
    ("name", "text", "matches"),
    [
        ("Oliver Bennett", "HM1 bennett", True),
        ("Oliver Bennett", "HM1 Oliver", False),  # the first name is not the last name
        ("Maria da Silva Santos", "code HM1, Santos", True),
        ("Maria da Silva Santos", "code HM1, da", False),
        ("José Müller-Lüdenscheidt", "HM1 Mueller? no: Müller", True),
        ("Cher", "HM1 cher", True),
        (None, "HM1 anything", False),
    ],
)
def test_the_last_name_must_be_in_the_message(name: str | None, text: str, matches: bool) -> None:
    assert names_booking(name, text) is matches


def test_access_log_lists_releases_and_refusals_for_a_booking_or_a_contact(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", clean_db)
    at = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        for n, (action, contact, booking, identity, reason) in enumerate(
            [
                ("refusal", 820, "HMQ4ZX8Y2K", "claimed", "identity_not_verified"),
                (
                    "release",
                    820,
                    "HMQ4ZX8Y2K",
                    "verified",
                    "verified by confirmation code and last name; booking window open",
                ),
                ("refusal", 830, "HMOTHER123", "unknown", "verification_failed"),
            ]
        ):
            conn.execute(
                "INSERT INTO access_log (created_at, action, fact, conversation_id, message_id, contact_id,"
                " booking, identity, reason) VALUES (%s, %s, 'access', 90, %s, %s, %s, %s, %s)",
                (at.replace(minute=n), action, 900 + n, contact, booking, identity, reason),
            )
    assert cli(["access", "log", "--booking", "hmq4zx8y2k"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "when (UTC)           action    fact       conv  contact  booking       identity  reason",
        "2026-12-06 03:01:00  release   access       90      820  HMQ4ZX8Y2K    verified  verified by confirmation "
        "code and last name; booking window open",
        "2026-12-06 03:00:00  refusal   access       90      820  HMQ4ZX8Y2K    claimed   identity_not_verified",
    ]
    assert cli(["access", "log", "--contact", "830"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "2026-12-06 03:02:00  refusal   access       90      830  HMOTHER123    unknown   verification_failed"
    ]
    assert cli(["access", "log", "--contact", "1"]) == 0
    assert capsys.readouterr().out == "no releases or refusals logged\n"
