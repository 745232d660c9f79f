"""Local stand-ins for Chatwoot and Groq, for the demo and the benchmarks (never used in production).

They speak just enough of each API for the bot's round trip and answer after a fixed delay, so a
benchmark can compare the bot's end-to-end latency with the time the upstream services themselves take.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Recorder:
    """What the Chatwoot stand-in received: (monotonic time, method, path, body) per request; a multipart
    body is recorded as its fields plus `attachments` [{filename, content_type, size}].

    `files` holds uploads the stand-in serves the way Chatwoot serves attachments: signed id ->
    (bytes, content type), reached through /rails/active_storage/blobs/redirect/<signed id>/<filename>.
    """

    calls: list[tuple[float, str, str, Any]] = field(default_factory=list)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)


def chatwoot_app(recorder: Recorder, *, delay_s: float = 0.0, status: str = "pending") -> Starlette:
    """A Chatwoot that accepts the bot's calls and records them."""
    next_id = iter(range(900_000, 10_000_000))

    async def record(request: Request) -> Any:
        await asyncio.sleep(delay_s)
        raw = await request.body()
        body: Any = None
        ctype = request.headers.get("content-type", "")
        if raw and ctype.startswith("application/json"):
            body = json.loads(raw)
        elif raw and ctype.startswith("multipart/form-data"):
            body = _form(raw, ctype)
        recorder.calls.append((time.monotonic(), request.method, request.url.path, body))
        return body

    async def messages(request: Request) -> Response:
        body = await record(request) or {}
        return JSONResponse(
            {
                "id": next(next_id),
                "content": body.get("content"),
                "message_type": 1,
                "private": body.get("private", False),
            }
        )

    async def conversation(request: Request) -> Response:
        await record(request)
        return JSONResponse({"id": int(request.path_params["conv"]), "status": status, "meta": {}})

    async def labels(request: Request) -> Response:
        body = await record(request)
        return JSONResponse({"payload": (body or {}).get("labels", [])})

    async def ok(request: Request) -> Response:
        await record(request)
        return JSONResponse({"payload": {"success": True}})

    async def blob_redirect(request: Request) -> Response:
        await record(request)
        signed, name = request.path_params["signed"], request.path_params["name"]
        if signed not in recorder.files:
            return Response(status_code=404)
        return RedirectResponse(f"/rails/active_storage/disk/{signed}/{name}", status_code=302)

    async def blob(request: Request) -> Response:
        await record(request)
        found = recorder.files.get(request.path_params["signed"])
        if found is None:
            return Response(status_code=404)
        return Response(found[0], media_type=found[1])

    base = "/api/v1/accounts/{account}/conversations/{conv:int}"
    return Starlette(
        routes=[
            Route("/rails/active_storage/blobs/redirect/{signed}/{name}", blob_redirect, methods=["GET"]),
            Route("/rails/active_storage/disk/{signed}/{name}", blob, methods=["GET"]),
            Route(base + "/messages", messages, methods=["POST"]),
            Route(base, conversation, methods=["GET"]),
            Route(base + "/labels", labels, methods=["GET", "POST"]),
            Route(base + "/toggle_status", ok, methods=["POST"]),
            Route(base + "/toggle_typing_status", ok, methods=["POST"]),
            Route(base + "/toggle_priority", ok, methods=["POST"]),
            Route(base + "/custom_attributes", ok, methods=["POST"]),
            Route(base + "/assignments", ok, methods=["POST"]),
        ]
    )


def _form(raw: bytes, content_type: str) -> dict[str, Any]:
    """A multipart/form-data body as {field: value, "attachments": [{filename, content_type, size}]}."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + raw
    )
    fields: dict[str, Any] = {"attachments": []}
    for part in message.iter_parts():
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            fields["attachments"].append(
                {"filename": filename, "content_type": part.get_content_type(), "size": len(data)}
            )
        else:
            fields[str(part.get_param("name", header="content-disposition"))] = data.decode()
    return fields


def groq_app(
    *,
    first_token_s: float = 0.3,
    tokens_per_s: float = 500.0,
    answer: str = "Check-out is at 11:00. Please leave the keys on the kitchen table.",
) -> Starlette:
    """An OpenAI-compatible chat endpoint: waits `first_token_s`, then emits the answer at a fixed token rate
    (streamed when asked, else all at once after the same total time)."""
    words = answer.split(" ")

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = body.get("model", "stand-in")
        total = first_token_s + len(words) / tokens_per_s
        if not body.get("stream"):
            await asyncio.sleep(total)
            return JSONResponse(
                {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": len(words), "total_tokens": 100 + len(words)},
                }
            )

        async def events() -> Any:
            await asyncio.sleep(first_token_s)
            for i, word in enumerate(words):
                delta = {"content": word if i == 0 else " " + word}
                chunk = {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
                await asyncio.sleep(1 / tokens_per_s)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/openai/v1/chat/completions", chat, methods=["POST"])])
