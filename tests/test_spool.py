"""The intake's spool: verified deliveries kept on disk while Postgres is away, drained into the ledger in
order and once, and never drained as garbage after a crash."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg_pool import PoolTimeout
from starlette.testclient import TestClient

from bot.core import db
from bot.core.ledger import Delivery
from bot.core.spool import Spool, drain_into, drain_spool, encode
from bot.service import intake
from bot.service.app import create_app
from tests.conftest import REDIS_URL, load_fixture, make_settings
from tests.webhooks import chatwoot_request, guesty_request

SECRET = "bot-secret-for-tests"


def delivery(n: int, *, event: str = "message_created", subject: str = "conversation:57") -> Delivery:
    return Delivery("chatwoot", event, f"chatwoot:{event}:{n}", subject, {"event": event, "id": n, "content": "hi"})


def ledger_rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT dedupe_key, status, enqueued_at IS NULL FROM operational_events ORDER BY id"
        ).fetchall()


def queued(queue_name: str) -> int:
    return int(redis.Redis.from_url(REDIS_URL).llen(f"rq:queue:{queue_name}"))


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


# ------------------------------------------------------------------------------------------- the spool itself


def test_spooled_deliveries_reach_the_ledger_in_arrival_order_with_their_arrival_time(
    clean_db: str, spool: Spool
) -> None:
    arrived = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    for n in (3, 1, 2):  # arrival order, not key order
        spool.append(delivery(n), known=True, received_at=arrived + timedelta(seconds=n))
    assert spool.backlog
    report = drain_into(clean_db, spool, queued=False)
    assert (report.drained, len(report.queued), report.left) == (3, 3, 0)
    assert ledger_rows(clean_db) == [
        ("chatwoot:message_created:3", "received", True),
        ("chatwoot:message_created:1", "received", True),
        ("chatwoot:message_created:2", "received", True),
    ]
    with psycopg.connect(clean_db) as conn:
        first = conn.execute("SELECT received_at FROM operational_events ORDER BY id LIMIT 1").fetchone()
    assert first == (arrived + timedelta(seconds=3),)
    assert spool.names() == [] and not spool.backlog


def test_a_delivery_spooled_twice_and_already_stored_becomes_one_row(clean_db: str, spool: Spool) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        from bot.core import ledger

        ledger.insert(conn, delivery(1), known=True)
    spool.append(delivery(1), known=True)
    spool.append(delivery(2), known=True)
    spool.append(delivery(2), known=True)  # the sender retried while Postgres was down
    report = drain_into(clean_db, spool, queued=False)
    assert (len(report.queued), report.duplicates) == (1, 2)
    assert [r[0] for r in ledger_rows(clean_db)] == ["chatwoot:message_created:1", "chatwoot:message_created:2"]


def test_unknown_events_are_drained_as_ignored_and_need_no_job(clean_db: str, spool: Spool) -> None:
    spool.append(delivery(1, event="contact_merged"), known=False)
    report = drain_into(clean_db, spool, queued=True)
    assert (report.queued, report.ignored) == ([], 1)
    assert ledger_rows(clean_db) == [("chatwoot:contact_merged:1", "ignored", True)]


def test_web_drain_marks_rows_queued_and_worker_drain_leaves_them_to_the_sweeper(
    clean_db: str, spool: Spool, tmp_path: Path
) -> None:
    spool.append(delivery(1), known=True)
    assert drain_into(clean_db, spool, queued=True).queued == [1]
    settings = make_settings(clean_db, "unused", SPOOL_DIR=str(tmp_path / "spool"))
    spool.append(delivery(2), known=True)
    assert drain_spool(settings) == 1
    assert ledger_rows(clean_db) == [
        ("chatwoot:message_created:1", "received", False),
        ("chatwoot:message_created:2", "received", True),
    ]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda data: data[:-5], "cut short"),
        (lambda data: data[:-1] + b"X", "checksum"),
        (lambda data: b"hello\n" + data, "not a spool record"),
        (lambda data: b"SIDECAR-SPOOL 1 " + b"9" * 5000 + b" 00\n{}", "not a spool record"),
    ],
    ids=["truncated", "flipped-byte", "not-a-record", "absurd-length"],
)
def test_a_damaged_record_is_quarantined_never_drained(
    clean_db: str, spool: Spool, damage: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = spool.append(delivery(1), known=True)
    path = spool.directory / name
    path.write_bytes(damage(path.read_bytes()))
    spool.append(delivery(2), known=True)
    report = drain_into(clean_db, spool, queued=False)
    assert (report.quarantined, report.drained) == (1, 1)
    assert [r[0] for r in ledger_rows(clean_db)] == ["chatwoot:message_created:2"]
    assert (spool.directory / "quarantine" / name).exists() and spool.names() == []
    (logged,) = [r for r in caplog.records if r.getMessage() == "spool record quarantined"]
    assert why in logged.reason


def test_after_a_crash_mid_write_a_complete_temp_record_is_kept_and_a_partial_one_dropped(
    clean_db: str, spool: Spool
) -> None:
    tmp = spool.directory / "tmp"
    tmp.mkdir(parents=True)
    whole = encode(delivery(1), known=True, received_at=datetime.now(UTC))
    (tmp / "00000000000000000001-1-00000000.rec").write_bytes(whole)  # fsync'd, not yet renamed
    (tmp / "00000000000000000002-1-00000001.rec").write_bytes(whole[: len(whole) // 2])  # cut mid-write
    (tmp / "00000000000000000003-1-00000002.rec").write_bytes(whole[:10])  # being written right now
    old = time.time() - 3600
    for name in ("00000000000000000001-1-00000000.rec", "00000000000000000002-1-00000001.rec"):
        os.utime(tmp / name, (old, old))
    report = drain_into(clean_db, spool, queued=False)
    assert report.drained == 1
    assert [r[0] for r in ledger_rows(clean_db)] == ["chatwoot:message_created:1"]
    assert sorted(p.name for p in tmp.iterdir()) == ["00000000000000000003-1-00000002.rec"]


def test_with_the_database_down_every_record_stays(spool: Spool) -> None:
    spool.append(delivery(1), known=True)
    report = drain_into("postgresql://postgres@127.0.0.1:1/nowhere", spool, queued=True)
    assert (report.drained, report.left) == (0, 1)
    assert len(spool.names()) == 1 and spool.backlog


def test_a_second_drainer_leaves_the_spool_to_the_first(clean_db: str, spool: Spool) -> None:
    spool.append(delivery(1), known=True)
    fd = os.open(spool.directory / ".drain.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the worker, draining the same folder
        assert drain_into(clean_db, spool, queued=False).drained == 0
    finally:
        os.close(fd)
    assert drain_into(clean_db, spool, queued=False).drained == 1


def test_records_are_private_files(spool: Spool) -> None:
    name = spool.append(delivery(1), known=True)
    assert (spool.directory / name).stat().st_mode & 0o777 == 0o600
    assert (spool.directory / "tmp").stat().st_mode & 0o777 == 0o700


# ------------------------------------------------------------------------------------------- through the app


def sign_for(route: str, settings: Any) -> tuple[bytes, dict[str, str]]:
    if route == "chatwoot":
        return chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    if route == "guesty":
        return guesty_request(load_fixture("guesty/reservation.new.json"), settings.secret("guesty_webhook_secret"))
    import json

    return json.dumps(load_fixture("aircall/call.ended.json")).encode(), {"content-type": "application/json"}


@pytest.mark.parametrize("route", ["chatwoot", "aircall", "guesty"])
def test_every_route_spools_when_postgres_is_unreachable(route: str, queue_name: str) -> None:
    settings = make_settings("postgresql://postgres@127.0.0.1:1/nowhere", queue_name, INTAKE_DB_WAIT_S="0.2")
    body, headers = sign_for(route, settings)
    with TestClient(create_app(settings)) as c:
        resp = c.post(f"/webhooks/{route}", content=body, headers=headers)
        metrics_text = c.get("/metrics").text
    assert (resp.status_code, resp.json()) == (200, {"status": "spooled"})
    (record,) = Spool(settings.spool_dir).names()
    assert Spool(settings.spool_dir).read(record).delivery.source == route
    assert f'sidecar_events_stored_total{{outcome="spooled",source="{route}"}}' in metrics_text
    assert "sidecar_spool_pending 1.0" in metrics_text


def test_no_pooled_connection_in_time_spools_too(clean_db: str, queue_name: str) -> None:
    settings = make_settings(clean_db, queue_name)

    class ExhaustedPool:
        @contextlib.asynccontextmanager
        async def connection(self, timeout: float | None = None) -> Any:
            raise PoolTimeout("couldn't get a connection after 1.00 sec")
            yield

    body, headers = chatwoot_request(load_fixture("chatwoot/message_created.agent_reply.json"), SECRET)
    with TestClient(create_app(settings)) as c:
        real = c.app.state.pool  # type: ignore[attr-defined]
        c.app.state.pool = ExhaustedPool()  # type: ignore[attr-defined]
        resp = c.post("/webhooks/chatwoot", content=body, headers=headers)
        c.app.state.pool = real  # type: ignore[attr-defined]
    assert resp.json() == {"status": "spooled"}


class Cluster:
    """A throwaway PostgreSQL of our own on a spare port, so a test can stop it (never the shared one)."""

    def __init__(self) -> None:
        self.bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.datadir = tempfile.mkdtemp(prefix="sidecar-pg-")
        shutil.chown(self.datadir, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._as_postgres(f"{self.bindir}/initdb", "-D", self.datadir, "-A", "trust", "-U", "postgres", "--no-sync")
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/sidecar"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._as_postgres(
            f"{self.bindir}/pg_ctl",
            "-D",
            self.datadir,
            "-l",
            f"{self.datadir}/log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0 or not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("needs root and the PostgreSQL server binaries to run a private cluster")
    own = Cluster()
    own.start()
    try:
        yield own
    finally:
        own.remove()


def wait_for(check: Any, *, attempts: int = 300) -> None:
    for _ in range(attempts):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("gave up waiting")


def test_postgres_restart_loses_nothing_and_keeps_arrival_order(
    cluster: Cluster, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "DRAIN_EVERY_S", 0.2)
    settings = make_settings(cluster.dsn, queue_name, INTAKE_DB_WAIT_S="0.5")
    db.create_database(settings.database_dsn)
    db.upgrade(settings.database_dsn)
    sent = []

    def post(c: TestClient, n: int) -> str:
        payload = dict(load_fixture("chatwoot/message_created.agent_reply.json"), id=n)
        body, headers = chatwoot_request(payload, SECRET)
        sent.append(f"chatwoot:message_created:{n}")
        return str(c.post("/webhooks/chatwoot", content=body, headers=headers).json()["status"])

    with TestClient(create_app(settings)) as c:
        assert post(c, 1) == "queued"
        cluster.stop()
        assert [post(c, 2), post(c, 3)] == ["spooled", "spooled"]
        lock = os.open(settings.spool_dir / ".drain.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)  # hold the drain back (as a worker draining the folder would)
        cluster.start()
        assert post(c, 4) == "spooled"  # records are waiting: it joins them rather than overtaking them
        os.close(lock)
        wait_for(lambda: not Spool(settings.spool_dir).names() and queued(queue_name) == 4)
        assert post(c, 5) == "queued"  # the backlog is gone: straight to the ledger again
    assert [r[0] for r in ledger_rows(settings.database_dsn)] == sent
    assert {r[1] for r in ledger_rows(settings.database_dsn)} == {"received"}


def test_a_failed_write_leaves_no_partial_record(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.core import spool as spool_mod

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_mod.os, "fsync", disk_full)
    with pytest.raises(spool_mod.SpoolError, match="No space left on device"):
        spool.append(delivery(1), known=True)
    assert spool.names() == [] and list((spool.directory / "tmp").iterdir()) == []


def test_an_unwritable_spool_folder_is_reported_at_start(
    queue_name: str, clean_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(clean_db, queue_name, SPOOL_DIR="/dev/null/spool")
    with TestClient(create_app(settings)):
        pass
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("spool unusable")]
    assert logged.reason == "SPOOL_DIR /dev/null/spool is not writable (Not a directory); mount a volume there"


def test_a_record_postgres_refuses_is_set_aside_and_the_rest_drain(clean_db: str, spool: Spool) -> None:
    refused = Delivery("chatwoot", "message_created", "chatwoot:message_created:1", None, {"content": "a\x00b"})
    name = spool.append(refused, known=True)  # jsonb holds no NUL; the intake refuses these at the door
    spool.append(delivery(2), known=True)
    report = drain_into(clean_db, spool, queued=False)
    assert (report.quarantined, len(report.queued)) == (1, 1)
    assert (spool.directory / "quarantine" / name).exists()
    assert [r[0] for r in ledger_rows(clean_db)] == ["chatwoot:message_created:2"]


def test_the_workers_drain_never_raises_into_the_sweeper(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(clean_db, "unused", SPOOL_DIR=str(tmp_path / "spool"))
    Spool(settings.spool_dir).append(delivery(1), known=True)

    def unreadable(self: Spool, name: str) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Spool, "read", unreadable)
    assert drain_spool(settings) == 0
    assert (
        drain_spool(
            make_settings("postgresql://postgres@127.0.0.1:1/nowhere", "unused", SPOOL_DIR=str(tmp_path / "spool"))
        )
        == 0
    )
