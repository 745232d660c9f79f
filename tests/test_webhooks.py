"""The intake: verified deliveries are stored once and queued; bad ones are refused with a reason."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from starlette.testclient import TestClient

from bot.service.app import create_app
from tests.conftest import REDIS_URL, load_fixture, make_settings
from tests.webhooks import chatwoot_request, guesty_request

SECRET = "bot-secret-for-tests"


@pytest.fixture
def settings(clean_db: str, queue_name: str) -> Any:
    return make_settings(clean_db, queue_name)


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT source, event_type, dedupe_key, status, subject FROM operational_events ORDER BY id"
        ).fetchall()


def queued(queue_name: str) -> int:
    return int(redis.Redis.from_url(REDIS_URL).llen(f"rq:queue:{queue_name}"))


def test_signed_chatwoot_delivery_is_stored_and_queued(client: TestClient, settings: Any) -> None:
    payload = load_fixture("chatwoot/message_created.incoming_audio_webwidget.json")
    body, headers = chatwoot_request(payload, SECRET)
    resp = client.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "queued"
    assert rows(settings.database_dsn) == [
        ("chatwoot", "message_created", f"chatwoot:message_created:{payload['id']}", "received", "conversation:57")
    ]
    assert queued(settings.queue_name) == 1


def test_same_message_twice_is_stored_and_queued_once(client: TestClient, settings: Any) -> None:
    payload = load_fixture("chatwoot/message_created.incoming_audio_webwidget.json")
    for _ in range(2):  # Chatwoot may send one message twice, under two delivery ids
        body, headers = chatwoot_request(payload, SECRET)
        assert client.post("/webhooks/chatwoot", content=body, headers=headers).status_code == 200
    assert len(rows(settings.database_dsn)) == 1
    assert queued(settings.queue_name) == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.update({"x-chatwoot-signature": "sha256=" + "0" * 64}), "signature does not match"),
        (lambda h: h.pop("x-chatwoot-signature"), "missing X-Chatwoot-Signature"),
        (lambda h: h.update({"x-chatwoot-timestamp": str(int(time.time()) - 301)}), "outside the 5-minute"),
    ],
    ids=["forged", "unsigned", "stale"],
)
def test_bad_chatwoot_signature_is_refused_and_not_stored(
    client: TestClient, settings: Any, mutate: Any, reason: str
) -> None:
    body, headers = chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    mutate(headers)
    resp = client.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 401
    assert reason in resp.json()["error"]
    assert rows(settings.database_dsn) == []


def test_url_token_mode_for_chatwoot_before_4_13(clean_db: str, queue_name: str) -> None:
    settings = make_settings(clean_db, queue_name, CHATWOOT_BOT_SECRET="", CHATWOOT_WEBHOOK_TOKEN="url-token-1")
    body = json.dumps(load_fixture("chatwoot/message_created.agent_reply.json")).encode()
    with TestClient(create_app(settings)) as c:
        assert c.post("/webhooks/chatwoot/url-token-1", content=body).status_code == 200
        assert c.post("/webhooks/chatwoot?token=wrong", content=body).status_code == 401
        assert c.post("/webhooks/chatwoot", content=body).status_code == 401


def test_malformed_json_gets_400(client: TestClient, settings: Any) -> None:
    body = b'{"event": "message_created", '
    _, headers = chatwoot_request({}, SECRET)
    ts = int(headers["x-chatwoot-timestamp"])
    from integrations.chatwoot.verify import sign

    headers["x-chatwoot-signature"] = sign(body, SECRET, ts)
    resp = client.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 400
    assert "malformed JSON" in resp.json()["error"]
    assert rows(settings.database_dsn) == []


def test_oversized_body_gets_413(clean_db: str, queue_name: str) -> None:
    settings = make_settings(clean_db, queue_name, MAX_BODY_BYTES="1000")
    payload = load_fixture("chatwoot/message_created.agent_reply.json")
    body, headers = chatwoot_request(payload, SECRET)
    with TestClient(create_app(settings)) as c:
        assert c.post("/webhooks/chatwoot", content=body, headers=headers).status_code == 413


def test_unknown_event_is_stored_as_ignored_and_answered_200(client: TestClient, settings: Any) -> None:
    payload = {"event": "contact_merged", "id": 1}
    body, headers = chatwoot_request(payload, SECRET)
    resp = client.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "ignored"
    assert rows(settings.database_dsn)[0][3] == "ignored"
    assert queued(settings.queue_name) == 0


def test_aircall_token_is_checked_and_not_stored(client: TestClient, settings: Any) -> None:
    payload = load_fixture("aircall/call.ended.json")
    assert client.post("/webhooks/aircall", json=payload).status_code == 200
    with psycopg.connect(settings.database_dsn) as conn:
        (stored,) = conn.execute("SELECT payload FROM operational_events").fetchone()  # type: ignore[misc]
    assert "token" not in stored  # the shared secret is never kept
    assert "recording" not in stored["data"] and stored["data"]["asset"] == payload["data"]["asset"]
    forged = copy.deepcopy(payload)
    forged["token"] = payload["token"][:-1] + "7"
    resp = client.post("/webhooks/aircall", json=forged)
    assert resp.status_code == 401
    assert len(rows(settings.database_dsn)) == 1


def test_guesty_svix_signature(client: TestClient, settings: Any) -> None:
    payload = load_fixture("guesty/reservation.new.json")
    body, headers = guesty_request(payload, settings.secret("guesty_webhook_secret"), msg_id="msg_1")
    assert client.post("/webhooks/guesty", content=body, headers=headers).status_code == 200
    assert client.post("/webhooks/guesty", content=body, headers=headers).json()["status"] == "duplicate"
    bad = dict(headers, **{"svix-signature": "v1,AAAA"})
    assert client.post("/webhooks/guesty", content=body, headers=bad).status_code == 401
    assert [r[2] for r in rows(settings.database_dsn)] == ["guesty:msg_1"]


def test_redis_down_still_stores_and_answers(clean_db: str, queue_name: str) -> None:
    settings = make_settings(clean_db, queue_name, REDIS_URL="redis://127.0.0.1:1/0")
    body, headers = chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    with TestClient(create_app(settings)) as c:
        resp = c.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 200  # stored: the failed queuing happens after the answer
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT status, enqueued_at FROM operational_events").fetchone() == ("received", None)


def test_postgres_down_spools_the_delivery_and_answers_200(queue_name: str) -> None:
    settings = make_settings("postgresql://postgres@127.0.0.1:1/nowhere", queue_name, INTAKE_DB_WAIT_S="0.2")
    body, headers = chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    with TestClient(create_app(settings)) as c:
        resp = c.post("/webhooks/chatwoot", content=body, headers=headers)
    assert (resp.status_code, resp.json()) == (200, {"status": "spooled"})
    assert len(list(settings.spool_dir.glob("*.rec"))) == 1


def test_postgres_and_spool_both_down_answers_500_so_chatwoot_retries(queue_name: str) -> None:
    settings = make_settings(
        "postgresql://postgres@127.0.0.1:1/nowhere", queue_name, INTAKE_DB_WAIT_S="0.2", SPOOL_DIR="/dev/null/spool"
    )
    body, headers = chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    with TestClient(create_app(settings)) as c:
        resp = c.post("/webhooks/chatwoot", content=body, headers=headers)
    assert resp.status_code == 500
    assert resp.json() == {"error": "storage unavailable, retry later"}


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["postgres"] == "ok"
    body, headers = chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    client.post("/webhooks/chatwoot", content=body, headers=headers)
    text = client.get("/metrics").text
    assert 'sidecar_http_requests_total{route="chatwoot",status="200"}' in text
    assert 'sidecar_events_stored_total{outcome="queued",source="chatwoot"}' in text
    assert "sidecar_webhook_ack_seconds_bucket" in text


def test_metrics_count_deliveries_by_outcome_without_reading_the_ledger(
    client: TestClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = client.get("/metrics").text
    payload = load_fixture("chatwoot/message_created.agent_reply.json")
    for _ in range(2):
        body, headers = chatwoot_request(payload, SECRET)
        client.post("/webhooks/chatwoot", content=body, headers=headers)
    body, headers = chatwoot_request({"event": "contact_merged", "id": 1}, SECRET)
    client.post("/webhooks/chatwoot", content=body, headers=headers)

    def no_database(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a scrape must not touch Postgres")

    monkeypatch.setattr(client.app.state.pool, "connection", no_database)  # type: ignore[attr-defined]
    after = client.get("/metrics").text
    for outcome, added in (("queued", 1), ("duplicate", 1), ("ignored", 1)):
        assert counter(after, outcome) - counter(before, outcome) == added


def counter(text: str, outcome: str) -> float:
    prefix = f'sidecar_events_stored_total{{outcome="{outcome}",source="chatwoot"}} '
    return next((float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)), 0.0)
