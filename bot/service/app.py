"""The web app: three webhook routes, health, readiness and metrics, and a background task that drains the
intake's spool and redacts old payloads (bot.service.intake.housekeeping).

Each webhook route only authenticates, parses and hands over to bot.service.intake; the work happens in workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.core import db, metrics
from bot.core.spool import Spool
from bot.core.webhooks import DeliveryParser, Rejection, check_delivery, read_body
from bot.service import jobs, panel
from bot.service.intake import accept, housekeeping
from bot.service.ratelimit import RateLimiter, RateLimitMiddleware
from config.settings import Settings
from integrations.aircall import route as aircall
from integrations.chatwoot import route as chatwoot
from integrations.guesty import route as guesty

log = logging.getLogger("sidecar.app")


def _webhook(route: str, handler: DeliveryParser) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            raw = await read_body(request, request.app.state.settings.max_body_bytes)
            response: Response = await accept(request, check_delivery(await handler(request, raw)))
        except Rejection as rej:
            if rej.status in (401, 413):
                log.warning("webhook refused", extra={"route": route, "status": rej.status, "reason": rej.reason})
            response = JSONResponse({"error": rej.reason}, status_code=rej.status)
        metrics.REQUESTS.labels(route, str(response.status_code)).inc()
        metrics.ACK_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    return endpoint


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
    """Prometheus text from in-memory counters; only the queue depth (one LLEN) and the spool's length
    (one directory listing) are read at scrape time, never the ledger."""
    state = request.app.state
    metrics.SPOOL_PENDING.set(len(state.spool.names()))
    with contextlib.suppress(Exception):
        metrics.QUEUE_DEPTH.set(await asyncio.to_thread(lambda: state.queue.count))
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings) -> Starlette:
    """Build the app; connections open in the lifespan so importing this module does no I/O."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # check: a connection broken by a Postgres restart is replaced when taken, not used for a delivery
        # (which would then go to the spool); the check is one empty round trip.
        pool = AsyncConnectionPool(
            settings.database_dsn,
            min_size=2,
            max_size=10,
            timeout=3,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": settings.prepare_threshold},
            **db.pool_options(),
        )
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.redis = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
        app.state.queue = jobs.make_queue(settings, app.state.redis)
        app.state.spool = Spool(settings.spool_dir)
        if (problem := await asyncio.to_thread(app.state.spool.problem)) is not None:
            log.error("spool unusable: deliveries will get 500 while Postgres is down", extra={"reason": problem})
        app.state.drain_wakeup = asyncio.Event()
        keeper = asyncio.create_task(housekeeping(app.state), name="housekeeping")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await pool.close()
            app.state.redis.close()

    app = Starlette(
        routes=[
            Route("/webhooks/chatwoot", _webhook("chatwoot", chatwoot.delivery), methods=["POST"]),
            Route("/webhooks/chatwoot/{token}", _webhook("chatwoot", chatwoot.delivery), methods=["POST"]),
            Route("/webhooks/aircall", _webhook("aircall", aircall.delivery), methods=["POST"]),
            Route("/webhooks/guesty", _webhook("guesty", guesty.delivery), methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            *panel.routes(),  # the agent panel (a Chatwoot Dashboard App), bot/service/panel.py
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(
                RateLimitMiddleware,
                limiter=RateLimiter(
                    settings.rate_limit_per_ip, settings.rate_limit_per_source, settings.rate_limit_failure_cost
                ),
            )
        ],
    )
    app.state.settings = settings
    return app
