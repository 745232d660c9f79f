"""The web app: three webhook routes, health, readiness and metrics.

Each webhook route only authenticates, parses and hands over to bot.intake; the work happens in workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import jobs, metrics
from bot.chatwoot import verify as chatwoot_verify
from bot.intake import Rejection, accept, parse_object, read_body
from bot.ledger import Delivery
from config.settings import Settings
from integrations.aircall import transforms as aircall_transforms
from integrations.aircall import verify as aircall_verify
from integrations.guesty import verify as guesty_verify

log = logging.getLogger("sidecar.app")


def _webhook(route: str, handler: Callable[[Request, bytes], Awaitable[Delivery]]) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            raw = await read_body(request, request.app.state.settings.max_body_bytes)
            response: Response = await accept(request, await handler(request, raw))
        except Rejection as rej:
            if rej.status in (401, 413):
                log.warning("webhook refused", extra={"route": route, "status": rej.status, "reason": rej.reason})
            response = JSONResponse({"error": rej.reason}, status_code=rej.status)
        metrics.REQUESTS.labels(route, str(response.status_code)).inc()
        metrics.ACK_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    return endpoint


async def chatwoot_delivery(request: Request, raw: bytes) -> Delivery:
    settings: Settings = request.app.state.settings
    secret = settings.secret("chatwoot_bot_secret")
    token = settings.secret("chatwoot_webhook_token")
    try:
        if secret:
            chatwoot_verify.verify_signature(raw, request.headers, secret)
        elif token:
            given = request.path_params.get("token") or request.query_params.get("token")
            chatwoot_verify.verify_url_token(given, token)
        else:
            raise chatwoot_verify.VerificationError(
                "set CHATWOOT_BOT_SECRET or CHATWOOT_WEBHOOK_TOKEN to accept Chatwoot")
    except chatwoot_verify.VerificationError as exc:
        raise Rejection(401, str(exc)) from None
    payload = parse_object(raw)
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise Rejection(400, "missing 'event'")
    return Delivery(
        source="chatwoot",
        event_type=event,
        dedupe_key=chatwoot_verify.dedupe_key(payload, raw, request.headers.get("x-chatwoot-delivery")),
        subject=chatwoot_verify.subject(payload),
        payload=payload,
    )


async def aircall_delivery(request: Request, raw: bytes) -> Delivery:
    settings: Settings = request.app.state.settings
    payload = parse_object(raw)  # Aircall signs nothing: the token is inside the JSON
    expected = settings.secret("aircall_webhook_token")
    if not expected:
        raise Rejection(401, "set AIRCALL_WEBHOOK_TOKEN to accept Aircall")
    try:
        aircall_verify.verify_token(payload, expected)
    except aircall_verify.VerificationError as exc:
        raise Rejection(401, str(exc)) from None
    event = payload.get("event")
    data = payload.get("data")
    if not isinstance(event, str) or not isinstance(data, dict):
        raise Rejection(400, "missing 'event' or 'data'")
    # Never keep the shared secret, nor the presigned media links (bearer URLs to guests' audio): the
    # durable `asset` link stays, and a fresh URL comes from Aircall's API when one is needed.
    stored = {k: v for k, v in payload.items() if k != "token"}
    if payload.get("resource") == "call":
        stored["data"] = aircall_transforms.storable(data)
    return Delivery("aircall", event, aircall_verify.dedupe_key(payload), aircall_verify.subject(payload), stored)


async def guesty_delivery(request: Request, raw: bytes) -> Delivery:
    settings: Settings = request.app.state.settings
    secret = settings.secret("guesty_webhook_secret")
    if not secret:
        raise Rejection(401, "set GUESTY_WEBHOOK_SECRET to accept Guesty")
    try:
        message_id = guesty_verify.verify(raw, request.headers, secret)
    except guesty_verify.VerificationError as exc:
        raise Rejection(401, str(exc)) from None
    payload = parse_object(raw)
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise Rejection(400, "missing 'event'")
    return Delivery("guesty", event, message_id, guesty_verify.subject(payload), payload)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        async with state.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        await asyncio.to_thread(state.redis.ping)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", **checks}, status_code=200 if ok else 503)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text; event counts and queue depth are read fresh at scrape time."""
    state = request.app.state
    with contextlib.suppress(Exception):
        async with state.pool.connection(timeout=2) as conn:
            cur = await conn.execute("SELECT source, status, count(*) FROM operational_events GROUP BY 1, 2")
            metrics.EVENTS.clear()
            for source, status, count in await cur.fetchall():
                metrics.EVENTS.labels(source, status).set(count)
    with contextlib.suppress(Exception):
        metrics.QUEUE_DEPTH.set(await asyncio.to_thread(lambda: state.queue.count))
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings) -> Starlette:
    """Build the app; connections open in the lifespan so importing this module does no I/O."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(settings.database_dsn, min_size=2, max_size=10, timeout=3, open=False,
                                   kwargs={"autocommit": True})
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.redis = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
        app.state.queue = jobs.make_queue(settings, app.state.redis)
        try:
            yield
        finally:
            await pool.close()
            app.state.redis.close()

    app = Starlette(
        routes=[
            Route("/webhooks/chatwoot", _webhook("chatwoot", chatwoot_delivery), methods=["POST"]),
            Route("/webhooks/chatwoot/{token}", _webhook("chatwoot", chatwoot_delivery), methods=["POST"]),
            Route("/webhooks/aircall", _webhook("aircall", aircall_delivery), methods=["POST"]),
            Route("/webhooks/guesty", _webhook("guesty", guesty_delivery), methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
