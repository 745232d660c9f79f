"""Authenticating Aircall webhooks and deriving their ledger keys.

Aircall signs nothing: every delivery carries the webhook's shared `token` in its JSON body, compared
here in constant time. Delivery is at least once and unordered, so the dedupe key is the event and the
call id, plus the envelope timestamp for events that can happen several times in one call.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

# Events that may occur more than once for the same call.
REPEATABLE_EVENTS = frozenset({
    "call.tagged", "call.untagged", "call.commented", "call.transferred", "call.external_transferred",
    "call.unsuccessful_transfer", "call.ringing_on_agent", "call.agent_declined", "call.hold", "call.unhold",
    "call.assigned", "call.ivr_option_selected",
})


class VerificationError(Exception):
    """The delivery does not carry our Aircall token; the message says why (safe to return)."""


def verify_token(payload: Mapping[str, Any], expected: str) -> None:
    token = payload.get("token")
    if not isinstance(token, str) or not token:
        raise VerificationError("missing 'token' in the body")
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise VerificationError("wrong token")


def dedupe_key(payload: Mapping[str, Any]) -> str:
    event = str(payload.get("event"))
    data = payload.get("data")
    resource_id = data.get("id") if isinstance(data, Mapping) else None
    key = f"aircall:{event}:{resource_id}"
    if event in REPEATABLE_EVENTS or resource_id is None:
        key += f":{payload.get('timestamp')}"
    return key


def subject(payload: Mapping[str, Any]) -> str | None:
    """Jobs about one call run one at a time, so its record merges in order."""
    data = payload.get("data")
    if payload.get("resource") == "call" and isinstance(data, Mapping) and data.get("id") is not None:
        return f"call:{data['id']}"
    call_id = data.get("call_id") if isinstance(data, Mapping) else None
    return f"call:{call_id}" if call_id is not None else None
