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
MAX_ID = 2**63 - 1  # Chatwoot's ids are bigints


class ChatwootVerificationError(VerificationRefused):
    """The delivery is not from our Chatwoot; the message says why (safe to return to the caller)."""


class ChatwootPayloadError(ValueError):
    """Authentic JSON that is not an agent-bot delivery; the message names the field (safe to return, 400)."""


def verify_signature(raw_body: bytes, headers: Mapping[str, str], secret: str, now: float | None = None) -> None:
    signature = headers.get("x-chatwoot-signature")
    timestamp = headers.get("x-chatwoot-timestamp")
    if not signature or not timestamp:
        raise ChatwootVerificationError("missing X-Chatwoot-Signature or X-Chatwoot-Timestamp (is the bot secret set?)")
    # ASCII digits only: int() would also take " 17", "1_7" and Arabic-Indic digits.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise ChatwootVerificationError("X-Chatwoot-Timestamp is not a unix time")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE_S:
        raise ChatwootVerificationError("X-Chatwoot-Timestamp is outside the 5-minute tolerance")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    given = signature.removeprefix("sha256=")
    # compare_digest refuses non-ASCII str with a TypeError; such a header cannot match a hex digest anyway.
    if not given.isascii() or not hmac.compare_digest(expected.encode(), given.encode()):
        raise ChatwootVerificationError("signature does not match")


def verify_url_token(given: str | None, expected: str) -> None:
    if not given:
        raise ChatwootVerificationError("missing token in the webhook URL")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise ChatwootVerificationError("wrong token in the webhook URL")


def is_id(value: object) -> bool:
    """A Chatwoot id as Chatwoot sends it: a JSON integer that fits a bigint (not a bool, float or string)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def check_envelope(payload: Mapping[str, Any]) -> str:
    """The event name, once the fields the ledger's keys come from have the types Chatwoot sends.

    Raises ChatwootPayloadError naming the field, so a malformed delivery is refused at the door (400)
    instead of being stored and failing in the worker.
    """
    event = payload.get("event")
    if event is None or event == "":
        raise ChatwootPayloadError("missing 'event'")
    if not isinstance(event, str):
        raise ChatwootPayloadError("'event' must be a string")
    if payload.get("id") is not None and not is_id(payload["id"]):
        raise ChatwootPayloadError("'id' must be an integer id")
    for name in ("conversation", "current_conversation"):
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ChatwootPayloadError(f"'{name}' must be an object")
        if value.get("id") is not None and not is_id(value["id"]):
            raise ChatwootPayloadError(f"'{name}.id' must be an integer id")
    return event


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
