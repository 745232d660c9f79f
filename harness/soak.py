"""Soak mode: a steady stream for a long time, sampling memory and Postgres connections.

Flat means: the median of the last quarter of samples is within 15 % (RSS) or 2 connections of the
median of the first quarter (taken after the first minute, once models are loaded and pools filled).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.faults import Stack
from harness.stream import Streamer

RSS_GROWTH = 0.15
CONN_GROWTH = 2


def parse_duration(text: str) -> float:
    """'30m', '2h', '90s' or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 2h, 90s)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def tree_rss_kb(pid: int | None) -> int:
    """Resident memory of a process and its descendants, in kB (0 when it is gone)."""
    if pid is None:
        return 0
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) if "VmRSS" in status else 0  # type: ignore[union-attr]
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
        except (OSError, ValueError):
            continue
    return total


def pg_connections(url: str) -> int:
    admin = url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin, connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'sidecar'").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return -1


@dataclass
class Sample:
    at_s: float
    serve_kb: int
    worker_kb: int
    connections: int


def _flat(values: list[int], *, relative: float | None = None, absolute: int | None = None) -> tuple[bool, str]:
    quarter = max(1, len(values) // 4)
    first, last = statistics.median(values[:quarter]), statistics.median(values[-quarter:])
    ok = last <= first * (1 + relative) if relative is not None else last <= first + (absolute or 0)
    return ok, f"{first:.0f} -> {last:.0f}"


async def soak(stack: Stack, streamer: Streamer, duration_s: float, rate_per_s: float) -> tuple[bool | None, str]:
    """Stream for `duration_s`, sampling every `duration/30` seconds (at least 10 s); returns (flat, report),
    flat None when the run was too short to judge."""
    interval = max(10.0, duration_s / 30)
    samples: list[Sample] = []
    started = time.monotonic()

    async def sample_loop() -> None:
        while time.monotonic() - started < duration_s:
            await asyncio.sleep(interval)
            samples.append(
                Sample(
                    time.monotonic() - started,
                    tree_rss_kb(stack.sidecar.serve.pid),
                    tree_rss_kb(stack.sidecar.worker.pid),
                    await asyncio.to_thread(pg_connections, stack.postgres.url),
                )
            )

    await asyncio.gather(streamer.stream("soak", int(duration_s * rate_per_s), rate_per_s), sample_loop())
    warm = [s for s in samples if s.at_s >= 60] or samples
    lines = [f"{'t (s)':>7}  {'serve RSS MB':>12}  {'worker RSS MB':>13}  {'pg conns':>8}"]
    lines += [
        f"{s.at_s:7.0f}  {s.serve_kb / 1024:12.1f}  {s.worker_kb / 1024:13.1f}  {s.connections:8d}" for s in samples
    ]
    if len(warm) < 4:
        return None, "\n".join([*lines, "too few samples after the first minute to judge (soak longer)"])
    checks = [
        ("serve RSS kB", *_flat([s.serve_kb for s in warm], relative=RSS_GROWTH)),
        ("worker RSS kB", *_flat([s.worker_kb for s in warm], relative=RSS_GROWTH)),
        ("postgres connections", *_flat([s.connections for s in warm], absolute=CONN_GROWTH)),
    ]
    lines += [f"{name}: {span} ({'flat' if ok else 'GROWING'})" for name, ok, span in checks]
    return all(ok for _, ok, _ in checks), "\n".join(lines)
