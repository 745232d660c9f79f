"""The intake's fallback when PostgreSQL cannot take a delivery: a local spool, drained into the ledger later.

A verified delivery that cannot be stored (Postgres down, or no pooled connection within INTAKE_DB_WAIT_S)
is written here and acknowledged with 200, so a database restart loses nothing and Chatwoot does not
open the conversation with "an error with the agent bot".

One file per delivery, in SPOOL_DIR (0700; files 0600: payloads are personal data). A record is written to
`tmp/`, fsync'd, renamed into place and the directory fsync'd before the sender hears 200, so a complete
record survives a crash and a half-written one is never under a record name. Each file starts with a header
carrying the body's length and SHA-256: a damaged record is moved to `quarantine/`, never drained as garbage
and never deleted. A file in `tmp/` older than ORPHAN_AGE_S is a write cut short by a crash: promoted if its
checksum holds (complete, though its sender may not have heard 200), deleted otherwise (never acknowledged).

Names start with the time in nanoseconds, so draining in name order is arrival order. Draining inserts each
record with the ledger's unique dedupe key (a record stored twice, or one its sender also retried, becomes
one row), then deletes the file; an flock keeps two drainers (web and worker sharing the folder) apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bot.core import ledger, metrics
from bot.core.ledger import Delivery
from bot.errors import SidecarError
from config.settings import Settings

log = logging.getLogger("sidecar.spool")

MAGIC = b"SIDECAR-SPOOL 1"
SUFFIX = ".rec"
ORPHAN_AGE_S = 60.0  # a write takes milliseconds; a temp file this old was cut short by a crash
CONNECT_TIMEOUT_S = 3


class SpoolError(SidecarError):
    """The spool could not make a record durable (disk full, read-only or missing folder, permissions)."""


class CorruptRecord(SidecarError):
    """A record's header, length or checksum does not hold; it is quarantined, never drained."""


@dataclass(frozen=True)
class SpooledDelivery:
    """A record read back: the delivery, whether its event is handled, and when it arrived."""

    name: str
    delivery: Delivery
    known: bool
    received_at: datetime


@dataclass
class DrainReport:
    """What one drain did. `queued` holds the new rows that need a job (known events, not duplicates)."""

    queued: list[int] = field(default_factory=list)
    ignored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    left: int = 0  # records still waiting because PostgreSQL failed mid-drain

    @property
    def drained(self) -> int:
        """Records that reached the ledger (or were already there) and left the spool."""
        return len(self.queued) + self.ignored + self.duplicates


