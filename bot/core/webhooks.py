"""What every webhook route shares before anything is stored: a size-capped body, a JSON object that
PostgreSQL can store, and a refusal that carries its HTTP status and a reason the sender can read.

Each integration's `route.py` turns a request into a `Delivery` (verify, parse, name the event, its
dedupe key and subject) with these; bot.service.intake stores and queues it. Anything a sender can put
in a request ends here as a 4xx with a reason, never as a 5xx: a 5xx tells Chatwoot, Aircall and Svix
to retry, and a malformed request retried forever helps nobody.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request

from bot.core.ledger import Delivery
from bot.errors import SidecarError

# A route's verifier and parser: the request and its raw body in, the delivery to store out.
DeliveryParser = Callable[[Request, bytes], Awaitable[Delivery]]

# Real payloads nest about 6 levels (Chatwoot's message > conversation > messages > sender); 64 leaves room
# and keeps every later walk (pydantic, the JSON encoder, jsonb) far from Python's recursion limit.
MAX_DEPTH = 64
# Btree index entries must stay well under PostgreSQL's ~2.7 kB limit; real keys are under 100 characters.
MAX_KEY_CHARS = 512
MAX_EVENT_CHARS = 128


class Rejection(SidecarError):
    """A request we refuse, with the status and a reason the sender can read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    # A length of more than 15 digits is over any limit; int() of thousands of digits would raise.
    if declared and declared.isascii() and declared.isdigit() and (len(declared) > 15 or int(declared) > limit):
        raise Rejection(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejection(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which jsonb cannot hold
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object that PostgreSQL's jsonb can store, or refuse with 400."""
    if not raw.strip():
        raise Rejection(400, "empty body: expected a JSON object")
    try:
        data = json.loads(raw, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:
        raise Rejection(400, f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise Rejection(400, "malformed JSON: the body is not valid UTF-8") from None
    except ValueError as exc:
        raise Rejection(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejection(400, f"JSON body must be an object, not {_json_type(data)}")
    check_storable(data)
    return data


def check_storable(data: Any) -> None:
    """Refuse what jsonb rejects (NUL characters, lone surrogates) and absurd nesting, with 400."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise Rejection(400, f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
            items: Iterable[Any] = value
            if isinstance(value, dict):
                for key in value:
                    _check_text(key)
                items = value.values()
            stack.extend((item, depth + 1) for item in items if isinstance(item, str | dict | list))


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise Rejection(400, "JSON strings must not contain NUL (\\u0000)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejection(400, "JSON strings must not contain unpaired surrogates (\\ud800-\\udfff)") from None


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def check_delivery(delivery: Delivery) -> Delivery:
    """Refuse keys no real sender produces and the ledger's indexes could not hold (400)."""
    if not delivery.event_type or len(delivery.event_type) > MAX_EVENT_CHARS:
        raise Rejection(400, f"'event' must be 1 to {MAX_EVENT_CHARS} characters")
    if len(delivery.dedupe_key) > MAX_KEY_CHARS:
        raise Rejection(400, f"the delivery's id is longer than {MAX_KEY_CHARS} characters")
    if delivery.subject is not None and len(delivery.subject) > MAX_KEY_CHARS:
        raise Rejection(400, f"the id of what the event is about is longer than {MAX_KEY_CHARS} characters")
    for text in (delivery.event_type, delivery.dedupe_key, delivery.subject or ""):
        _check_text(text)
    return delivery
