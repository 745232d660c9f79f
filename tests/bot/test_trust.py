"""Door codes and exact addresses only for a verified guest, end to end through POST /webhooks/chatwoot.

Chatwoot and Groq are stand-ins (respx). What is asserted is what matters to a stranger: the prompts the
model was sent and the messages posted, plus the access log rows and the agents' release notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import respx

from bot.agent.answering import HANDOFF_REPLY
from bot.agent.verification import ASK, HELP, RETRY, VERIFIED
from tests.bot.conftest import calls, messages_posted
from tests.bot.guests import (
    ADDRESS,
    DOOR_CODE,
    EMAIL,
    PHONE,
    WIFI,
    access_rows,
    book,
    current,
    groq_says,
    message,
    prompts,
)

ANSWER = "Here is what I found in the guide."
BY_CHECK = "verified by confirmation code and last name; booking window open"
DOOR_NOTE = "🔐 Door code and access details (key box, Wi-Fi) given to the verified guest of booking {code} ({how})."
ADDRESS_NOTE = "🔐 Exact address given to the verified guest of booking {code} ({how})."
WHATSAPP = {"channel": "Channel::Whatsapp", "phone": PHONE, "source_id": PHONE.removeprefix("+")}


def with_groq(settings: Any) -> Any:
    return settings.model_copy(update={"groq_api_key": "gsk_test"})


def said(router: respx.MockRouter, conv: int, *, private: bool = False) -> list[str]:
    return [
        b["content"]
        for p, b in messages_posted(router)
        if p == f"/conversations/{conv}/messages" and bool(b["private"]) is private
    ]


def send(deliver: Any, drain: Any, settings: Any, meta: dict[int, Any], payload: dict[str, Any]) -> None:
    """Deliver one guest message (Chatwoot's view of the contact stays what the message shows) and work it."""
    meta.setdefault(payload["conversation"]["id"], current(payload))
    deliver(payload)
    drain(settings)


def checks(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT message_id, contact_id, guesty_id, succeeded FROM identity_checks ORDER BY id"
        ).fetchall()


# ------------------------------------------------------------------------------ the check in the conversation


def test_widget_visitor_holding_a_guests_email_gets_the_code_only_after_proving_the_booking(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-90", code="HMQ4ZX8Y2K", contact=820)  # the mirror linked the guest's own contact
    groq = groq_says(chatwoot)
    # A visitor typed the guest's email in the widget (no identity validation) and was merged into contact 820.
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(90, 901, "What is the key box code?", contact=820, email=EMAIL),
    )
    assert said(chatwoot, 90) == [ASK["en"]]
    assert prompts(groq) == []  # nothing was retrieved for a prompt, let alone the code

    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(90, 902, "It's hmq4zx8y2k, Bennett", contact=820, email=EMAIL),
    )
    assert said(chatwoot, 90) == [ASK["en"], VERIFIED["en"], ANSWER]
    [prompt] = prompts(groq)
    assert "What is the key box code?" in prompt and DOOR_CODE in prompt  # the waiting question, now answered
    assert "- Guest name: Oliver Bennett" in prompt  # the booking's facts, now that it is proven

    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(90, 903, "And the wifi password?", contact=820, email=EMAIL),
    )
    assert WIFI in prompts(groq)[-1]  # the conversation stays proven
    how = "verified by confirmation code and last name"
    notes = said(chatwoot, 90, private=True)
    door, address = DOOR_NOTE.format(code="HMQ4ZX8Y2K", how=how), ADDRESS_NOTE.format(code="HMQ4ZX8Y2K", how=how)
    assert notes.count(door) == 2 and set(notes) <= {door, address}  # the address chunk may come along
    assert [row for row in access_rows(dsn) if row[1] == "access"] == [
        ("refusal", "access", 90, 901, 820, "HMQ4ZX8Y2K", "claimed", "identity_not_verified"),
        ("release", "access", 90, 902, 820, "HMQ4ZX8Y2K", "verified", BY_CHECK),
        ("release", "access", 90, 903, 820, "HMQ4ZX8Y2K", "verified", BY_CHECK),
    ]
    assert checks(dsn) == [(902, 820, "r-90", True)]


