"""`make demo` (`python -m demo`): the main job on embedded defaults, with no keys and no Chatwoot.

1. Applies the migrations and ingests the bundled example knowledge into the embedded Qdrant (on disk).
2. Answers a few questions the way an operator would check them (`sidecar ask`).
3. Runs the real service end to end: signed guest messages go to the webhook, are stored and queued, a
   worker answers them, and a local Chatwoot stand-in prints what it received. Autopilot replies in one
   inbox, copilot suggestions in another, and a request for a person is handed off.
4. A guest's voice note goes the same way and is answered as text and as speech (offline Whisper, espeak-ng).
Answers are offline (extractive) unless GROQ_API_KEY is set.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bot.context import JobContext
from bot.core import db
from bot.knowledge import Embedder, Retriever, ingest, open_store
from bot.service.app import create_app
from bot.service.ask import ask_async, render
from bot.service.jobs import Runtime
from bot.service.worker import run_worker
from config.settings import Settings
from demo.samples import guest_message
from demo.standins import Recorder, chatwoot_app
from integrations.chatwoot.verify import sign
from speech.local import LocalSpeech

EXAMPLES = Path(__file__).resolve().parents[1] / "bot" / "knowledge" / "examples"
DEMO_INBOXES = """
[defaults]
mode = "autopilot"

[inboxes.3]   # the Lisbon flat's website widget: the bot answers
property = "lis-alfama"

