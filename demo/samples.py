"""Realistic agent-bot deliveries (Message#webhook_data of Chatwoot 4.15), for the demo and benchmarks.

The shape follows Chatwoot's serializers field by field, like the fixtures the tests use; only the
values are ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def guest_message(
    conversation_id: int,
    message_id: int,
    text: str | None,
    *,
    inbox_id: int = 3,
    contact_id: int = 812,
    status: str = "pending",
    channel: str = "Channel::WebWidget",
    attachments: list[dict[str, Any]] | None = None,
    contact_name: str = "Guest",
) -> dict[str, Any]:
    """A `message_created` for an incoming guest message."""
    now = datetime.now(UTC)
    ts = int(now.timestamp())
    contact: dict[str, Any] = {
        "additional_attributes": {},
        "custom_attributes": {},
        "email": None,
        "id": contact_id,
        "identifier": None,
        "name": contact_name,
        "phone_number": None,
        "thumbnail": "",
        "blocked": False,
    }
    payload: dict[str, Any] = {
        "account": {"id": 1, "name": "Demo Rentals"},
        "additional_attributes": {},
        "content_attributes": {"in_reply_to": None},
        "content_type": "text",
        "content": text,
        "conversation": {
            "additional_attributes": {},
            "can_reply": True,
            "channel": channel,
            "contact_inbox": {
                "id": 10_000 + contact_id,
                "contact_id": contact_id,
                "inbox_id": inbox_id,
                "source_id": f"source-{contact_id}",
                "hmac_verified": False,
            },
            "id": conversation_id,
            "inbox_id": inbox_id,
            "messages": [
                {
                    "id": message_id,
                    "content": text,
                    "account_id": 1,
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
            "status": status,
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
            "account": {"id": 1, "name": "Demo Rentals"},
        },
        "created_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "id": message_id,
        "inbox": {"id": inbox_id, "name": "Website"},
        "message_type": "incoming",
        "private": False,
        "sender": dict(contact, account={"id": 1, "name": "Demo Rentals"}, avatar=""),
        "source_id": None,
        "event": "message_created",
    }
    if attachments:
        payload["attachments"] = attachments
    return payload
