"""The mechanism behind `sidecar doctor`: a check's outcome, what checks may use, and running them.

Kept apart from the checks themselves so doctor.py (local checks, the command) and doctor_remote.py
(Chatwoot, Groq, Azure, Aircall, Guesty) both build on it without importing each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from config.settings import Settings

Status = Literal["ok", "problem", "skipped"]


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was found, and for a problem how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        label = {"ok": "OK", "problem": "PROBLEM", "skipped": "SKIP"}[self.status]
        return f"{label:8} {self.name}: {self.detail}" + (f" → fix: {self.fix}" if self.fix else "")


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def problem(name: str, detail: str, fix: str) -> Check:
    return Check(name, "problem", detail, fix)


def skipped(name: str, detail: str) -> Check:
    return Check(name, "skipped", detail)


@dataclass(frozen=True)
class Probe:
    """What every check may use."""

    settings: Settings
    http: httpx.AsyncClient
    timeout: float


CheckFn = Callable[[Probe], Awaitable[Check]]


async def run_checks(probe: Probe, checks: list[tuple[str, CheckFn]]) -> list[Check]:
    """Run the checks concurrently, each bounded by probe.timeout; a crash or a timeout is a problem."""

    async def one(name: str, check: CheckFn) -> Check:
        try:
            return await asyncio.wait_for(check(probe), probe.timeout)
        except TimeoutError:
            return problem(
                name,
                f"no answer within {probe.timeout:g} s",
                "see that the service is up and reachable from here, or raise --timeout",
            )
        except Exception as exc:  # a check that breaks must still say which one and why
            return problem(name, f"{type(exc).__name__}: {str(exc)[:300]}", "see the message")

    return list(await asyncio.gather(*(one(name, check) for name, check in checks)))
