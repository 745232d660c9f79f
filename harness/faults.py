"""The faults a scenario injects while its deliveries stream: each is a coroutine over a time window."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from harness.services import Postgres, Redis
from harness.sidecar import Sidecar


@dataclass
class Stack:
    postgres: Postgres
    redis: Redis
    sidecar: Sidecar
    standin_url: str


Fault = Callable[[Stack, float], Awaitable[str]]


def kill_worker(times: int) -> Fault:
    """kill -9 the worker `times` times, evenly over the window; it is started again at once."""

    async def run(stack: Stack, window_s: float) -> str:
        gap = window_s / (times + 1)
        for _ in range(times):
            await asyncio.sleep(gap)
            await asyncio.to_thread(stack.sidecar.worker.kill9)
        return f"worker killed {times}x"

    return run


def restart_redis(down_s: float) -> Fault:
    """kill -9 Redis a third of the way in, start it again (append-only file) after `down_s`."""

    async def run(stack: Stack, window_s: float) -> str:
        await asyncio.sleep(window_s / 3)
        await asyncio.to_thread(stack.redis.crash)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(stack.redis.start)
        return f"redis killed, back after {down_s:.0f}s"

    return run


def stop_postgres(down_s: float) -> Fault:
    """Stop Postgres (pg_ctl -m fast) a fifth of the way in, for `down_s` seconds. The window should outlast
    the outage, so the first jobs after the restart (on connections that died with it) count here."""

    async def run(stack: Stack, window_s: float) -> str:
        await asyncio.sleep(window_s / 5)
        await asyncio.to_thread(stack.postgres.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(stack.postgres.start)
        return f"postgres stopped {down_s:.0f}s"

    return run


def chatwoot_errors(for_s: float) -> Fault:
    """Chatwoot answers 500 and 429 (Retry-After: 1) alternately to every API call for `for_s` seconds."""

    async def run(stack: Stack, window_s: float) -> str:
        await _set_faults(stack, {"errors_for_s": for_s})
        await asyncio.sleep(for_s)
        return f"chatwoot 500/429 for {for_s:.0f}s"

    return run


def after_save(kind: str, max_hits: int, hang_s: float = 25.0) -> Fault:
    """Chatwoot saves the message, then answers 502 (`kind` "502") or hangs past the client's timeout."""

    async def run(stack: Stack, window_s: float) -> str:
        await _set_faults(
            stack, {"after_save": kind, "after_save_for_s": window_s, "after_save_max": max_hits, "hang_s": hang_s}
        )
        return f"{kind} after save, {max_hits} messages"

    return run


async def _set_faults(stack: Stack, body: dict[str, object]) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        (await client.post(f"{stack.standin_url}/_harness/faults", json=body)).raise_for_status()
