"""Webhook-to-reply benchmark: the real service and worker against Chatwoot and Groq stand-ins.

Starts `sidecar serve` and `sidecar worker` with --concurrency job slots (scratch database, queue and embedded store
holding the bundled examples), and in this process a Chatwoot stand-in that answers every call after
--chatwoot-ms and a Groq stand-in that answers after --groq-first-ms plus the answer's tokens at
--groq-tps. Then runs --conversations guests at once, each asking --rounds questions: ask, wait for the reply, pause
0.5 to --think-s seconds, ask again. Records when each public reply reaches the Chatwoot stand-in.

On the way to a reply the bot must wait for: the Groq answer, and one Chatwoot read (the re-check that
the conversation is still the bot's, just before posting). The typing indicator is not waited for. So
the upstream sum per conversation is groq_total + chatwoot_ms, and the ratio is latency / that sum.

    python bench/reply.py [--conversations 50] [--chatwoot-ms 40] [--groq-first-ms 350] [--groq-tps 500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.intake import free_port, wait_up
from bot.core import db
from demo.samples import guest_message
from demo.standins import Recorder, chatwoot_app, groq_app
from integrations.chatwoot.verify import sign

SECRET = "bench-secret"
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
ANSWER = (
    "Check-out is by 11:00. Please leave the keys on the kitchen table and close the windows. "
    "Late check-out until 13:00 costs 20 EUR when the flat is free."
)
INBOXES = '[inboxes.3]\nmode = "autopilot"\nproperty = "lis-alfama"\n'


class Arrivals(Recorder):
    """Records when each public reply arrives (before the stand-in's own delay is served) and wakes the
    guest waiting for it (no polling, which would steal CPU from the stand-ins in this process)."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: dict[int, float] = {}
        self.events: dict[int, threading.Event] = {}
        self.lock = threading.Lock()

    def event(self, conv: int) -> threading.Event:
        with self.lock:
            return self.events.setdefault(conv, threading.Event())

    def arrived(self, conv: int) -> None:
        if conv not in self.replies:
            self.replies[conv] = time.monotonic()
            self.event(conv).set()


def serve(app: object, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",  # type: ignore[arg-type]
            access_log=False,
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


def breakdown(dsn: str, groq_ms: float, chatwoot_ms: float) -> str:
    """Where our share of each reply went (medians), from what the service records anyway: the event's
    arrival and its job's start, and each answer's step timings (qa_records.timings, whole milliseconds).
    Not counted here: the webhook before its row is stored, and the post after the re-check."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """
            SELECT extract(epoch FROM a.started_at - e.received_at) * 1000,
                   (q.timings->>'context_ms')::float, (q.timings->>'retrieval_ms')::float,
                   (q.timings->>'answer_ms')::float - %s, (q.timings->>'recheck_ms')::float - %s
            FROM qa_records q
            JOIN operational_events e
              ON e.event_type = 'message_created' AND (e.payload->>'id')::bigint = q.message_ids[1]
            JOIN job_attempts a ON a.event_id = e.id AND a.attempt = 1
            WHERE q.conversation_id <> 1 AND q.timings ? 'recheck_ms'
            """,
            (groq_ms, chatwoot_ms),
        ).fetchall()
    if not rows:
        return "our share: no answers recorded"
    names = ("stored to claimed", "scope", "retrieval", "model call over its delay", "re-check over its delay")
    medians = [statistics.median(float(r[i]) for r in rows) for i in range(len(names))]
    return "our share, medians: " + ", ".join(f"{n} {m:.1f} ms" for n, m in zip(names, medians, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--chatwoot-ms", type=float, default=40.0)
    parser.add_argument("--groq-first-ms", type=float, default=350.0)
    parser.add_argument("--groq-tps", type=float, default=500.0)
    parser.add_argument("--concurrency", type=int, default=32, help="worker job slots")
    parser.add_argument("--rounds", type=int, default=4, help="messages per conversation")
    parser.add_argument("--think-s", type=float, default=4.0, help="longest pause between a reply and the next message")
    args = parser.parse_args()

    tokens = len(ANSWER.split(" "))
    groq_total = args.groq_first_ms / 1000 + tokens / args.groq_tps
    upstream = groq_total + args.chatwoot_ms / 1000

    recorder = Arrivals()
    cw_app = chatwoot_app(recorder, delay_s=args.chatwoot_ms / 1000)

    async def stamp(scope, receive, send):  # type: ignore[no-untyped-def]
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "POST" and path.endswith("/messages"):
            conv = int(path.split("/conversations/")[1].split("/")[0])
            recorder.arrived(conv)
        await cw_app(scope, receive, send)

    cw_port, groq_port, app_port = free_port(), free_port(), free_port()
    servers = [
        serve(stamp, cw_port),
        serve(groq_app(first_token_s=args.groq_first_ms / 1000, tokens_per_s=args.groq_tps, answer=ANSWER), groq_port),
    ]
    dsn = db.with_database(SERVER, f"sidecar_bench_{uuid.uuid4().hex[:8]}")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    (workdir / "inboxes.toml").write_text(INBOXES)
    env = dict(
        os.environ,
        DATABASE_URL=dsn,
        QUEUE_NAME=queue,
        CHATWOOT_BOT_SECRET=SECRET,
        LOG_LEVEL="WARNING",
        CHATWOOT_URL=f"http://127.0.0.1:{cw_port}",
        CHATWOOT_ACCOUNT_ID="1",
        CHATWOOT_BOT_TOKEN="bench",
        GROQ_API_KEY="bench",
        GROQ_BASE_URL=f"http://127.0.0.1:{groq_port}",
        DEBOUNCE_SECONDS="0",
        QDRANT_PATH=str(workdir / "qdrant"),
        INBOXES_CONFIG=str(workdir / "inboxes.toml"),
        SPEECH_BACKEND="local",
        WORKER_CONCURRENCY=str(args.concurrency),
    )
    procs: list[subprocess.Popen[bytes]] = []
    log = (workdir / "service.log").open("wb")
    try:
        subprocess.run(
            [sys.executable, "-m", "bot.service.cli", "ingest", str(ROOT / "bot/knowledge/examples")],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        web = subprocess.Popen(
            [sys.executable, "-m", "bot.service.cli", "serve", "--port", str(app_port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot.service.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        procs = [web, worker]
        wait_up(f"http://127.0.0.1:{app_port}/healthz", web)
        sent: dict[int, float] = {}
        # One client for every guest thread: a client per request would build an SSL context each time,
        # CPU that this process's stand-ins need.
        client = httpx.Client(limits=httpx.Limits(max_connections=args.conversations + 1))

        def post(conv: int, text: str) -> None:
            body = json.dumps(guest_message(conv, conv * 10, text, inbox_id=3, contact_id=conv)).encode()
            ts = int(time.time())
            sent[conv] = time.monotonic()
            r = client.post(
                f"http://127.0.0.1:{app_port}/webhooks/chatwoot",
                content=body,
                timeout=10,
                headers={
                    "content-type": "application/json",
                    "x-chatwoot-timestamp": str(ts),
                    "x-chatwoot-signature": sign(body, SECRET, ts),
                },
            )
            r.raise_for_status()

        post(1, "What time is check-out?")  # warm-up: the worker loads the model before the clock starts
        recorder.event(1).wait(timeout=60)

        latencies: list[float] = []
        rng = random.Random(7)

        def conversation(base: int) -> None:
            """A guest who asks, waits for the answer, reads and types for a few seconds, asks again."""
            for round_no in range(args.rounds):
                time.sleep(rng.uniform(0.5, args.think_s))
                conv = base * 100 + round_no  # a new message id each round; replies are keyed by conversation
                post(conv, "What time is check-out?")
                if recorder.event(conv).wait(timeout=30):
                    latencies.append(recorder.replies[conv] - sent[conv])

        threads = [threading.Thread(target=conversation, args=(c,)) for c in range(10, 10 + args.conversations)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expected = args.conversations * args.rounds
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = statistics.quantiles(latencies, n=100)[94]
        print(
            f"reply benchmark: {args.conversations} concurrent conversations x {args.rounds} messages "
            f"(think time 0.5-{args.think_s:.0f} s), worker slots {args.concurrency}, {os.cpu_count()} cores"
        )
        print(
            f"stand-ins: Chatwoot {args.chatwoot_ms:.0f} ms per call; Groq {args.groq_first_ms:.0f} ms to first "
            f"token + {tokens} tokens at {args.groq_tps:.0f}/s = {groq_total * 1000:.0f} ms"
        )
        print(f"upstream sum on the reply path: {upstream * 1000:.0f} ms (Groq + one Chatwoot re-check)")
        print(
            f"webhook-to-reply over {len(latencies)} messages: p50 {p50 * 1000:.0f} ms  p95 {p95 * 1000:.0f} ms  "
            f"max {latencies[-1] * 1000:.0f} ms"
            + (f"  ({expected - len(latencies)} missing)" if len(latencies) < expected else "")
        )
        print(f"ratio to the upstream sum: p50 {p50 / upstream:.2f}  p95 {p95 / upstream:.2f}")
        print(breakdown(dsn, groq_total * 1000, args.chatwoot_ms))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=15)
        for s in servers:
            s.should_exit = True
        import redis

        r = redis.Redis()
        keys = list(r.scan_iter(f"*{queue}*"))
        if keys:
            r.delete(*keys)
        if not os.environ.get("BENCH_KEEP"):
            db.drop_database(dsn)
        else:
            print("kept", dsn)


if __name__ == "__main__":
    main()