[inboxes.4]   # the Berlin flat's WhatsApp: agents get suggestions
mode = "copilot"
property = "ber-mitte"
"""
ASK = [
    ("What time is check-out?", "lis-alfama"),
    ("Is there parking near the apartment?", "ber-mitte"),
    ("Can I bring my dog?", None),
]
CONVERSATIONS = [  # (conversation, inbox, text)
    (101, 3, "Hi! What time can we check in?"),
    (102, 3, "Where can I park the car?"),
    (103, 4, "Is there a washing machine?"),
    (104, 3, "Can I talk to a person please?"),
]
SECRET = "demo-secret"
DEMO_QUESTION = "What time is check-out?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server(threading.Thread):
    """uvicorn in a background thread, stopped at the end of the demo."""

    def __init__(self, app: Any, port: int) -> None:
        super().__init__(daemon=True)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
        )

    def run(self) -> None:
        self.server.run()

    def __enter__(self) -> _Server:
        self.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.join(timeout=10)


def run_demo(settings: Settings, *, out: Any = print) -> Recorder:
    out("== 1. database and knowledge")
    db.create_database(settings.database_dsn)
    db.upgrade(settings.database_dsn)
    retriever = Retriever(open_store(settings), Embedder.from_settings(settings))
    try:
        report = ingest(
            EXAMPLES, store=retriever.store, embedder=retriever.embedder, dsn=settings.database_dsn, progress=True
        )
        out(
            f"ingested {report.files} files from {EXAMPLES}: {report.added} chunks added, "
            f"{report.unchanged} unchanged, {report.deleted} deleted; store at {settings.qdrant_path}"
        )
        out("\n== 2. operator check (sidecar ask)")
        for question, prop in ASK:
            result = asyncio.run(ask_async(retriever, settings, question, prop))
            out(f"\n? {question}   [property: {prop or 'shared only'}]\n{render(result)}")
        out("\n== 3. the service end to end (webhook -> ledger -> queue -> worker -> Chatwoot stand-in)")
        return _end_to_end(settings, retriever, out)
    finally:
        retriever.store.close()


def _end_to_end(settings: Settings, retriever: Retriever, out: Any) -> Recorder:
    recorder = Recorder()
    cw_port, app_port = _free_port(), _free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(DEMO_INBOXES)
    demo = settings.model_copy(
        update={
            "chatwoot_url": f"http://127.0.0.1:{cw_port}",
            "chatwoot_account_id": 1,
            "chatwoot_bot_token": settings.chatwoot_bot_token or "demo-bot-token",
            "chatwoot_bot_secret": SECRET,
            "inboxes_config": Path(f.name),
            "debounce_seconds": 0.0,
            "queue_name": f"{settings.queue_name}-demo",
            "log_level": "WARNING",
        }
    )
    try:
        with _Server(chatwoot_app(recorder), cw_port), _Server(create_app(demo), app_port):
            for n, (conv, inbox, text) in enumerate(CONVERSATIONS):
                body = json.dumps(
                    guest_message(
                        conv, 50_000 + n + int(time.time()) % 10_000 * 10, text, inbox_id=inbox, contact_id=900 + conv
                    )
                ).encode()
                ts = int(time.time())
                r = httpx.post(
                    f"http://127.0.0.1:{app_port}/webhooks/chatwoot",
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "x-chatwoot-timestamp": str(ts),
                        "x-chatwoot-signature": sign(body, SECRET, ts),
                    },
                )
                out(f"guest in conversation {conv} (inbox {inbox}): {text!r} -> webhook {r.status_code} {r.json()}")
            rt = Runtime(demo)
            rt.ctx = rt.run(JobContext.open(demo))
            rt.ctx.extras["retriever"] = retriever
            rt.ctx.extras["owns_retriever"] = False
            run_worker(demo, burst=True, runtime=_KeepRetriever(rt))
            out("\nwhat Chatwoot received:")
            for _, method, path, body in recorder.calls:
                short = path.split("/accounts/1")[-1]
                if method == "POST" and body is not None and short.endswith("/messages"):
                    kind = "private note" if body.get("private") else "public reply"
                    out(f"\n  {short}  [{kind}]\n    " + str(body.get("content", "")).replace("\n", "\n    "))
                elif method == "POST" and not short.endswith("typing_status"):
                    out(f"\n  {short}  {body}")
            demo_voice(
                demo,
                retriever,
                recorder,
                webhook=f"http://127.0.0.1:{app_port}/webhooks/chatwoot",
                secret=SECRET,
                out=out,
            )
    finally:
        Path(f.name).unlink(missing_ok=True)
    return recorder


class _KeepRetriever(Runtime):
    """The demo's runtime: closes the worker's clients but leaves the shared retriever open."""

    def __init__(self, rt: Runtime) -> None:
        self.__dict__.update(rt.__dict__)

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.extras.pop("retriever", None)
        super().close()


def demo_voice(
    settings: Settings,
    retriever: Retriever,
    recorder: Recorder,
    *,
    webhook: str,
    secret: str,
    out: Any = print,
    inbox_id: int = 3,
) -> None:
    """The voice step: a guest's spoken question (espeak-ng), uploaded through the web widget of the running
    Chatwoot stand-in (`recorder` serves the file), goes to the service's webhook and is answered offline, as
    text and as speech, by a burst worker."""
    settings = settings.model_copy(update={"speech_backend": "local"})
    # espeak-ng's British voice is the one tiny.en hears best ("checkout"; the US one gives "Kercout").
    clip = asyncio.run(LocalSpeech().synthesize(DEMO_QUESTION, locale="en-GB", fmt="ogg"))
    message_id = 50_009 + int(time.time()) % 10_000 * 10  # new each run: the ledger keeps earlier demos
    conversation_id = 105 + int(time.time()) % 10_000 * 10  # and a fresh conversation, not one handed off before
    signed = f"demo-voice-{message_id}"
    recorder.files[signed] = (clip, "audio/ogg")
    attachment = {
        "id": message_id,
        "message_id": message_id,
        "file_type": "audio",
        "account_id": 1,
        "extension": "ogg",
        "content_type": "audio/ogg",
        "file_size": len(clip),
        "thumb_url": "",
        "data_url": f"{settings.chatwoot_url}/rails/active_storage/blobs/redirect/{signed}/voice-note.ogg"
        "?disposition=inline",
        "width": None,
        "height": None,
        "transcribed_text": "",
    }
    body = json.dumps(
        guest_message(
            conversation_id,
            message_id,
            None,
            inbox_id=inbox_id,
            contact_id=900 + conversation_id,
            attachments=[attachment],
        )
    ).encode()
    ts = int(time.time())
    response = httpx.post(
        webhook,
        content=body,
        headers={
            "content-type": "application/json",
            "x-chatwoot-timestamp": str(ts),
            "x-chatwoot-signature": sign(body, secret, ts),
        },
    )
    out(
        f"\n== 4. a voice note\nguest in conversation {conversation_id} (inbox {inbox_id}) uploads a voice note "
        f"saying {DEMO_QUESTION!r} ({len(clip):,} bytes of OGG/Opus) -> webhook {response.status_code} "
        f"{response.json()}"
    )
    seen = len(recorder.calls)
    rt = Runtime(settings)
    rt.ctx = rt.run(JobContext.open(settings))
    rt.ctx.extras["retriever"] = retriever
    run_worker(settings, burst=True, runtime=_KeepRetriever(rt))
    out("\nwhat Chatwoot received (transcribed by offline Whisper, spoken by espeak-ng):")
    for _, method, path, sent in recorder.calls[seen:]:
        short = path.split("/accounts/1")[-1]
        if method != "POST" or not short.endswith("/messages") or not isinstance(sent, dict):
            continue
        for file in sent.get("attachments") or []:
            out(f"\n  {short}  [audio reply] {file['filename']}, {file['content_type']}, {file['size']:,} bytes")
        if sent.get("content"):
            kind = "private note" if sent.get("private") in (True, "true") else "public reply"
            out(f"\n  {short}  [{kind}]\n    " + str(sent["content"]).replace("\n", "\n    "))
