"""The panel in real headless Chromium, framed by a page that plays Chatwoot's dashboard.

Three local origins: the sidecar (127.0.0.1), "Chatwoot" (localhost, the parent frame that posts
appContext exactly as Chatwoot's Frame.vue does: a JSON string, target origin "*"), and an intruder
(127.0.0.1 on a third port) whose frame posts a forged appContext to the panel. PANEL_SCREENSHOT=path saves
the panel's picture (docs/panel.png is made so).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bot.service.app import create_app
from tests.conftest import make_settings
from tests.ops.panel_seed import CONTACT, CONVERSATION, DOOR_CODE, PANEL_TOKEN, seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/system-deps.sh)")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

APP_CONTEXT = {
    "event": "appContext",
    "data": {
        "conversation": {
            "id": CONVERSATION,
            "account_id": 1,
            "inbox_id": 3,
            "status": "pending",
            "meta": {"sender": {"id": CONTACT, "name": "Oliver Bennett"}},
        },
        "contact": {"id": CONTACT, "name": "Oliver Bennett"},
        "currentAgent": {"id": 1, "name": "Ana", "email": "ana@acme.test"},
    },
}

CHATWOOT_PAGE = """<!doctype html><html><body style="margin:0">
<iframe id="panel" src="{panel}" style="width:720px;height:860px;border:0"></iframe>
<script>
  // What Chatwoot's dashboard does for a Dashboard App (Frame.vue): appContext on load and on request.
  const context = JSON.stringify({context});
  const frame = document.getElementById("panel");
  const send = () => {{ if ({answer}) frame.contentWindow.postMessage(context, "*"); }};
  frame.addEventListener("load", send);
  window.addEventListener("message", (e) => {{ if (e.data === "chatwoot-dashboard-app:fetch-info") send(); }});
</script>
{intruder}
</body></html>"""

INTRUDER_PAGE = """<!doctype html><script>
  const forged = JSON.stringify({context});
  setTimeout(() => parent.frames[0].postMessage(forged, "*"), 300);
</script>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_pages(pages: dict[str, str], host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """A static server for test pages (path -> HTML)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def run_sidecar(settings: Any, port: int) -> Iterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the sidecar did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def world(clean_db: str, queue_name: str) -> Iterator[dict[str, Any]]:
    """The sidecar and the two other origins, with one guest's records."""
    seed(clean_db)
    panel_port, chatwoot_port = free_port(), free_port()
    chatwoot = f"http://localhost:{chatwoot_port}"
    panel = f"http://127.0.0.1:{panel_port}/panel"
    forged = {**APP_CONTEXT, "data": {**APP_CONTEXT["data"], "conversation": {"id": 58, "account_id": 1}}}
    with serve_pages({"/intruder": INTRUDER_PAGE.format(context=json.dumps(forged))}) as intruder_port:
        intruder = f"http://127.0.0.1:{intruder_port}"
        frame = f'<iframe src="{intruder}/intruder" style="display:none"></iframe>'

        def page(src: str, *, answer: bool = True, with_intruder: bool = False) -> str:
            return CHATWOOT_PAGE.format(
                panel=src,
                context=json.dumps(APP_CONTEXT),
                answer="true" if answer else "false",
                intruder=frame if with_intruder else "",
            )

        pages = {
            "/conversation": page(f"{panel}#token={PANEL_TOKEN}"),
            "/no-token": page(panel),
            "/intruder-only": page(f"{panel}#token={PANEL_TOKEN}", answer=False, with_intruder=True),
        }
        settings = make_settings(
            clean_db, queue_name, CHATWOOT_URL=chatwoot, CHATWOOT_ACCOUNT_ID="1", PANEL_TOKEN=PANEL_TOKEN
        )
        with serve_pages(pages, host="localhost", port=chatwoot_port), run_sidecar(settings, panel_port):
            yield {"chatwoot": chatwoot, "intruder": intruder}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_panel_shows_the_open_conversations_booking_calls_and_answers(
    world: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 740, "height": 880})
    page.goto(f"{world['chatwoot']}/conversation")
    panel = page.frame_locator("#panel")

    panel.locator("#status").filter(has_text=f"Conversation #{CONVERSATION}").wait_for(timeout=10_000)
    bookings = panel.locator("#bookings").inner_text()
    assert "Alfama Loft · HM4KX2 · confirmed" in bookings and "2026-12-05 → 2026-12-09 · 2 guest(s)" in bookings
    assert "Access details: given" in bookings
    calls = panel.locator("#calls").inner_text()
    assert "inbound · voicemail · 41 s" in calls and "inbound · answered · 184 s · Marta Silva" in calls
    assert panel.locator("#calls a").evaluate_all("links => links.map(a => a.href)") == [
        "https://assets.aircall.io/voicemail/2187340091",
        "https://assets.aircall.io/recording/2187339000",
    ]
    answers = panel.locator("#answers").inner_text()
    assert "A: Check-out is by 11:00." in answers and "lis-alfama/en/guide.md › Arrival and departure" in answers
    assert "the guest asked for a person" in panel.locator("#handoff").inner_text()
    assert DOOR_CODE not in panel.locator("body").inner_text()
    shot = Path(os.environ.get("PANEL_SCREENSHOT") or tmp_path / "panel.png")
    page.locator("#panel").screenshot(path=str(shot))

    assert panel.locator("#bot-state").inner_text().startswith("Standing down: people handle this conversation.")
    panel.locator("#pause").click()
    panel.locator("#bot-state").filter(has_text="Paused from this panel").wait_for(timeout=5_000)
    assert panel.locator("#resume").is_enabled() and not panel.locator("#pause").is_enabled()
    panel.locator("#resume").click()
    panel.locator("#bot-state").filter(has_text="Active").wait_for(timeout=5_000)
    assert panel.locator("#pause").is_enabled() and not panel.locator("#resume").is_enabled()


def test_panel_refuses_a_message_from_another_origin(world: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{world['chatwoot']}/intruder-only")
    panel = page.frame_locator("#panel")

    panel.locator("#status").filter(has_text="Ignored a message").wait_for(timeout=10_000)
    assert panel.locator("#status").inner_text() == (
        f"Ignored a message from {world['intruder']}: only Chatwoot ({world['chatwoot']}) may talk to this panel."
    )
    assert not [url for url in requests if "/panel/api/" in url]
    assert panel.locator("#bookings").is_hidden()


def test_panel_without_its_token_shows_nothing(world: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{world['chatwoot']}/no-token")
    panel = page.frame_locator("#panel")

    panel.locator("#status").filter(has_text="no token").wait_for(timeout=10_000)
    page.wait_for_timeout(500)  # the appContext answer to the load event has arrived by now
    assert not [url for url in requests if "/panel/api/" in url]
    assert panel.locator("#bookings").is_hidden() and panel.locator("#answers").is_hidden()
