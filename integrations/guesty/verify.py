"""Authenticating Guesty's webhooks (sent through Svix) and deriving their ledger keys.

Svix signs "<id>.<timestamp>.<raw body>" with HMAC-SHA256 and a 5-minute timestamp tolerance; the
message id is the same on every retry, so it is the dedupe key. Headers may come with the `svix-` or
the white-labelled `webhook-` prefix. Verification must run on the raw bytes, before any JSON parsing.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

from svix.webhooks import Webhook, WebhookVerificationError

from bot.errors import VerificationRefused
from integrations.guesty.models import (
    GUEST_EVENTS,
    LISTING_EVENTS,
    RESERVATION_EVENTS,
    SUPPORTED_EVENTS,
    GuestEvent,
    ListingEvent,
    ReservationEvent,
)

__all__ = ["SUPPORTED_EVENTS", "GuestyVerificationError", "subject", "verify"]


class GuestyVerificationError(VerificationRefused):
    """The delivery is not a genuine, fresh Guesty webhook; the message says why (safe to return)."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(f"svix-{name}") or lowered.get(f"webhook-{name}") or None


def verify(raw_body: bytes, headers: Mapping[str, str], secret: str) -> str:
    """Check the Svix signature over the raw body; return the dedupe key `guesty:<message id>`."""
    msg_id, timestamp, signature = (_header(headers, n) for n in ("id", "timestamp", "signature"))
    missing = [n for n, v in (("id", msg_id), ("timestamp", timestamp), ("signature", signature)) if not v]
    if missing:
        raise GuestyVerificationError(f"missing Svix headers: {', '.join('svix-' + n for n in missing)}")
    try:
        webhook = Webhook(secret)
    except (ValueError, binascii.Error) as exc:
        raise GuestyVerificationError("GUESTY_WEBHOOK_SECRET is not a valid whsec_ secret") from exc
    try:
        webhook.verify(
            raw_body, {"svix-id": msg_id or "", "svix-timestamp": timestamp or "", "svix-signature": signature or ""}
        )
    except WebhookVerificationError as exc:
        reason = str(exc)
        if "too old" in reason or "too new" in reason:
            raise GuestyVerificationError(f"stale timestamp: {reason.lower()} (more than 5 minutes off)") from None
        if "Invalid Signature Headers" in reason:
            raise GuestyVerificationError("malformed svix-timestamp header") from None
        raise GuestyVerificationError("bad signature: no matching v1 signature for this secret") from None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        # A malformed signature list ("v1" without a comma, bad base64) or a non-UTF-8 body.
        raise GuestyVerificationError("bad signature: malformed svix-signature header or body") from None
    return f"guesty:{msg_id}"


def subject(payload: Mapping[str, Any]) -> str | None:
    """What the event is about, so jobs on one reservation or listing never run at the same time."""
    event = payload.get("event")
    if not isinstance(event, str):
        return None
    try:
        if event in RESERVATION_EVENTS:
            rid = ReservationEvent.model_validate(payload).reservation_id()
            return f"reservation:{rid}" if rid else None
        if event in LISTING_EVENTS:
            lid = ListingEvent.model_validate(payload).listing_id()
            return f"listing:{lid}" if lid else None
        if event in GUEST_EVENTS:
            guest = GuestEvent.model_validate(payload).guest
            return f"guest:{guest.id}" if guest and guest.id else None
    except ValueError:  # pydantic's ValidationError: the handler will refuse it with a reason
        return None
    return None