def test_a_proven_booking_outside_its_window_still_gets_no_code(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-91", code="HMW33K9P0Z", starts_in_days=7, email=None, phone=None)
    groq = groq_says(chatwoot)
    send(deliver, drain, settings, conversation_meta, message(91, 911, "What is the door code?", contact=821))
    send(deliver, drain, settings, conversation_meta, message(91, 912, "HMW33K9P0Z Bennett", contact=821))
    assert said(chatwoot, 91) == [ASK["en"], VERIFIED["en"], ANSWER]
    [prompt] = prompts(groq)
    assert DOOR_CODE not in prompt and WIFI not in prompt
    assert ("refusal", "access", 91, 912, 821, "HMW33K9P0Z", "verified", "access_window_closed") in access_rows(dsn)
    assert not [row for row in access_rows(dsn) if row[:2] == ("release", "access")]


def test_five_wrong_tries_lock_the_check_hand_off_and_a_right_answer_then_unlocks_nothing(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-92", code="HMLOCK7788", email=None, phone=None)
    groq = groq_says(chatwoot)
    send(deliver, drain, settings, conversation_meta, message(92, 920, "What is the door code?", contact=822))
    for n in range(1, 6):  # the right code with wrong last names: counts for the contact and the booking
        send(deliver, drain, settings, conversation_meta, message(92, 920 + n, f"HMLOCK7788 Smith{n}", contact=822))
    assert said(chatwoot, 92) == [ASK["en"], *[RETRY["en"]] * 4, HANDOFF_REPLY["en"]]
    [note] = said(chatwoot, 92, private=True)
    assert note.startswith("🤖 Handed off to a person.\nIdentity check locked: 5 wrong confirmation codes")
    assert ("POST", "/conversations/92/toggle_status", {"status": "open"}) in calls(chatwoot)

    # The same visitor in a new conversation, then another contact: the right answer unlocks nothing.
    send(deliver, drain, settings, conversation_meta, message(93, 930, "HMLOCK7788 Bennett", contact=822))
    send(deliver, drain, settings, conversation_meta, message(94, 940, "HMLOCK7788 Bennett", contact=823))
    send(deliver, drain, settings, conversation_meta, message(94, 941, "What is the door code?", contact=823))
    assert said(chatwoot, 93) == said(chatwoot, 94) == [HANDOFF_REPLY["en"]]  # handed off, then silent
    assert prompts(groq) == []
    assert [(m, ok) for m, _, _, ok in checks(dsn)] == [
        (921, False),
        (922, False),
        (923, False),
        (924, False),
        (925, False),
    ]
    assert access_rows(dsn) == [
        ("refusal", "access", 92, 920, 822, None, "unknown", "identity_not_verified"),
        *[("refusal", "access", 92, 920 + n, 822, "HMLOCK7788", "unknown", "verification_failed") for n in range(1, 6)],
        ("refusal", "access", 93, 930, 822, "HMLOCK7788", "unknown", "verification_locked"),
        ("refusal", "access", 94, 940, 823, "HMLOCK7788", "unknown", "verification_locked"),
    ]


def test_the_two_factors_alone_are_thanked_and_nothing_else_is_said(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-95", code="HMX9Y8Z7W6", email=None, phone=None)
    groq = groq_says(chatwoot)
    send(deliver, drain, settings, conversation_meta, message(95, 950, "HM X9Y8 Z7W6 Bennett", contact=824))
    assert said(chatwoot, 95) == [f"{VERIFIED['en']} {HELP['en']}"]
    assert prompts(groq) == [] and checks(dsn) == [(950, 824, "r-95", True)]
    # With a question beside them, the question is answered for the proven booking.
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(96, 960, "HMX9Y8Z7W6 Bennett - when do I check out?", contact=825),
    )
    assert said(chatwoot, 96) == [VERIFIED["en"], ANSWER]
    assert "- Guest name: Oliver Bennett" in prompts(groq)[0]


# ------------------------------------------------------------------------------ what the channel vouches for


def test_whatsapp_from_the_bookings_exact_number_gets_the_code_without_a_check(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-100", code="HMWA100200", email=None)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(100, 1001, "What is the key box code?", contact=830, **WHATSAPP),
    )
    assert said(chatwoot, 100) == [ANSWER]
    assert DOOR_CODE in prompts(groq)[0]
    note = DOOR_NOTE.format(code="HMWA100200", how="verified by WhatsApp number")
    assert said(chatwoot, 100, private=True)[0] == note
    assert (
        "release",
        "access",
        100,
        1001,
        830,
        "HMWA100200",
        "verified",
        "verified by WhatsApp number; booking window open",
    ) in access_rows(dsn)
    # The contact was read again from Chatwoot before anything was released.
    assert ("GET", "/conversations/100", None) in calls(chatwoot)


def test_whatsapp_from_junk_before_the_same_digits_gets_no_code(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-101", code="HMWA101201", email=None, contact=831)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(101, 1011, "What is the key box code?", contact=831, **{**WHATSAPP, "phone": "x" + PHONE}),
    )
    assert said(chatwoot, 101) == [ASK["en"]]
    assert prompts(groq) == []
    assert access_rows(dsn) == [("refusal", "access", 101, 1011, 831, "HMWA101201", "claimed", "identity_not_verified")]


def test_widget_contact_with_identity_validation_and_the_bookings_email_gets_the_code(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-102", code="HMHM102202", phone=None)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(102, 1021, "What is the key box code?", contact=832, email=EMAIL.upper(), hmac=True),
    )
    assert said(chatwoot, 102) == [ANSWER]
    assert DOOR_CODE in prompts(groq)[0]
    how = "verified by widget identity validation"
    assert said(chatwoot, 102, private=True)[0] == DOOR_NOTE.format(code="HMHM102202", how=how)
    assert (
        "release",
        "access",
        102,
        1021,
        832,
        "HMHM102202",
        "verified",
        f"{how}; booking window open",
    ) in access_rows(dsn)


def test_a_contact_changed_since_the_message_is_not_trusted_stale(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-103", code="HMCH103203", email=None)
    groq = groq_says(chatwoot)
    payload = message(103, 1031, "What is the key box code?", contact=833, **WHATSAPP)
    conversation_meta[103] = current(payload, id=870, phone_number="+351911111111")  # merged into another contact
    send(deliver, drain, settings, conversation_meta, payload)
    payload = message(104, 1041, "What is the key box code?", contact=834, **WHATSAPP)
    conversation_meta[104] = {"channel": "Channel::Whatsapp"}  # Chatwoot < 4.15: no contact in the answer
    send(deliver, drain, settings, conversation_meta, payload)
    assert said(chatwoot, 103) == said(chatwoot, 104) == [ASK["en"]]
    assert prompts(groq) == []
    assert [row[-1] for row in access_rows(dsn)] == ["contact_changed", "contact_not_rereadable"]


def test_a_phone_shared_by_two_guests_bookings_unlocks_neither_until_one_is_proven(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-105", code="HMSH105205", email=None)
    book(dsn, guesty_id="r-106", code="HMSH106206", property_code="ber-mitte", name="Ana Lima", email=None)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(105, 1051, "What is the key box code?", contact=835, **WHATSAPP),
    )
    assert said(chatwoot, 105) == [ASK["en"]]
    assert prompts(groq) == []
    send(deliver, drain, settings, conversation_meta, message(105, 1052, "HMSH106206 Lima", contact=835, **WHATSAPP))
    [prompt] = prompts(groq)
    assert "0-5-5-8" in prompt and DOOR_CODE not in prompt  # the proven booking's property, and only it
    assert access_rows(dsn)[0] == ("refusal", "access", 105, 1051, 835, None, "claimed", "shared_by_several_bookings")


# ------------------------------------------------------------------------------ voice notes: the same gate


def voice_settings(settings: Any, tmp_path: Path) -> Any:
    inboxes = tmp_path / "voice-inboxes.toml"
    inboxes.write_text('[inboxes.6]\nmode = "autopilot"\nvoice_replies = false\n')
    return with_groq(settings).model_copy(update={"inboxes_config": inboxes})


def spoken(mid: int, text: str) -> list[dict[str, Any]]:
    """A voice note Chatwoot already transcribed (so no audio is fetched)."""
    return [
        {
            "id": mid + 1,
            "message_id": mid,
            "file_type": "audio",
            "account_id": 1,
            "extension": "ogg",
            "content_type": "audio/ogg",
            "thumb_url": "",
            "file_size": 4821,
            "width": None,
            "height": None,
            "transcribed_text": text,
            "data_url": f"https://chat.acme.example/rails/active_storage/blobs/redirect/s-{mid}/v.ogg",
        }
    ]


def test_a_voice_note_asking_for_the_code_meets_the_same_check(
    bot_settings: Any,
    chatwoot: respx.MockRouter,
    conversation_meta: dict[int, Any],
    deliver: Any,
    drain: Any,
    tmp_path: Path,
) -> None:
    dsn, settings = bot_settings.database_dsn, voice_settings(bot_settings, tmp_path)
    book(dsn, guesty_id="r-110", code="HMVO110210", contact=840)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(110, 1101, None, contact=840, email=EMAIL, attachments=spoken(1101, "What is the key box code?")),
    )
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(110, 1102, None, contact=840, email=EMAIL, attachments=spoken(1102, "H M V O 110210, Bennett")),
    )
    assert said(chatwoot, 110) == [ASK["en"], VERIFIED["en"], ANSWER]
    assert DOOR_CODE in prompts(groq)[0]
    assert [row[:2] + row[-2:] for row in access_rows(dsn) if row[1] == "access"] == [
        ("refusal", "access", "claimed", "identity_not_verified"),
        ("release", "access", "verified", BY_CHECK),
    ]


def test_a_verified_voice_note_gets_the_exact_address_weeks_ahead(
    bot_settings: Any,
    chatwoot: respx.MockRouter,
    conversation_meta: dict[int, Any],
    deliver: Any,
    drain: Any,
    tmp_path: Path,
) -> None:
    dsn, settings = bot_settings.database_dsn, voice_settings(bot_settings, tmp_path)
    book(dsn, guesty_id="r-111", code="HMVO111211", starts_in_days=21, email=None)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(
            111, 1111, None, contact=841, attachments=spoken(1111, "What is the address of the apartment?"), **WHATSAPP
        ),
    )
    [prompt] = prompts(groq)
    assert ADDRESS in prompt and DOOR_CODE not in prompt  # the voice path passes the address gate too
    assert ADDRESS_NOTE.format(code="HMVO111211", how="verified by WhatsApp number") in said(
        chatwoot, 111, private=True
    )


