"""The operator commands that are not covered elsewhere: ingest, ask and replay, and each handed to a worker."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.context import JobContext
from bot.service import jobs, periodic
from bot.service.cli import main as cli
from bot.service.jobs import Runtime, make_queue
from bot.service.worker import run_worker
from tests.conftest import make_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "bot" / "knowledge" / "examples"


@pytest.fixture
def env(clean_db: str, queue_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "DATABASE_URL": clean_db,
        "QUEUE_NAME": queue_name,
        "QDRANT_PATH": str(tmp_path / "qdrant"),
        "SPEECH_BACKEND": "local",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_ingest_then_ask_answers_from_the_guides(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["ingest", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out.startswith("9 files: 74 chunks added, 0 unchanged, 0 deleted")
    assert cli(["ingest", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out.startswith("9 files: 0 chunks added, 74 unchanged, 0 deleted")
    assert cli(["ask", "What time is check-out?", "--property", "lis-alfama"]) == 0
    out = capsys.readouterr().out
    assert "Check-out is by 11:00 (11 am)." in out and "lis-alfama/en/guide.md › Arrival and departure" in out


def test_ingest_is_handed_to_the_worker_that_holds_the_embedded_store(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings: Any = make_settings(env["DATABASE_URL"], env["QUEUE_NAME"], QDRANT_PATH=env["QDRANT_PATH"])
    rt = Runtime(settings)  # a running worker, holding the embedded store
    try:
        ctx = rt.run(JobContext.open(settings))
        rt.ctx = ctx

        rt.run(ctx.warm_up())
        assert cli(["ingest", str(EXAMPLES)]) == 0
        assert "queued the ingest" in capsys.readouterr().out
        [job] = make_queue(settings).jobs
        assert job.func_name == "bot.service.periodic.ingest_folder"
        jobs.install_runtime(rt)
        assert periodic.ingest_folder(*job.args).startswith("9 files: 74 chunks added")
    finally:
        jobs.install_runtime(None)
        rt.close()
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM vector_references").fetchone() == (74,)
        gates = dict(conn.execute("SELECT gate, count(*) FROM vector_references GROUP BY gate").fetchall())
    assert gates["private"] == 4 and gates["access"] > 0  # the four guides' addresses; codes and passwords


def test_ask_json_lists_the_decision_and_every_passage(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["ingest", str(EXAMPLES)]) == 0
    capsys.readouterr()
    assert cli(["ask", "À quelle heure est le check-out ?", "--property", "lis-alfama", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["decision"], answer["language"], answer["property"]) == ("answer", "fr", "lis-alfama")
    assert answer["answer"].startswith("(Réponse automatique tirée de nos guides")
    first = answer["passages"][0]
    assert set(first) == {"text", "score", "source", "heading", "property", "language", "gate"}
    assert all(p["gate"] == "open" for p in answer["passages"])  # no --access: nothing gated


def test_ask_as_a_contact_uses_its_booking(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["ingest", str(EXAMPLES)]) == 0
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO properties (code, name) VALUES ('ber-mitte', 'Mitte Courtyard Studio')")
        conn.execute(
            "INSERT INTO reservations (guesty_id, confirmation_code, status, guest_name, property_code,"
            " check_in_at, check_out_at, chatwoot_contact_id)"
            " VALUES ('r1', 'HM42', 'confirmed', 'Ana Silva', 'ber-mitte', now() + interval '1 day',"
            " now() + interval '4 days', 812)"
        )
    capsys.readouterr()
    assert cli(["ask", "What is the door code?", "--contact", "812", "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert (verified["property"], verified["identity"], verified["booking"]) == ("ber-mitte", "verified", "HM42")
    assert verified["access_properties"] == ["ber-mitte"]
    assert cli(["ask", "What is the door code?", "--contact", "812", "--identity", "claimed", "--json"]) == 0
    claimed = json.loads(capsys.readouterr().out)
    assert claimed["access_properties"] == [] and all(p["gate"] == "open" for p in claimed["passages"])


def run_with_a_worker(env: dict[str, str], argv: list[str]) -> int:
    """Run a CLI command while a worker holds the embedded store (knowledge ingested): the command finds the
    store busy and queues its work, the worker does it in a burst, and the command prints the result."""
    settings: Any = make_settings(env["DATABASE_URL"], env["QUEUE_NAME"], QDRANT_PATH=env["QDRANT_PATH"])
    rt = Runtime(settings)
    rt.ctx = rt.run(JobContext.open(settings))
    rt.run(rt.ctx.warm_up())
    jobs.install_runtime(rt)
    periodic.ingest_folder(str(EXAMPLES))
    codes: list[int] = []
    command = threading.Thread(target=lambda: codes.append(cli(argv)))
    command.start()
    queue = make_queue(settings)
    try:
        for _ in range(200):
            if queue.count:
                break
            time.sleep(0.05)
        run_worker(settings, burst=True, runtime=rt)  # does the queued work, then closes the runtime
    finally:
        jobs.install_runtime(None)
    command.join(timeout=60)
    [code] = codes
    return code


def test_ask_is_answered_by_the_worker_that_holds_the_embedded_store(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ask", "What time is check-out?", "--property", "lis-alfama", "--json", "--wait", "60"]
    assert run_with_a_worker(env, argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["decision"] == "answer" and "Check-out is by 11:00" in answer["answer"]


def test_replay_is_run_by_the_worker_that_holds_the_embedded_store(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:  # one archived question and its answer
        conn.execute(
            "INSERT INTO archived_conversations (room_id, source_system, closed_at)"
            " VALUES ('r1', 'rocketchat', now() - interval '3 days')"
        )
        conn.execute(
            "INSERT INTO archived_messages (message_id, room_id, author_kind, body, sent_at) VALUES"
            " ('r1-1', 'r1', 'guest', 'What time is check-out?', now() - interval '3 days 5 minutes'),"
            " ('r1-2', 'r1', 'agent', 'Check-out is by 11:00.', now() - interval '3 days')"
        )
    out = tmp_path / "replay.json"
    argv = ["replay", "--from", "archive", "--since", "7d", "--json", str(out), "--wait", "60"]
    assert run_with_a_worker(env, argv) == 0
    assert "would answer:   1/1 (100.0%)" in capsys.readouterr().out
    assert json.loads(out.read_text())["conversations"] == 1
