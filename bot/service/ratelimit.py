"""Rate limits on the public webhook routes, applied before any work (no body read, no database).

Two kinds of caller reach /webhooks/*: the services we trust, whose requests carry credentials (a
Chatwoot signature or URL token, Aircall's token is in the body so its route counts as credentialed,
a Svix signature), and anyone else. So:

- a request with no credentials spends from its source address's bucket (RATE_LIMIT_PER_IP per second,
  twice that as a burst); an empty bucket answers 429 with Retry-After;
- a request with credentials spends from its route's bucket (RATE_LIMIT_PER_SOURCE per second, ten times
  that as a burst), far above what Chatwoot, Aircall or Guesty send, so a real delivery is not refused
  while strangers are;
- credentials that fail verification (a 401) cost their address RATE_LIMIT_FAILURE_COST tokens, so faking
  a signature header to reach the generous bucket stops working after a few tries.

The buckets live in each web process (no Redis call on the hot path); with N web replicas the limits are
N times these. The source address is the ASGI client: run uvicorn with proxy headers behind a proxy.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CREDENTIAL_HEADERS = (b"x-chatwoot-signature", b"svix-signature", b"webhook-signature")
MAX_TRACKED_ADDRESSES = 10_000


@dataclass
class Bucket:
    """A token bucket: `rate` tokens a second up to `burst`."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Spend `cost` tokens; 0 when allowed, else the seconds until enough have refilled."""
        self.refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate if self.rate > 0 else math.inf

    def charge(self, now: float, cost: float) -> None:
        """Spend `cost` even below zero: a debt that blocks the address until it is paid back."""
        self.refill(now)
        self.tokens -= cost


class RateLimiter:
    """The buckets: one per source address (least recently seen dropped first) and one per route."""

    def __init__(
        self, per_ip: float, per_source: float, failure_cost: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_ip, self.per_source, self.failure_cost = per_ip, per_source, failure_cost
        self.clock = clock
        self._ips: OrderedDict[str, Bucket] = OrderedDict()
        self._sources: dict[str, Bucket] = {}

    def _ip(self, address: str, now: float) -> Bucket:
        bucket = self._ips.get(address)
        if bucket is None:
            bucket = Bucket(self.per_ip, 2 * self.per_ip, 2 * self.per_ip, now)
            self._ips[address] = bucket
            if len(self._ips) > MAX_TRACKED_ADDRESSES:
                self._ips.popitem(last=False)
        else:
            self._ips.move_to_end(address)
        return bucket

    def admit(self, address: str, route: str, credentialed: bool) -> float:
        """0 to let the request in, else the Retry-After seconds."""
        now = self.clock()
        if self.per_ip <= 0 and (not credentialed or self.per_source <= 0):
            return 0.0  # limits off
        ip = self._ip(address, now) if self.per_ip > 0 else None
        if ip is None:
            return self._source(route, now).take(now) if credentialed else 0.0
        ip.refill(now)
        if ip.tokens < 0:  # in debt for failed credentials
            return -ip.tokens / ip.rate
        if not credentialed:
            return ip.take(now)
        if self.per_source <= 0:
            return 0.0
        return self._source(route, now).take(now)

    def _source(self, route: str, now: float) -> Bucket:
        source = self._sources.get(route)
        if source is None:
            source = self._sources[route] = Bucket(self.per_source, 10 * self.per_source, 10 * self.per_source, now)
        return source

    def failed_verification(self, address: str) -> None:
        if self.per_ip > 0:
            now = self.clock()
            self._ip(address, now).charge(now, self.failure_cost)


def route_of(path: str) -> str | None:
    """The webhook route a path belongs to ("chatwoot", "aircall", "guesty"), or None for other paths."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "webhooks":
        return parts[1]
    return None


def has_credentials(route: str, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request presents credentials (checked for real by the route, after the limit)."""
    if route == "aircall":
        return True  # Aircall's token is inside the JSON body, which is not read before the limit
    if route == "chatwoot" and path.rstrip("/").count("/") >= 3:
        return True  # /webhooks/chatwoot/{token}
    names = {name.lower() for name, _ in headers}
    return any(header in names for header in CREDENTIAL_HEADERS)


class RateLimitMiddleware:
    """ASGI middleware: the limiter in front of /webhooks/*; every other path passes untouched."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_of(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.limiter.admit(address, route, has_credentials(route, scope["path"], scope.get("headers", [])))
        if wait > 0:
            await _too_many(send, wait)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limiter.failed_verification(address)
            await send(message)

        await self.app(scope, receive, watch)


async def _too_many(send: Send, wait: float) -> None:
    body = b'{"error": "too many requests, retry later"}'
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(max(1, math.ceil(wait))).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
