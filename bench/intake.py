"""Webhook intake benchmark: the real service against a bare Starlette endpoint, in the same run.

Starts `sidecar serve` (one uvicorn process, a scratch database and queue) and the bare app, then from
this separate process drives signed Chatwoot deliveries at each: first as fast as a fixed number of
concurrent senders can go (sustained requests/s), then at a fixed rate (default 200/s) to read the
acknowledgement latency p50/p99. Prints both figures for both servers and their ratio. No assertions.

    python bench/intake.py [--requests 3000] [--rate 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.core import db
from integrations.chatwoot.verify import sign

SECRET = "bench-secret"
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
FIXTURE = ROOT.parent / "shared" / "fixtures" / "chatwoot" / "message_created.agent_reply.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def template() -> dict[str, object]:
    if FIXTURE.exists():
        return json.loads(FIXTURE.read_text())  # type: ignore[no-any-return]
    return {
        "event": "message_created",
        "message_type": "outgoing",
        "content": "hello",
        "private": False,
        "conversation": {"id": 1, "status": "open"},
    }


def signed(n: int, base: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    payload = dict(base, id=10_000_000 + n)
    body = json.dumps(payload).encode()
    ts = int(time.time())
    return body, {
        "content-type": "application/json",
        "x-chatwoot-timestamp": str(ts),
        "x-chatwoot-signature": sign(body, SECRET, ts),
        "x-chatwoot-delivery": str(uuid.uuid4()),
    }


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}; see its log")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


async def closed_loop(url: str, total: int, concurrency: int, offset: int) -> tuple[float, list[float]]:
    """Send `total` requests from `concurrency` senders as fast as they go; return req/s and latencies."""
    base = template()
    latencies: list[float] = []
    counter = iter(range(total))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def sender() -> None:
            for n in counter:
                body, headers = signed(offset + n, base)
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"unexpected {r.status_code}: {r.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return total / elapsed, latencies


async def open_loop(url: str, total: int, rate: float, offset: int) -> tuple[float, list[float]]:
    """Send at a fixed rate regardless of answers (as webhooks arrive); return achieved rate, latencies."""
    base = template()
    latencies: list[float] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as client:

        async def one(n: int) -> None:
            body, headers = signed(offset + n, base)
            t0 = time.perf_counter()
            r = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise SystemExit(f"unexpected {r.status_code}: {r.text[:200]}")

        start = time.perf_counter()
        tasks = []
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return total / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] * 1000


def measure(name: str, url: str, args: argparse.Namespace, offset: int) -> dict[str, float]:
    asyncio.run(closed_loop(url, 200, args.concurrency, offset))  # warm up connections and caches
    rps, _ = asyncio.run(closed_loop(url, args.requests, args.concurrency, offset + 1_000_000))
    rate, lat = asyncio.run(open_loop(url, int(args.rate * args.seconds), args.rate, offset + 2_000_000))
    result = {"rps": rps, "rate": rate, "p50": pct(lat, 0.50), "p99": pct(lat, 0.99)}
    print(
        f"{name:8}  sustained {rps:7.0f} req/s   at {rate:5.0f} req/s: p50 {result['p50']:6.2f} ms  "
        f"p99 {result['p99']:6.2f} ms"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests for the throughput phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    args = parser.parse_args()

    dsn = db.with_database(SERVER, f"sidecar_bench_{uuid.uuid4().hex[:8]}")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    db.create_database(dsn)
    db.upgrade(dsn)
    env = dict(
        os.environ,
        DATABASE_URL=dsn,
        QUEUE_NAME=queue,
        CHATWOOT_BOT_SECRET=SECRET,
        LOG_LEVEL="WARNING",
        SPEECH_BACKEND="local",
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sp, bp = free_port(), free_port()
        log_path = Path(os.environ.get("BENCH_LOG", "/tmp/sidecar-bench.log"))
        log_file = log_path.open("wb")
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "bot.service.cli", "serve", "--port", str(sp)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        bare = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.bare_app:app",
                "--port",
                str(bp),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        procs = [sidecar, bare]
        wait_up(f"http://127.0.0.1:{sp}/healthz", sidecar)
        wait_up(f"http://127.0.0.1:{bp}/", bare)
        print(
            f"intake benchmark: {args.requests} requests x {args.concurrency} senders, then "
            f"{args.rate:.0f} req/s for {args.seconds:.0f} s; one uvicorn process each, {os.cpu_count()} cores"
        )
        bare_r = measure("bare", f"http://127.0.0.1:{bp}/webhooks/chatwoot", args, 0)
        side_r = measure("sidecar", f"http://127.0.0.1:{sp}/webhooks/chatwoot", args, 0)
        print(
            f"ratio sidecar/bare: throughput {side_r['rps'] / bare_r['rps']:.2f}   "
            f"p99 at {args.rate:.0f} req/s {side_r['p99']:.2f} ms vs {bare_r['p99']:.2f} ms"
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        import redis

        r = redis.Redis()
        keys = list(r.scan_iter(f"*{queue}*"))
        if keys:
            r.delete(*keys)
        db.drop_database(dsn)


if __name__ == "__main__":
    main()
