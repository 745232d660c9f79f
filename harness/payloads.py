"""Deliveries as Chatwoot, Aircall and Guesty send them, signed with the harness's secrets.

The Chatwoot shape follows Message#webhook_data of Chatwoot 4.15 (../shared/reference/chatwoot.md §2,
../shared/fixtures/chatwoot/); the harness builds it itself rather than importing the service's samples.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from svix.webhooks import Webhook

from harness.sidecar import ACCOUNT_ID, AIRCALL_TOKEN, BOT_SECRET, GUESTY_SECRET

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
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


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
    """An incoming, public `message_created` from a contact in a pending conversation."""
    now = datetime.now(UTC)
    ts = int(now.timestamp())
    account = {"id": ACCOUNT_ID, "name": "Harness Rentals"}
    contact: dict[str, Any] = {
        "additional_attributes": {},
        "custom_attributes": {},
        "email": None,
        "id": contact_id,
        "identifier": None,
        "name": f"Guest {contact_id}",
        "phone_number": None,
        "thumbnail": "",
        "blocked": False,
    }
    return {
        "account": account,
        "additional_attributes": {},
        "content_attributes": {"in_reply_to": None},
        "content_type": "text",
        "content": text,
        "conversation": {
            "additional_attributes": {"browser_language": "en"},
            "can_reply": True,
            "channel": "Channel::WebWidget",
            "contact_inbox": {
                "id": 10_000 + contact_id,
                "contact_id": contact_id,
                "inbox_id": inbox_id,
                "source_id": str(uuid.uuid5(uuid.NAMESPACE_OID, str(contact_id))),
                "hmac_verified": False,
                "pubsub_token": uuid.uuid4().hex,
            },
            "id": conversation_id,
            "inbox_id": inbox_id,
            "messages": [
                {
                    "id": message_id,
                    "content": text,
                    "account_id": ACCOUNT_ID,
                    "inbox_id": inbox_id,
                    "conversation_id": conversation_id,
                    "message_type": 0,
                    "created_at": ts,
                    "private": False,
                    "status": "sent",
                    "content_type": "text",
                    "sender_type": "Contact",
                    "sender_id": contact_id,
                }
            ],
            "labels": [],
            "meta": {
                "sender": dict(contact, type="contact"),
                "assignee": None,
                "assignee_type": None,
                "team": None,
                "hmac_verified": False,
            },
            "status": "pending",
            "custom_attributes": {},
            "snoozed_until": None,
            "unread_count": 1,
            "first_reply_created_at": None,
            "priority": None,
            "waiting_since": ts,
            "agent_last_seen_at": 0,
            "contact_last_seen_at": ts,
            "last_activity_at": ts,
            "timestamp": ts,
            "created_at": ts,
            "updated_at": now.timestamp(),
            "account": account,
        },
        "created_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "id": message_id,
        "inbox": {"id": inbox_id, "name": "Website"},
        "message_type": "incoming",
        "private": False,
        "sender": dict(contact, account=account, avatar=""),
        "source_id": None,
        "event": "message_created",
    }


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
