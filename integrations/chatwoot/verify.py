"""Authenticating Chatwoot's agent-bot deliveries and deriving their ledger keys.

Chatwoot 4.13+ signs with the bot's secret: X-Chatwoot-Signature = "sha256=" + hex HMAC-SHA256 over
"<X-Chatwoot-Timestamp>.<raw body>". Older servers sign nothing, so the webhook URL then carries a token
(?token=... or /webhooks/chatwoot/<token>), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from bot.errors import VerificationRefused

TOLERANCE_S = 300


class ChatwootVerificationError(VerificationRefused):
    """The delivery is not from our Chatwoot; the message says why (safe to return to the caller)."""


def verify_signature(raw_body: bytes, headers: Mapping[str, str], secret: str, now: float | None = None) -> None:
    signature = headers.get("x-chatwoot-signature")
    timestamp = headers.get("x-chatwoot-timestamp")
    if not signature or not timestamp:
        raise ChatwootVerificationError("missing X-Chatwoot-Signature or X-Chatwoot-Timestamp (is the bot secret set?)")
    try:
        ts = int(timestamp)
    except ValueError:
        raise ChatwootVerificationError("X-Chatwoot-Timestamp is not a unix time") from None
    now = time.time() if now is None else now
    if abs(now - ts) > TOLERANCE_S:
        raise ChatwootVerificationError("X-Chatwoot-Timestamp is outside the 5-minute tolerance")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    given = signature.removeprefix("sha256=")
    if not hmac.compare_digest(expected, given):
        raise ChatwootVerificationError("signature does not match")


def verify_url_token(given: str | None, expected: str) -> None:
    if not given:
        raise ChatwootVerificationError("missing token in the webhook URL")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ChatwootVerificationError("wrong token in the webhook URL")


def sign(raw_body: bytes, secret: str, timestamp: int) -> str:
    """The header value Chatwoot would send (used by tests and the benchmark)."""
    return "sha256=" + hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def dedupe_key(payload: Mapping[str, Any], raw_body: bytes, delivery_id: str | None) -> str:
    """message_created by message id (Chatwoot may deliver one message twice under different delivery
    ids); anything else by delivery id, or by the body's hash when the server sends none."""
    event = str(payload.get("event") or "unknown")
    if event == "message_created" and payload.get("id") is not None:
        return f"chatwoot:message_created:{payload['id']}"
    if delivery_id:
        return f"chatwoot:{event}:{delivery_id}"
    return f"chatwoot:{event}:{hashlib.sha256(raw_body).hexdigest()[:32]}"


def subject(payload: Mapping[str, Any]) -> str | None:
    """The conversation an event is about (display id), so its jobs run one at a time."""
    event = payload.get("event")
    if event in ("message_created", "message_updated"):
        conv = payload.get("conversation")
        conv_id = conv.get("id") if isinstance(conv, Mapping) else None
    elif event == "webwidget_triggered":
        conv = payload.get("current_conversation")
        conv_id = conv.get("id") if isinstance(conv, Mapping) else None
    else:
        conv_id = payload.get("id")
    return f"conversation:{conv_id}" if conv_id is not None else None
