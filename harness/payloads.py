"""Deliveries as Chatwoot, Aircall and Guesty send them, signed with the harness's secrets.

Chatwoot's guest message is the demo's sample (demo/samples.py, Message#webhook_data of Chatwoot 4.15) and
its signature the service's own `sign`; Aircall's and Guesty's bodies are built here.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from svix.webhooks import Webhook

from demo import samples
from harness.sidecar import AIRCALL_TOKEN, BOT_SECRET, GUESTY_SECRET
from integrations.chatwoot.verify import sign

AUTOPILOT_INBOX = 3
# Answered from harness/knowledge, or handed off (a request for a person, or nothing in the guides).
QUESTIONS = (
    "What time is check-out?",
    "What is the Wi-Fi network called?",
    "Can we check in early?",
    "Where do we leave the rubbish?",
    "Can I talk to a person please?",
    "Is the swimming pool heated in winter?",
)


def chatwoot_signature(body: bytes, timestamp: int, secret: str = BOT_SECRET) -> str:
    """X-Chatwoot-Signature: sha256=hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))."""
    return sign(body, secret, timestamp)


def chatwoot_headers(body: bytes, delivery_id: str, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "accept": "application/json",
        "x-chatwoot-delivery": delivery_id,
        "x-chatwoot-timestamp": str(ts),
        "x-chatwoot-signature": chatwoot_signature(body, ts),
    }


def guesty_headers(body: bytes, *, msg_id: str | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(GUESTY_SECRET).sign(msg_id, now, body.decode("utf-8", "replace")),
    }


def guest_message(
    conversation_id: int, message_id: int, contact_id: int, text: str, *, inbox_id: int = AUTOPILOT_INBOX
) -> dict[str, Any]:
    """An incoming, public `message_created` from a contact in a pending conversation (the demo's sample)."""
    return samples.guest_message(
        conversation_id, message_id, text, inbox_id=inbox_id, contact_id=contact_id, contact_name=f"Guest {contact_id}"
    )


def aircall_call(call_id: int, event: str = "call.created") -> dict[str, Any]:
    """An Aircall call event carrying the webhook token inside the body."""
    ts = int(time.time())
    return {
        "resource": "call",
        "event": event,
        "timestamp": ts,
        "token": AIRCALL_TOKEN,
        "data": {
            "id": call_id,
            "direction": "inbound",
            "status": "initial",
            "started_at": ts,
            "answered_at": None,
            "ended_at": None,
            "duration": 0,
            "raw_digits": "+351 912 345 678",
            "user": None,
            "contact": None,
            "number": {"id": 1, "digits": "+351 213 000 000"},
            "missed_call_reason": None,
            "voicemail": None,
            "recording": None,
            "tags": [],
        },
    }


def guesty_reservation(reservation_id: str) -> dict[str, Any]:
    return {
        "event": "reservation.new",
        "reservation": {
            "_id": reservation_id,
            "status": "confirmed",
            "listingId": "lis-alfama",
            "checkIn": "2026-12-20T15:00:00.000Z",
            "checkOut": "2026-12-24T11:00:00.000Z",
            "guest": {"_id": "g1", "fullName": "Harness Guest", "email": "guest@example.com", "phone": "+351912345678"},
        },
    }


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()
