"""Voice-note-to-audio-reply benchmark: the real voice job against local stand-ins of Azure, Groq and Chatwoot.

In this process: a Chatwoot stand-in (demo.standins) that serves the guest's voice note and records the
bot's posts, a Groq stand-in that streams its answer (--groq-first-ms to the first token, then --groq-tps
tokens per second), and Azure stand-ins for fast transcription (--stt-ms) and text to speech
(--tts-first-ms plus --tts-ms-per-char for every character asked for). The job runs as the worker runs it
(bot.service.jobs.run_event) on a scratch database and an embedded store holding the bundled examples; each
voice note starts with an empty synthesis cache.

A serial implementation waits for the three upstream services one after the other: transcription, the
whole Groq answer, then speech for the whole answer. Their sum is the yardstick; the ratio is the measured
voice-note-to-audio-reply latency over that sum (goal: at most 0.85).

    python bench/voice.py [--runs 6] [--stt-ms 600] [--groq-first-ms 350] [--groq-tps 500]
                          [--tts-first-ms 250] [--tts-ms-per-char 5] [--chatwoot-ms 40]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path
from typing import Any

import psycopg
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.intake import free_port
from bench.reply import serve
from bot.agent.speaking import segments
from bot.context import JobContext
from bot.core import (
    db,
    ledger,
)
from bot.core.ledger import Delivery
from bot.knowledge import Embedder, Retriever, ingest, open_store
from bot.service import jobs
from bot.service.jobs import Runtime
from config.settings import load_settings
from demo.samples import guest_message
from demo.standins import Recorder, chatwoot_app, groq_app
from speech.audio import pcm_to_wav
from speech.local import LocalSpeech

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
QUESTION = "What time is check-out?"
ANSWER = (
    "Check-out is by 11:00 on your departure day. Please leave the keys on the kitchen table and close the "
    "windows before you go. If you would like to stay longer, late check-out until 13:00 costs 20 EUR when the "
    "flat is free. Have a safe trip home!"
)
INBOXES = '[inboxes.3]\nmode = "autopilot"\nproperty = "lis-alfama"\n'
CHANNELS = {"WhatsApp (OGG/Opus voice message)": "Channel::Whatsapp", "web widget (MP3)": "Channel::WebWidget"}
FORMATS = {
    "ogg-48khz-16bit-mono-opus": ("ogg", "audio/ogg"),
    "audio-24khz-48kbitrate-mono-mp3": ("mp3", "audio/mpeg"),
    "riff-24khz-16bit-mono-pcm": ("wav", "audio/wav"),
}


def azure_app(*, stt_s: float, tts_first_s: float, tts_s_per_char: float, audio: dict[str, bytes]) -> Starlette:
    """Azure fast transcription (always hears QUESTION) and text to speech (answers `audio` in the asked format,
    after a first-byte delay plus a delay per character of the SSML's text)."""

    async def transcribe(request: Request) -> Response:
        await request.body()
        await asyncio.sleep(stt_s)
        return JSONResponse(
            {
                "durationMilliseconds": 1800,
                "combinedPhrases": [{"text": QUESTION}],
                "phrases": [
                    {
                        "offsetMilliseconds": 100,
                        "durationMilliseconds": 1600,
                        "text": QUESTION,
                        "locale": "en-US",
                        "confidence": 0.94,
                    }
                ],
            }
        )

    speech = _pcm(audio["wav"])

    async def synthesize(request: Request) -> Response:
        text = re.sub(r"<[^>]+>", "", (await request.body()).decode())
        fmt, ctype = FORMATS[request.headers["x-microsoft-outputformat"]]
        await asyncio.sleep(tts_first_s + tts_s_per_char * len(text))
        if fmt != "wav":
            return Response(audio[fmt], media_type=ctype)
        # As long as the text takes to say (15 characters a second), cut from the clip or repeated.
        frames = round(len(text) / 15 * 24_000) * 2
        return Response(
            pcm_to_wav((speech * (frames // len(speech) + 1))[:frames], sample_rate=24_000), media_type=ctype
        )

    return Starlette(
        routes=[
            Route("/speechtotext/transcriptions:transcribe", transcribe, methods=["POST"]),
            Route("/cognitiveservices/v1", synthesize, methods=["POST"]),
        ]
    )


def _pcm(wav: bytes) -> bytes:
    with wave.open(io.BytesIO(wav)) as w:
        return w.readframes(w.getnframes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6, help="voice notes per channel")
    parser.add_argument("--stt-ms", type=float, default=600.0)
    parser.add_argument("--groq-first-ms", type=float, default=350.0)
    parser.add_argument("--groq-tps", type=float, default=500.0)
    parser.add_argument("--tts-first-ms", type=float, default=250.0)
    parser.add_argument(
        "--tts-ms-per-char", type=float, default=5.0, help="about 13x real time at 15 characters per second of speech"
    )
    parser.add_argument("--chatwoot-ms", type=float, default=40.0)
    args = parser.parse_args()

    local = LocalSpeech()
    question_ogg = asyncio.run(local.synthesize(QUESTION, locale="en-GB", fmt="ogg"))
    spoken = "Check-out is by eleven. Please leave the keys on the kitchen table."  # what the stand-in "says"
    audio = {fmt: asyncio.run(local.synthesize(spoken, locale="en-GB", fmt=fmt)) for fmt in ("ogg", "mp3", "wav")}

    recorder = Recorder()
    cw_port, groq_port, azure_port = free_port(), free_port(), free_port()
    servers = [
        serve(chatwoot_app(recorder, delay_s=args.chatwoot_ms / 1000), cw_port),
        serve(groq_app(first_token_s=args.groq_first_ms / 1000, tokens_per_s=args.groq_tps, answer=ANSWER), groq_port),
        serve(
            azure_app(
                stt_s=args.stt_ms / 1000,
                tts_first_s=args.tts_first_ms / 1000,
                tts_s_per_char=args.tts_ms_per_char / 1000,
                audio=audio,
            ),
            azure_port,
        ),
    ]
    dsn = db.with_database(SERVER, f"sidecar_bench_{uuid.uuid4().hex[:8]}")
    queue = f"bench-voice-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="sidecar-bench-voice-"))
    (workdir / "inboxes.toml").write_text(INBOXES)
    settings = load_settings(
        {
            "DATABASE_URL": dsn,
            "QUEUE_NAME": queue,
            "LOG_LEVEL": "WARNING",
            "QDRANT_PATH": str(workdir / "qdrant"),
            "CHATWOOT_URL": f"http://127.0.0.1:{cw_port}",
            "CHATWOOT_ACCOUNT_ID": "1",
            "CHATWOOT_BOT_TOKEN": "bench",
            "GROQ_API_KEY": "bench",
            "GROQ_BASE_URL": f"http://127.0.0.1:{groq_port}",
            "SPEECH_BACKEND": "azure",
            "AZURE_SPEECH_KEY": "bench",
            "AZURE_SPEECH_ENDPOINT": f"http://127.0.0.1:{azure_port}",
            "INBOXES_CONFIG": str(workdir / "inboxes.toml"),
            "DEBOUNCE_SECONDS": "0",
        }
    )
    db.create_database(dsn)
    db.upgrade(dsn)
    retriever = Retriever(open_store(settings), Embedder.from_settings(settings))
    ingest(ROOT / "bot/knowledge/examples", store=retriever.store, embedder=retriever.embedder, dsn=dsn)
    rt = Runtime(settings)
    rt.ctx = rt.run(JobContext.open(settings))
    rt.ctx.extras["retriever"] = retriever
    jobs.install_runtime(rt)
    cache = redis.Redis.from_url(settings.redis_url)
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        counter = iter(range(1, 10_000))

        def voice_note(channel: str) -> tuple[float | None, float | None, dict[str, Any]]:
            """Run one voice note through the job; (text reply s, audio reply s, the job's own timings)."""
            n = next(counter)
            conv, mid = 500 + n, 90_000 + n
            recorder.files[f"voice-{mid}"] = (question_ogg, "audio/ogg")
            attachment = {
                "id": mid,
                "message_id": mid,
                "file_type": "audio",
                "account_id": 1,
                "extension": "ogg",
                "content_type": "audio/ogg",
                "thumb_url": "",
                "transcribed_text": "",
                "data_url": f"{settings.chatwoot_url}/rails/active_storage/blobs/redirect/voice-{mid}/"
                "voice-note.ogg?disposition=inline",
            }
            payload = guest_message(
                conv, mid, None, inbox_id=3, contact_id=conv, channel=channel, attachments=[attachment]
            )
            event_id = ledger.insert(
                conn,
                Delivery(
                    "chatwoot", "message_created", f"chatwoot:message_created:{mid}", f"conversation:{conv}", payload
                ),
                known=True,
            )
            stale = list(cache.scan_iter(f"{queue}:tts:*"))
            if stale:
                cache.delete(*stale)  # every voice note pays for its synthesis
            started = time.monotonic()
            assert event_id is not None and jobs.run_event(event_id) == "done"
            delay = args.chatwoot_ms / 1000
            text = audio_at = None
            for at, method, path, body in recorder.calls:
                if method != "POST" or not path.endswith(f"/conversations/{conv}/messages") or at < started:
                    continue
                if isinstance(body, dict) and body.get("attachments"):
                    audio_at = audio_at or at - delay  # the stand-in records after its own delay
                elif isinstance(body, dict) and body.get("private") is False:
                    text = text or at - delay
            row = conn.execute("SELECT timings FROM qa_records WHERE conversation_id = %s", (conv,)).fetchone()
            return (text - started if text else None, audio_at - started if audio_at else None, row[0] if row else {})

        voice_note("Channel::Whatsapp")  # warm-up: the embedding model, the pools, ffmpeg's page cache
        words = len(ANSWER.split(" "))
        groq_s = args.groq_first_ms / 1000 + words / args.groq_tps
        tts_s = (args.tts_first_ms + args.tts_ms_per_char * len(" ".join(segments(ANSWER)))) / 1000
        serial = args.stt_ms / 1000 + groq_s + tts_s
        print(f"voice benchmark: {args.runs} voice notes per channel, one at a time, {os.cpu_count()} cores")
        print(
            f"stand-ins: Azure STT {args.stt_ms:.0f} ms; Groq {args.groq_first_ms:.0f} ms to first token + {words} "
            f"tokens at {args.groq_tps:.0f}/s = {groq_s * 1000:.0f} ms; Azure TTS {args.tts_first_ms:.0f} ms + "
            f"{args.tts_ms_per_char:g} ms/char ({len(ANSWER)} chars in {len(segments(ANSWER))} sentences: "
            f"{tts_s * 1000:.0f} ms for the whole answer); Chatwoot {args.chatwoot_ms:.0f} ms per call"
        )
        print(f"serial sum of the three upstream delays: {serial * 1000:.0f} ms")
        for label, channel in CHANNELS.items():
            results = [voice_note(channel) for _ in range(args.runs)]
            audio_s = [a for _, a, _ in results if a is not None]
            text_s = [t for t, _, _ in results if t is not None]
            if len(audio_s) < args.runs:
                print(f"  {label}: {args.runs - len(audio_s)} voice notes got no audio reply")
            if not audio_s:
                continue
            median = statistics.median(audio_s)
            print(
                f"\n{label}: voice note to audio reply  median {median * 1000:.0f} ms  min {min(audio_s) * 1000:.0f}"
                f"  max {max(audio_s) * 1000:.0f} ms   ratio to the serial sum {median / serial:.2f}"
            )
            print(f"  text reply posted after {statistics.median(text_s) * 1000:.0f} ms (median)")
            keys = (
                "download_ms",
                "transcription_ms",
                "retrieval_ms",
                "first_token_ms",
                "generation_ms",
                "text_reply_ms",
                "synthesis_first_byte_ms",
                "synthesis_ms",
                "join_ms",
                "synthesis_lag_ms",
                "audio_reply_ms",
                "output_audio_ms",
                "synthesized_chars",
                "audio_segments",
            )
            medians = {
                k: statistics.median(t[k] for _, _, t in results if t.get(k) is not None)
                for k in keys
                if any(t.get(k) is not None for _, _, t in results)
            }
            print("  the job's own record (median): " + ", ".join(f"{k} {v:.0f}" for k, v in medians.items()))
    finally:
        conn.close()
        rt.ctx.extras.pop("retriever", None)
        rt.close()
        jobs.install_runtime(None)
        retriever.store.close()
        for server in servers:
            server.should_exit = True
        leftovers = list(cache.scan_iter(f"*{queue}*"))
        if leftovers:
            cache.delete(*leftovers)
        db.drop_database(dsn)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
