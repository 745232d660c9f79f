"""Bookings and guest messages from the channels that decide who a sender is, for the trust tests.

A WhatsApp sender's number is Chatwoot's contact inbox source id (the wa_id, digits without "+"); a widget
visitor is whoever they typed, unless identity validation set `hmac_verified`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import respx

from demo.samples import guest_message

DOOR_CODE = "4 8 2 1"  # lis-alfama's key box, an access detail of the example guide
WIFI = "azulejo-1755"  # lis-alfama's Wi-Fi password
ADDRESS = "Rua dos Remédios 42"  # lis-alfama's street and house number, a private chunk of the example guide
GROQ = "https://api.groq.com/openai/v1/chat/completions"
PHONE = "+351912345678"
EMAIL = "oliver.bennett@example.co.uk"


def book(
    dsn: str,
    *,
    guesty_id: str,
    code: str,
    property_code: str = "lis-alfama",
    status: str = "confirmed",
    starts_in_days: float = -1,
    nights: int = 3,
    name: str = "Oliver Bennett",
    email: str | None = EMAIL,
    phone: str | None = PHONE,
    contact: int | None = None,
    guest_id: str | None = None,
) -> None:
    """A Guesty reservation in the mirror, with its guest's own email and phone."""
    check_in = datetime.now(UTC) + timedelta(days=starts_in_days)
    check_out = check_in + timedelta(days=nights)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO properties (code, name, timezone, check_in_time, check_out_time) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (code) DO NOTHING",
            (property_code, f"{property_code} flat", "Europe/Lisbon", "15:00", "11:00"),
        )
        conn.execute(
            """INSERT INTO reservations (guesty_id, confirmation_code, property_code, status, check_in_at, check_out_at,
                                         check_in_local, check_out_local, guest_name, guest_email, guest_phone,
                                         guests_count, chatwoot_contact_id, guest_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 2, %s, %s)""",
            (
                guesty_id,
                code,
                property_code,
                status,
                check_in,
                check_out,
                check_in.date(),
                check_out.date(),
                name,
                email,
                phone,
                contact,
                guest_id,
            ),
        )


def message(
    conv: int,
    mid: int,
    text: str | None,
    *,
    contact: int,
    channel: str = "Channel::WebWidget",
    email: str | None = None,
    phone: str | None = None,
    source_id: str | None = None,
    hmac: bool = False,
    inbox: int = 6,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An incoming message from a contact holding this email/phone, on this channel."""
    payload = guest_message(
        conv, mid, text, inbox_id=inbox, contact_id=contact, channel=channel, attachments=attachments
    )
    conversation = payload["conversation"]
    for holder in (payload["sender"], conversation["meta"]["sender"]):
        holder.update(email=email, phone_number=phone)
    conversation["contact_inbox"].update(source_id=source_id or f"widget-{contact}", hmac_verified=hmac)
    conversation["meta"]["hmac_verified"] = hmac
    return payload


def current(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The `meta` Chatwoot's GET conversation answers for this message's conversation (with `changes`)."""
    conversation = payload["conversation"]
    sender = {key: value for key, value in conversation["meta"]["sender"].items() if key != "type"}
    return {
        "sender": {**sender, **changes},
        "channel": conversation["channel"],
        "hmac_verified": conversation["meta"]["hmac_verified"],
    }


def groq_says(router: respx.MockRouter, text: str = "Here is what I found in the guide.") -> respx.Route:
    """A Groq stand-in answering every prompt with `text` (no numbers, so it always passes the number check)."""
    return router.post(GROQ).mock(
        return_value=httpx.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "openai/gpt-oss-120b",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            },
        )
    )


def prompts(route: respx.Route) -> list[str]:
    """Every prompt sent to the model, as one string each."""
    return [json.dumps(json.loads(call.request.content)["messages"], ensure_ascii=False) for call in route.calls]


def access_rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT action, fact, conversation_id, message_id, contact_id, booking, identity, reason"
            " FROM access_log ORDER BY id"
        ).fetchall()
