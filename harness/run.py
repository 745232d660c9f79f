"""`python -m harness`: the fault harness. Starts its own Postgres, Redis, Chatwoot stand-in and the real
`sidecar serve` and `sidecar worker`, runs the fault scenarios and the webhook fuzzers, prints one table.

Exit status: 0 when nothing was lost or duplicated and no request got a 5xx, 1 otherwise, 2 on a
harness error (a service would not start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python harness/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from harness.causes import exception_summary
from harness.faults import Stack
from harness.fuzz import fuzz_endpoint
from harness.ports import spare_port, wait_listening
from harness.report import Row, fuzz_row, is_processed, render, scenario_rows
from harness.scenarios import Scenario, plan
from harness.services import Postgres, Redis, ServiceError
from harness.sidecar import Sidecar, service_env
from harness.soak import parse_duration, soak
from harness.stream import Streamer

REPO = Path(__file__).resolve().parent.parent
QUIET_S = 10.0  # settled: every message processed and nothing new saved for this long


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="the same faults, smaller and shorter (about 3 minutes)")
    p.add_argument("--deliveries", type=int, help="guest messages during the worker kills (2000; quick 150)")
    p.add_argument("--kills", type=int, help="kill -9 of the worker during those deliveries (20; quick 5)")
    p.add_argument("--fuzz", type=int, help="fuzzed requests per webhook route (10000; quick 400; 0 skips)")
    p.add_argument("--settle", type=float, help="seconds to wait for answers after the last scenario (360; quick 30)")
    p.add_argument("--gap", type=float, help="at most this long to drain between scenarios (30; quick 5)")
    p.add_argument("--soak", metavar="DURATION", help="soak mode instead of the scenarios, e.g. 30m")
    p.add_argument("--only", action="append", default=[], help="run only scenarios whose name contains this")
    p.add_argument("--concurrency", type=int, default=4, help="WORKER_CONCURRENCY of the worker (4)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (data and logs)")
    args = p.parse_args(argv)
    args.deliveries = args.deliveries or (150 if args.quick else 2000)
    args.kills = args.kills if args.kills is not None else (5 if args.quick else 20)
    args.fuzz = args.fuzz if args.fuzz is not None else (400 if args.quick else 10_000)
    args.gap = args.gap if args.gap is not None else (5.0 if args.quick else 30.0)
    args.settle = args.settle if args.settle is not None else (30.0 if args.quick else 360.0)
    return args


def log(message: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def standin_state(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{url}/_harness/state")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


async def wait_ready(sidecar_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{sidecar_url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise ServiceError(f"{sidecar_url}/readyz never answered 200")


async def settle(streamer: Streamer, standin_url: str, limit_s: float, quiet_s: float = QUIET_S) -> float:
    """Wait until every guest message is processed and nothing new is saved for `quiet_s`, or `limit_s`."""
    started = last_change = time.monotonic()
    seen = -1
    while time.monotonic() - started < limit_s:
        state = await standin_state(standin_url)
        saved: dict[int, list[dict[str, Any]]] = {}
        for m in state["messages"]:
            saved.setdefault(int(m["conversation_id"]), []).append(m)
        opened = set(state["opened_by_bot"])
        pending = sum(1 for s in streamer.sent if not is_processed(s.conversation_id, saved, opened))
        total = len(state["messages"]) + len(opened)
        if total != seen:
            seen, last_change = total, time.monotonic()
        if pending == 0 and time.monotonic() - last_change >= quiet_s:
            break
        await asyncio.sleep(2)
    return time.monotonic() - started


async def run_scenario(stack: Stack, streamer: Streamer, scenario: Scenario) -> str:
    log(f"scenario: {scenario.name} ({scenario.deliveries} messages over {scenario.window_s:.0f}s)")
    stream = streamer.stream(scenario.name, scenario.deliveries, scenario.rate_per_s)
    if scenario.fault is None:
        await stream
        return ""
    _, note = await asyncio.gather(stream, scenario.fault(stack, scenario.window_s))
    return str(note)


async def main_async(args: argparse.Namespace, stack: Stack) -> tuple[list[Row], str, bool]:
    streamer = Streamer(stack.sidecar.base_url, stack.standin_url)
    extra = ""
    soak_growing = False
    notes: dict[str, str] = {}
    try:
        await streamer.stream("warm-up", 2, 1)
        await settle(streamer, stack.standin_url, 90)
        if args.soak:
            duration = parse_duration(args.soak)
            log(f"soak: {duration:.0f}s")
            flat, extra = await soak(stack, streamer, duration, rate_per_s=2)
            extra += "\nsoak verdict: " + {True: "flat", False: "GROWING", None: "not judged"}[flat]
            soak_growing = flat is False
            order = ["soak"]
        else:
            order = []
            for scenario in plan(deliveries=args.deliveries, kills=args.kills, quick=args.quick):
                if args.only and not any(word in scenario.name for word in args.only):
                    continue
                order.append(scenario.name)
                notes[scenario.name] = await run_scenario(stack, streamer, scenario)
                await asyncio.sleep(scenario.drain_s)
                await settle(streamer, stack.standin_url, args.gap, quiet_s=2)  # drain before the next fault
        log(f"settling (up to {args.settle:.0f}s)")
        waited = await settle(streamer, stack.standin_url, args.settle)
        log(f"settled after {waited:.0f}s")
        state = await standin_state(stack.standin_url)
    finally:
        await streamer.close()
    rows = scenario_rows(order, streamer.sent, state, notes)
    restarts = (
        f"supervisor: serve exited by itself {stack.sidecar.serve.own_exits}x, "
        f"worker {stack.sidecar.worker.own_exits}x; injected at the stand-in: {state['injected']}"
    )
    return rows, "\n".join(x for x in (extra, restarts) if x), soak_growing


def run_fuzz(args: argparse.Namespace, sidecar_url: str) -> list[Row]:
    rows = []
    for endpoint in ("chatwoot", "aircall", "guesty"):
        log(f"fuzzing /webhooks/{endpoint} with {args.fuzz} requests")
        tally = fuzz_endpoint(sidecar_url, endpoint, args.fuzz)
        row = fuzz_row(tally)
        if tally.samples:
            row.note += "; first 5xx bodies: " + " | ".join(f"{k}: {v}" for k, v in tally.samples.items())
        rows.append(row)
    return rows


def start_standin(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = spare_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (root / "logs" / "standin.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.standin", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if not wait_listening(port, 30):
        raise ServiceError(f"the Chatwoot stand-in did not start (log: {root / 'logs' / 'standin.log'})")
    return proc, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="sidecar-harness-"))
    root.chmod(0o755)  # the postgres user must reach its data folder inside
    (root / "logs").mkdir()
    log(f"working in {root}")
    postgres, redis = Postgres(root), Redis(root)
    standin: subprocess.Popen[bytes] | None = None
    sidecar: Sidecar | None = None
    try:
        postgres.init()
        postgres.start()
        redis.start()
        standin, standin_url = start_standin(root)
        env = service_env(
            database_url=postgres.url,
            redis_url=redis.url,
            chatwoot_url=standin_url,
            root=root,
            concurrency=args.concurrency,
        )
        sidecar = Sidecar(env, root, repo=REPO)
        log("sidecar db upgrade; sidecar ingest harness/knowledge")
        sidecar.run_once("db", "upgrade")
        sidecar.run_once("ingest", str(REPO / "harness" / "knowledge"))
        sidecar.start()
        asyncio.run(wait_ready(sidecar.base_url, 60))
        stack = Stack(postgres, redis, sidecar, standin_url)
        rows, extra, soak_growing = asyncio.run(main_async(args, stack))
        if args.fuzz and not args.soak:
            rows += run_fuzz(args, sidecar.base_url)
    except (ServiceError, RuntimeError, subprocess.SubprocessError, httpx.HTTPError) as exc:
        log(f"harness error: {exc}")
        return 2
    finally:
        if sidecar is not None:
            sidecar.stop()
        if standin is not None:
            standin.terminate()
            standin.wait(timeout=10)
        redis.stop()
        postgres.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            for part in ("postgres", "redis", "qdrant"):
                shutil.rmtree(root / part, ignore_errors=True)
            log(f"logs kept in {root / 'logs'}")
    print(render(rows))
    if extra:
        print("\n" + extra)
    for name in ("serve", "worker"):
        found = exception_summary(root / "logs" / f"{name}.log")
        if found:
            print(f"\nexceptions in {name}.log (count, last line):")
            print("\n".join(found))
    failed = any(r.failed for r in rows) or soak_growing
    print("\nresult: " + ("FAIL (lost, duplicated or 5xx above)" if failed else "PASS"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
