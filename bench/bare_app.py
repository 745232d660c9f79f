"""The baseline for bench/intake.py: a Starlette endpoint that reads the body and answers 200."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ok(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/webhooks/chatwoot", ok, methods=["POST"])])