def encode(delivery: Delivery, *, known: bool, received_at: datetime) -> bytes:
    """A record's bytes: the header line (magic, body length, body SHA-256), then the JSON body."""
    body = json.dumps(
        {
            "source": delivery.source,
            "event_type": delivery.event_type,
            "dedupe_key": delivery.dedupe_key,
            "subject": delivery.subject,
            "payload": delivery.payload,
            "known": known,
            "received_at": received_at.isoformat(),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return b"%s %d %s\n" % (MAGIC, len(body), hashlib.sha256(body).hexdigest().encode()) + body


def decode(name: str, data: bytes) -> SpooledDelivery:
    """Read a record back; CorruptRecord unless its header, length and checksum all hold."""
    header, newline, body = data.partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(parts) != 4 or b" ".join(parts[:2]) != MAGIC or not parts[2].isdigit() or len(parts[2]) > 12:
        raise CorruptRecord(f"{name}: not a spool record")
    if int(parts[2]) != len(body):
        raise CorruptRecord(f"{name}: {len(body)} bytes where the header says {int(parts[2])} (cut short?)")
    if hashlib.sha256(body).hexdigest().encode() != parts[3]:
        raise CorruptRecord(f"{name}: checksum does not match")
    try:
        raw = json.loads(body)
        delivery = Delivery(
            str(raw["source"]), str(raw["event_type"]), str(raw["dedupe_key"]), raw["subject"], dict(raw["payload"])
        )
        return SpooledDelivery(name, delivery, bool(raw["known"]), datetime.fromisoformat(raw["received_at"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptRecord(f"{name}: {type(exc).__name__}: {exc}") from None


class Spool:
    """A folder of spooled deliveries. Thread-safe; `backlog` tells the intake to queue behind them."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._tmp = self.directory / "tmp"
        self._quarantine = self.directory / "quarantine"
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._backlog = bool(self.names())

    @property
    def backlog(self) -> bool:
        """Records are waiting: new deliveries join them, so the ledger gets them in arrival order."""
        return self._backlog

    def names(self) -> list[str]:
        """Complete records, oldest first (none when the folder is missing or unreadable: append says why)."""
        try:
            return sorted(e.name for e in os.scandir(self.directory) if e.name.endswith(SUFFIX) and e.is_file())
        except OSError:
            return []

    def append(self, delivery: Delivery, *, known: bool, received_at: datetime | None = None) -> str:
        """Make a delivery durable; once this returns the record survives a crash. SpoolError otherwise."""
        data = encode(delivery, known=known, received_at=received_at or datetime.now(UTC))
        # Time first (drain order); pid, counter and a random tag keep replicas sharing a volume apart
        # (containers all run as pid 1).
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):08d}-{secrets.token_hex(4)}{SUFFIX}"
        try:
            if not self._tmp.is_dir():
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._tmp.mkdir(mode=0o700, exist_ok=True)
            temp = self._tmp / name
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            with self._lock:  # the drain checks for emptiness under the same lock before clearing the flag
                os.rename(temp, self.directory / name)
                self._backlog = True
            _fsync_dir(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self._tmp / name).unlink()  # never acknowledged: a partial copy is only clutter
            raise SpoolError(f"cannot write to the spool {self.directory}: {exc.strerror or exc}") from exc
        metrics.SPOOL_RECORDS.labels("spooled").inc()
        return name

    def problem(self) -> str | None:
        """Why records could not be written here, or None; checked at start so the operator hears it early."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._tmp.mkdir(mode=0o700, exist_ok=True)
            probe = self._tmp / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return f"SPOOL_DIR {self.directory} is not writable ({exc.strerror or exc}); mount a volume there"
        return None

    def read(self, name: str) -> SpooledDelivery:
        return decode(name, (self.directory / name).read_bytes())

    def drain(self, conn: psycopg.Connection[Any], *, queued: bool) -> DrainReport:
        """Insert every record into the ledger in order, deleting each once it is there.

        `queued`: the caller queues jobs for `report.queued` itself (rows get enqueued_at now); otherwise the
        rows wait for the worker's sweeper. Stops, leaving the rest, when PostgreSQL fails; another drainer
        holding the folder's lock means nothing to do now.
        """
        report = DrainReport()
        with self._exclusive() as mine:
            if not mine:
                return report
            self.recover_orphans()
            while True:
                names = self.names()
                if not names:
                    with self._lock:  # no append can slip in between this look and clearing the flag
                        if not self.names():
                            self._backlog = False
                            break
                    continue
                for name in names:
                    try:
                        self._drain_one(conn, name, queued, report)
                    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                        report.left = len(self.names())
                        log.warning(
                            "spool drain stopped: database unavailable",
                            extra={"left": report.left, "error": str(exc)[:200]},
                        )
                        return report
                _fsync_dir(self.directory)
        if report.drained or report.quarantined:
            log.info(
                "spool drained",
                extra={
                    "queued": len(report.queued),
                    "ignored": report.ignored,
                    "duplicates": report.duplicates,
                    "quarantined": report.quarantined,
                },
            )
        return report

    def _drain_one(self, conn: psycopg.Connection[Any], name: str, queued: bool, report: DrainReport) -> None:
        try:
            record = self.read(name)
        except FileNotFoundError:
            return  # drained by someone else between the listing and now
        except CorruptRecord as exc:
            self._set_aside(name, str(exc), report)
            return
        try:
            event_id = ledger.insert_spooled(
                conn, record.delivery, known=record.known, received_at=record.received_at, queued=queued
            )
        except (psycopg.DataError, psycopg.IntegrityError) as exc:  # this record, not the database: set it aside
            self._set_aside(name, f"{type(exc).__name__}: {exc}", report)
            return
        if event_id is None:
            report.duplicates += 1
            metrics.SPOOL_RECORDS.labels("duplicate").inc()
        elif record.known:
            report.queued.append(event_id)
            metrics.SPOOL_RECORDS.labels("stored").inc()
        else:
            report.ignored += 1
            metrics.SPOOL_RECORDS.labels("stored").inc()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / name)

    def _set_aside(self, name: str, reason: str, report: DrainReport) -> None:
        log.error("spool record quarantined", extra={"record": name, "reason": reason[:300]})
        self._quarantine.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.directory / name, self._quarantine / name)
        report.quarantined += 1
        metrics.SPOOL_RECORDS.labels("quarantined").inc()

    def recover_orphans(self, *, older_than_s: float = ORPHAN_AGE_S) -> int:
        """Promote complete temp files left by a crash; delete the half-written ones. Returns promotions."""
        promoted = 0
        try:
            entries = list(os.scandir(self._tmp))
        except OSError:
            return 0
        cutoff = time.time() - older_than_s
        for entry in entries:
            path = Path(entry.path)
            try:
                if not entry.name.endswith(SUFFIX) or entry.stat().st_mtime > cutoff:
                    continue  # possibly still being written
                decode(entry.name, path.read_bytes())
            except FileNotFoundError:
                continue  # another drainer took it
            except CorruptRecord:
                log.warning("half-written spool record deleted", extra={"record": entry.name})
                path.unlink(missing_ok=True)
                continue
            os.rename(path, self.directory / entry.name)
            promoted += 1
        if promoted:
            _fsync_dir(self.directory)
            self._backlog = True
        return promoted

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """The folder's drain lock (flock, so it also keeps a worker sharing the folder out), if free."""
        try:
            fd = os.open(self.directory / ".drain.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield False  # no usable folder: nothing was ever spooled there
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock


def _fsync_dir(directory: Path) -> None:
    """Make renames and deletions in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drain_into(dsn: str, spool: Spool, *, queued: bool) -> DrainReport:
    """Drain `spool` over a fresh connection; an unreachable database leaves everything for next time."""
    if not spool.names() and not spool.recover_orphans():
        return DrainReport()
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            return spool.drain(conn, queued=queued)
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        log.info("spool not drained: database unavailable", extra={"error": str(exc)[:200]})
        return DrainReport(left=len(spool.names()))


def drain_spool(settings: Settings) -> int:
    """For the worker's sweeper: move what the web spooled into the ledger; returns the records drained.

    Rows are left unqueued (enqueued_at NULL), so the sweep that follows queues them. Never raises for a
    database or disk problem (it logs and returns 0), so it cannot stop the sweeper calling it. Only useful
    where the worker mounts the web's SPOOL_DIR.
    """
    try:
        return drain_into(settings.database_dsn, Spool(settings.spool_dir), queued=False).drained
    except (OSError, psycopg.Error) as exc:
        log.warning("spool drain failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        return 0
