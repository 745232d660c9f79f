"""What every webhook route shares before anything is stored: a size-capped body, a JSON object, and a
refusal that carries its HTTP status and a reason the sender can read.

Each integration's `route.py` turns a request into a `Delivery` (verify, parse, name the event, its
dedupe key and subject) with these; bot.service.intake stores and queues it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from bot.core.ledger import Delivery
from bot.errors import SidecarError

# A route's verifier and parser: the request and its raw body in, the delivery to store out.
DeliveryParser = Callable[[Request, bytes], Awaitable[Delivery]]


class Rejection(SidecarError):
    """A request we refuse, with the status and a reason the sender can read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Rejection(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejection(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object or refuse with 400."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejection(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejection(400, "JSON body must be an object")
    return data
