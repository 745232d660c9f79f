"""Authenticating Aircall webhooks and deriving their ledger keys (pure; used by the web route).

Aircall signs nothing: each delivery carries the webhook's shared `token` inside the JSON body, which
we compare in constant time. There is no event id either, so the dedupe key is built from the event
name and the call id; events that can happen several times in one call (tags, comments, transfers,
ringing...) add the envelope timestamp, which is the same on every retry of one delivery.
Facts: /work/shared/reference/signing.md §1, externals.md §1.1-1.3.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from bot.errors import VerificationRefused

__all__ = [
    "REPEATABLE_EVENTS",
    "AircallPayloadError",
    "AircallVerificationError",
    "call_id",
    "check_envelope",
    "dedupe_key",
    "subject",
    "verify_token",
]

# Events that may fire more than once for the same call.
REPEATABLE_EVENTS = frozenset(
    {
        "call.ringing_on_agent",
        "call.agent_declined",
        "call.ivr_option_selected",
        "call.assigned",
        "call.hold",
        "call.unhold",
        "call.transferred",
        "call.external_transferred",
        "call.unsuccessful_transfer",
        "call.tagged",
        "call.untagged",
        "call.commented",
        "call.archived",
    }
)
AI_RESOURCES_EVENTS = frozenset({"transcription.created", "summary.created"})
MAX_ID = 2**63 - 1  # Aircall's ids are int64
MAX_TEXT_ID = 64  # users, contacts and numbers may carry string ids ("1402231")


class AircallVerificationError(VerificationRefused):
    """The delivery does not carry our Aircall webhook token; the message says why (safe to return)."""


def verify_token(payload: Mapping[str, Any], expected: str) -> None:
    """Raise AircallVerificationError unless payload["token"] equals the webhook token (constant time)."""
    if not expected:
        raise AircallVerificationError(
            "AIRCALL_WEBHOOK_TOKEN is not set: copy the token Aircall shows for this "
            "webhook (Dashboard, or GET /v1/webhooks/{id})"
        )
    if not isinstance(payload, Mapping):
        raise AircallVerificationError("the body is not a JSON object")
    token = payload.get("token")
    if not isinstance(token, str) or not token:
        raise AircallVerificationError("missing 'token' in the body")
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise AircallVerificationError("wrong token: it does not match AIRCALL_WEBHOOK_TOKEN")


class AircallPayloadError(ValueError):
    """An authentic delivery whose envelope is not what Aircall sends; the message names the field (400)."""


def _is_call_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_ID
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= MAX_ID


def check_envelope(payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """`event` and `data`, once the envelope fields the ledger's keys come from have Aircall's types.

    Call ids must be int64 (a string of digits is tolerated, as `call_id` reads it); other resources'
    ids an int64 or a short string; `timestamp` unix seconds. Raises AircallPayloadError naming the field.
    """
    event, data = payload.get("event"), payload.get("data")
    if not isinstance(event, str) or not event:
        raise AircallPayloadError("missing 'event'" if event in (None, "") else "'event' must be a string")
    if not isinstance(data, Mapping):
        raise AircallPayloadError("missing 'data'" if data is None else "'data' must be an object")
    if payload.get("resource") is not None and not isinstance(payload["resource"], str):
        raise AircallPayloadError("'resource' must be a string")
    stamp = payload.get("timestamp")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp <= MAX_ID):
        raise AircallPayloadError("'timestamp' must be unix seconds (an integer)")
    if event in AI_RESOURCES_EVENTS or payload.get("resource") == "conversation_intelligence":
        if data.get("call_id") is not None and not _is_call_id(data["call_id"]):
            raise AircallPayloadError("'data.call_id' must be an integer id")
        nested = data.get("call")
        if nested is not None and not isinstance(nested, Mapping):
            raise AircallPayloadError("'data.call' must be an object")
        if isinstance(nested, Mapping) and nested.get("id") is not None and not _is_call_id(nested["id"]):
            raise AircallPayloadError("'data.call.id' must be an integer id")
    elif (event.startswith("call.") or payload.get("resource") == "call") and not _is_call_id(data.get("id")):
        raise AircallPayloadError("'data.id' must be the call's integer id")
    ident = data.get("id")
    if ident is not None and not (_is_call_id(ident) or (isinstance(ident, str) and 0 < len(ident) <= MAX_TEXT_ID)):
        raise AircallPayloadError(f"'data.id' must be an integer or a string of at most {MAX_TEXT_ID} characters")
    return event, data


def call_id(payload: Mapping[str, Any]) -> int | None:
    """The Aircall call a delivery is about: data.id for call events, data.call_id for AI events."""
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None
    if payload.get("event") in AI_RESOURCES_EVENTS or payload.get("resource") == "conversation_intelligence":
        nested = data.get("call")
        candidates = [data.get("call_id"), nested.get("id") if isinstance(nested, Mapping) else None]
    elif str(payload.get("event", "")).startswith("call.") or payload.get("resource") == "call":
        candidates = [data.get("id")]
    else:
        return None
    for value in candidates:
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
            return int(value)
    return None


def dedupe_key(payload: Mapping[str, Any]) -> str:
    """`aircall:{event}:{id}`, plus `:{timestamp}` for repeatable events.

    Calls use the call id; other resources (users, numbers...) their own data.id. A payload without
    any id falls back to a hash of its content, so it is still stored once.
    """
    event = str(payload.get("event") or "unknown")
    data = payload.get("data")
    ident: Any = call_id(payload)
    if ident is None and isinstance(data, Mapping):
        ident = data.get("id")
    if ident is None or isinstance(ident, Mapping | list):
        body = {k: v for k, v in payload.items() if k != "token"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:32]
        return f"aircall:{event}:sha256:{digest}"
    key = f"aircall:{event}:{ident}"
    if event in REPEATABLE_EVENTS:
        key += f":{payload.get('timestamp')}"
    return key


def subject(payload: Mapping[str, Any]) -> str | None:
    """ "call:<id>": the job layer runs one job per subject at a time, so a call's events never race."""
    ident = call_id(payload)
    return f"call:{ident}" if ident is not None else None