def test_copilot_never_runs_the_check_but_logs_and_notes_what_it_suggests(
    bot_settings: Any, chatwoot: respx.MockRouter, conversation_meta: dict[int, Any], deliver: Any, drain: Any
) -> None:
    dsn, settings = bot_settings.database_dsn, with_groq(bot_settings)
    book(dsn, guesty_id="r-120", code="HMCP120220", email=None)
    groq = groq_says(chatwoot)
    send(
        deliver,
        drain,
        settings,
        conversation_meta,  # inbox 4 is copilot: agents decide what goes out
        message(120, 1201, "What is the key box code?", contact=850, inbox=4, **WHATSAPP),
    )
    send(
        deliver,
        drain,
        settings,
        conversation_meta,
        message(121, 1211, "What is the key box code?", contact=851, inbox=4),
    )
    assert said(chatwoot, 120) == said(chatwoot, 121) == []  # nothing to the guests
    assert DOOR_CODE in prompts(groq)[0] and DOOR_CODE not in prompts(groq)[1]
    note = DOOR_NOTE.format(code="HMCP120220", how="verified by WhatsApp number").replace("given to", "suggested for")
    assert note in said(chatwoot, 120, private=True)
    assert [row[:2] + row[-2:] for row in access_rows(dsn) if row[1] == "access"] == [
        ("release", "access", "verified", "verified by WhatsApp number; booking window open"),
        ("refusal", "access", "unknown", "identity_not_verified"),
    ]
