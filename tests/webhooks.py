"""Helpers to build signed deliveries the way Chatwoot, Aircall and Guesty send them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from svix.webhooks import Webhook

from integrations.chatwoot.verify import sign


def chatwoot_request(
    payload: dict[str, Any], secret: str, *, timestamp: int | None = None, delivery: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "content-type": "application/json",
        "x-chatwoot-delivery": delivery or str(uuid.uuid4()),
        "x-chatwoot-timestamp": str(ts),
        "x-chatwoot-signature": sign(body, secret, ts),
    }
    return body, headers


def guesty_request(
    payload: dict[str, Any], secret: str, *, msg_id: str | None = None, timestamp: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = timestamp or datetime.now(UTC)
    return body, {
        "content-type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(int(ts.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, ts, body.decode()),
    }
