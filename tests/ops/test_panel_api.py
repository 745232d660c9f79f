"""The panel's page and data endpoint over HTTP: who may read, what it shows, and the pause switch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from starlette.testclient import TestClient

from bot.agent import state
from bot.service.app import create_app
from bot.service.panel_data import ACCESS_HIDDEN, panel_view
from tests.conftest import make_settings
from tests.ops.panel_seed import CONTACT, CONVERSATION, DOOR_CODE, NOW, PANEL_TOKEN, seed

AUTH = {"Authorization": f"Bearer {PANEL_TOKEN}"}
URL = f"/panel/api/conversations/{CONVERSATION}?account_id=1"


@pytest.fixture
def client(clean_db: str, queue_name: str) -> Iterator[TestClient]:
    seed(clean_db)
    settings = make_settings(
        clean_db,
        queue_name,
        CHATWOOT_URL="http://chatwoot-web:3000",
        CHATWOOT_FRONTEND_URL="https://chat.acme.test",
        CHATWOOT_ACCOUNT_ID="1",
        PANEL_TOKEN=PANEL_TOKEN,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_page_may_only_be_framed_by_chatwoot_and_knows_its_origin(client: TestClient) -> None:
    response = client.get("/panel")
    assert response.status_code == 200
    assert 'data-chatwoot-origin="https://chat.acme.test"' in response.text
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors https://chat.acme.test" in csp and "script-src 'self'" in csp
    assert PANEL_TOKEN not in response.text
    assert client.get("/panel/static/panel.js").status_code == 200


def test_data_needs_the_panel_token(client: TestClient) -> None:
    assert client.get(URL).json() == {"error": "missing or wrong panel token"}
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers={"Authorization": "Bearer guess"}).status_code == 401
    assert client.post(f"/panel/api/conversations/{CONVERSATION}/pause?account_id=1").status_code == 401


def test_data_is_only_for_our_accounts_conversations(client: TestClient) -> None:
    response = client.get(f"/panel/api/conversations/{CONVERSATION}?account_id=2", headers=AUTH)
    assert response.status_code == 403
    assert response.json() == {"error": "not a conversation of this sidecar's Chatwoot account"}
    assert client.get(f"/panel/api/conversations/{CONVERSATION}", headers=AUTH).status_code == 403


def test_data_shows_booking_calls_answers_and_handoff_without_secrets(client: TestClient) -> None:
    response = client.get(URL, headers=AUTH)
    assert response.status_code == 200
    view: dict[str, Any] = response.json()
    assert DOOR_CODE not in response.text
    assert view["bookings"] == [
        {
            "code": "HM4KX2",
            "status": "confirmed",
            "property": "Alfama Loft",
            "check_in": "2026-12-05",
            "check_out": "2026-12-09",
            "guests": 2,
            "stage": "during-stay",
            "access": "given",
        }
    ]
    assert [(c["call_id"], c["outcome"], c["recording"], c["voicemail"]) for c in view["calls"]] == [
        (2187340091, "voicemail", None, "https://assets.aircall.io/voicemail/2187340091"),
        (2187339000, "answered", "https://assets.aircall.io/recording/2187339000", None),
    ]
    assert [(a["question"], a["answer"], a["sources"]) for a in view["answers"]] == [
        ("Can I talk to someone?", None, []),
        ("What time is check-out?", "Check-out is by 11:00.", ["lis-alfama/en/guide.md › Arrival and departure"]),
        ("What is the door code?", ACCESS_HIDDEN, ["lis-alfama/en/access.md › Door code"]),
    ]
    assert (view["handoff_reason"], view["handoff_at"]) == ("the guest asked for a person", "2026-12-06 09:00 UTC")
    assert (view["human"], view["paused"]) == (True, False)


def test_pause_makes_the_bot_treat_the_conversation_as_human_and_resume_gives_it_back(
    client: TestClient, clean_db: str
) -> None:
    assert client.post(f"/panel/api/conversations/{CONVERSATION}/resume?account_id=1", headers=AUTH).json() == {
        "paused": False
    }
    assert (client.get(URL, headers=AUTH).json()["human"], client.get(URL, headers=AUTH).json()["paused"]) == (
        False,
        False,
    )

    assert client.post(f"/panel/api/conversations/{CONVERSATION}/pause?account_id=1", headers=AUTH).json() == {
        "paused": True
    }

    view = client.get(URL, headers=AUTH).json()
    assert (view["human"], view["paused"], view["handoff_reason"]) == (True, True, "the guest asked for a person")

    async def human_since() -> Any:
        pool = AsyncConnectionPool(clean_db, min_size=1, max_size=1, open=False)
        await pool.open()
        try:
            return await state.human_since(pool, CONVERSATION)  # what the autopilot path checks
        finally:
            await pool.close()

    assert client.portal.call(human_since) is not None  # type: ignore[union-attr]
    client.post(f"/panel/api/conversations/{CONVERSATION}/resume?account_id=1", headers=AUTH)
    assert client.portal.call(human_since) is None  # type: ignore[union-attr]


async def test_a_conversation_we_know_nothing_of_shows_the_dashboards_contact(clean_db: str) -> None:
    seed(clean_db)
    pool = AsyncConnectionPool(clean_db, min_size=1, max_size=1, open=False)
    await pool.open()
    try:
        view = await panel_view(pool, 999, CONTACT, now=NOW)
    finally:
        await pool.close()
    assert (view.contact_id, [b.code for b in view.bookings], view.answers, view.handoff_reason) == (
        CONTACT,
        ["HM4KX2"],
        [],
        None,
    )
    assert [b.access for b in view.bookings] == ["not given"]


def test_data_lists_the_propertys_recent_questions_the_guides_did_not_answer(client: TestClient, clean_db: str) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(clean_db, autocommit=True) as conn:
        for question, reason, prop in (
            ("Is there a gym nearby?", "no_context", "lis-alfama"),
            ("Is there a gym nearby?", "not_found", "lis-alfama"),  # asked twice: listed once
            ("Can we bring a piano?", "model_handoff", "lis-alfama"),
            ("Is there a sauna?", "no_context", "ber-mitte"),  # another property
            ("Talk to a person", "human_requested", "lis-alfama"),  # not a gap in the guides
        ):
            conn.execute(
                "INSERT INTO qa_records (conversation_id, property_code, question, mode, outcome, handoff_reason,"
                " sources) VALUES (77, %s, %s, 'autopilot', 'handed_off', %s, %s)",
                (prop, question, reason, Jsonb([])),
            )
    view = client.get(URL, headers=AUTH).json()
    assert view["gaps"] == ["Can we bring a piano?", "Is there a gym nearby?"]
