"""The agent panel: a Chatwoot Dashboard App (a tab beside "Messages") served by the sidecar.

GET /panel is a static page. Chatwoot gives it the open conversation by postMessage ("appContext"); the
page accepts that message only from Chatwoot's origin, then asks GET /panel/api/conversations/{id} with
the per-install PANEL_TOKEN, which it got from its own URL's fragment (setup puts it in the Dashboard
App's URL; fragments never reach a server log). The data endpoint answers only with that token and only
for our account's conversations: display ids repeat across accounts, so the account id Chatwoot sent
must be ours. The page's CSP lets only Chatwoot frame it, and it has no inline script.
"""

from __future__ import annotations

import hmac
import html
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.service import panel_data
from config.settings import Settings

STATIC = Path(__file__).parent / "panel_static"
PAGE = "panel.html"


def chatwoot_origin(settings: Settings) -> str:
    """The origin Chatwoot's dashboard runs on, as a browser sees it (scheme://host[:port])."""
    parts = urlsplit(settings.chatwoot_frontend_url or settings.chatwoot_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    origin = chatwoot_origin(settings)
    text = (STATIC / PAGE).read_text(encoding="utf-8").replace("{{CHATWOOT_ORIGIN}}", html.escape(origin))
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors " + (origin or "'none'")
    )
    return HTMLResponse(
        text,
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _refusal(request: Request) -> Response | None:
    """Why the caller may not have this conversation's data, or None when it may."""
    settings: Settings = request.app.state.settings
    expected = settings.secret("panel_token")
    if not expected:
        return JSONResponse({"error": "PANEL_TOKEN is not set: run `sidecar chatwoot setup`"}, status_code=503)
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        return JSONResponse({"error": "missing or wrong panel token"}, status_code=401)
    account = request.query_params.get("account_id", "")
    if not account.isdigit() or int(account) != settings.chatwoot_account_id:
        return JSONResponse({"error": "not a conversation of this sidecar's Chatwoot account"}, status_code=403)
    return None


async def conversation(request: Request) -> Response:
    if (refused := _refusal(request)) is not None:
        return refused
    hint = request.query_params.get("contact_id", "")
    view = await panel_data.panel_view(
        request.app.state.pool, request.path_params["conversation_id"], int(hint) if hint.isdigit() else None
    )
    return JSONResponse(view.as_json(), headers={"Cache-Control": "no-store"})


async def pause(request: Request) -> Response:
    if (refused := _refusal(request)) is not None:
        return refused
    await panel_data.pause(request.app.state.pool, request.path_params["conversation_id"])
    return JSONResponse({"paused": True})


async def resume(request: Request) -> Response:
    if (refused := _refusal(request)) is not None:
        return refused
    await panel_data.resume(request.app.state.pool, request.path_params["conversation_id"])
    return JSONResponse({"paused": False})


def routes() -> list[BaseRoute]:
    """The panel's routes, for the web app's route list."""
    return [
        Route("/panel", page),
        Mount("/panel/static", StaticFiles(directory=STATIC / "static")),
        Route("/panel/api/conversations/{conversation_id:int}", conversation),
        Route("/panel/api/conversations/{conversation_id:int}/pause", pause, methods=["POST"]),
        Route("/panel/api/conversations/{conversation_id:int}/resume", resume, methods=["POST"]),
    ]
