"""Rate limits on the webhook routes: strangers get 429 with Retry-After, signed deliveries keep flowing."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from starlette.testclient import TestClient

from bot.service.app import create_app
from bot.service.ratelimit import RateLimiter, has_credentials, route_of
from demo.samples import guest_message
from tests.conftest import make_settings
from tests.webhooks import chatwoot_request

SECRET = "bot-secret-for-tests"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_without_credentials_gets_its_burst_then_waits() -> None:
    clock = Clock()
    limiter = RateLimiter(per_ip=5, per_source=100, failure_cost=10, clock=clock)
    assert [limiter.admit("203.0.113.9", "chatwoot", False) for _ in range(10)] == [0.0] * 10
    assert limiter.admit("203.0.113.9", "chatwoot", False) == 0.2
    assert limiter.admit("198.51.100.4", "chatwoot", False) == 0.0  # another address has its own bucket
    clock.now += 1
    assert [limiter.admit("203.0.113.9", "chatwoot", False) for _ in range(5)] == [0.0] * 5


def test_failed_credentials_put_the_address_in_debt() -> None:
    clock = Clock()
    limiter = RateLimiter(per_ip=5, per_source=100, failure_cost=10, clock=clock)
    assert limiter.admit("203.0.113.9", "chatwoot", True) == 0.0
    limiter.failed_verification("203.0.113.9")
    limiter.failed_verification("203.0.113.9")  # 10 tokens of burst - 20 = 10 in debt: 2 s at 5/s
    assert limiter.admit("203.0.113.9", "chatwoot", True) == 2.0
    clock.now += 2
    assert limiter.admit("203.0.113.9", "chatwoot", True) == 0.0


def test_zero_turns_the_limits_off() -> None:
    limiter = RateLimiter(per_ip=0, per_source=0, failure_cost=10)
    assert all(
        limiter.admit("203.0.113.9", "guesty", credentialed) == 0.0
        for credentialed in (True, False)
        for _ in range(1000)
    )


def test_what_counts_as_credentials() -> None:
    assert route_of("/webhooks/chatwoot/abc") == "chatwoot" and route_of("/metrics") is None
    assert has_credentials("chatwoot", "/webhooks/chatwoot/tok123", [])
    assert not has_credentials("chatwoot", "/webhooks/chatwoot", [(b"content-type", b"application/json")])
    assert has_credentials("chatwoot", "/webhooks/chatwoot", [(b"X-Chatwoot-Signature", b"sha256=abc")])
    assert has_credentials("guesty", "/webhooks/guesty", [(b"svix-signature", b"v1,abc")])
    assert has_credentials("aircall", "/webhooks/aircall", [])


def from_address(app: Any) -> Any:
    """The app, with each request's source address taken from an X-Test-Client header (TestClient has one)."""

    async def shim(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-client":
                    scope = dict(scope, client=(value.decode(), 40000))
        await app(scope, receive, send)

    return shim


def test_a_burst_of_strangers_is_refused_while_signed_deliveries_all_get_200(clean_db: str, queue_name: str) -> None:
    settings = make_settings(clean_db, queue_name, RATE_LIMIT_PER_IP="20")
    statuses: list[int] = []
    signed: list[int] = []
    with TestClient(from_address(create_app(settings))) as client:

        def strangers() -> None:
            for n in range(1000):
                r = client.post(
                    "/webhooks/chatwoot",
                    content=b'{"event": "message_created", "id": %d}' % n,
                    headers={"content-type": "application/json", "x-test-client": "198.51.100.7"},
                )
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1

        thread = threading.Thread(target=strangers)
        thread.start()
        for n in range(200):
            body, headers = chatwoot_request(guest_message(500 + n, 80_000 + n, "Hi there"), SECRET)
            headers["x-test-client"] = "10.0.4.20"  # Chatwoot's address
            signed.append(client.post("/webhooks/chatwoot", content=body, headers=headers).status_code)
        thread.join()
    assert signed == [200] * 200
    assert statuses.count(429) >= 900 and set(statuses) <= {401, 429}
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM operational_events").fetchone() == (200,)
