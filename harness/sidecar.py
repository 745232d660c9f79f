"""The service under test, run only through its command line: `sidecar db upgrade|ingest|serve|worker`.

A small supervisor restarts `serve` and `worker` when they exit on their own (as Docker's restart
policy would) and counts those exits, so a crash shows up in the report instead of stalling the run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from harness.ports import spare_port, wait_listening

BOT_SECRET = "harness-bot-secret"
BOT_TOKEN = "harness-bot-token"
USER_TOKEN = "harness-user-token"
AIRCALL_TOKEN = "harness-aircall-token"
GUESTY_SECRET = "whsec_aGFybmVzcy1ndWVzdHktc2VjcmV0LTMyYnl0ZXMh"  # base64 of a 32-byte key
ACCOUNT_ID = 1
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def sidecar_command() -> str:
    """The `sidecar` script beside this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / "sidecar"
    if beside.exists():
        return str(beside)
    found = shutil.which("sidecar")
    if found is None:
        raise RuntimeError("the `sidecar` command is not installed: pip install -e . in the venv")
    return found


def service_env(
    *, database_url: str, redis_url: str, chatwoot_url: str, root: Path, concurrency: int
) -> dict[str, str]:
    """A clean environment: only the variables the README documents, no keys from the caller's shell."""
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "QUEUE_NAME": "harness",
            "QDRANT_PATH": str(root / "qdrant"),
            "CHATWOOT_URL": chatwoot_url,
            "CHATWOOT_ACCOUNT_ID": str(ACCOUNT_ID),
            "CHATWOOT_BOT_TOKEN": BOT_TOKEN,
            "CHATWOOT_API_TOKEN": USER_TOKEN,
            "CHATWOOT_BOT_SECRET": BOT_SECRET,
            "AIRCALL_WEBHOOK_TOKEN": AIRCALL_TOKEN,
            "GUESTY_WEBHOOK_SECRET": GUESTY_SECRET,
            "DEFAULT_INBOX_MODE": "autopilot",
            "DEBOUNCE_SECONDS": "0",  # one guest message per conversation: nothing to gather
            "WORKER_CONCURRENCY": str(concurrency),
            # The fuzzer sends everything from one address: without this most cases would meet the rate
            # limit (429) instead of the parsers. The limits have their own tests.
            "RATE_LIMIT_PER_IP": "0",
            "SPEECH_BACKEND": "local",
            "LOG_LEVEL": "INFO",
        }
    )
    return env


@dataclass
class Managed:
    """One long-running sidecar process and its restarts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    own_exits: int = 0  # exits we did not cause
    kills: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill9(self) -> None:
        """kill -9 the process group (the process and anything it forked), then start it again."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            self.kills += 1
            self.start()

    def check(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is not None:
                self.own_exits += 1
                self.start()

    def stop(self) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                return
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


class Sidecar:
    """`sidecar serve` and `sidecar worker` under a supervisor thread."""

    def __init__(self, env: dict[str, str], root: Path, *, repo: Path) -> None:
        self.env = env
        self.repo = repo
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = spare_port()
        exe = sidecar_command()
        self.serve = Managed(
            "serve", [exe, "serve", "--host", "127.0.0.1", "--port", str(self.port)], env, self.logs / "serve.log"
        )
        self.worker = Managed("worker", [exe, "worker"], env, self.logs / "worker.log")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run_once(self, *args: str, timeout_s: float = 600) -> str:
        """Run a one-shot command (`db upgrade`, `ingest`); raise with its output when it fails."""
        result = subprocess.run(
            [sidecar_command(), *args], env=self.env, cwd=self.repo, capture_output=True, text=True, timeout=timeout_s
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"sidecar {' '.join(args)} failed ({result.returncode}): {(result.stderr or result.stdout)[-2000:]}"
            )
        return result.stdout

    def start(self) -> None:
        self.serve.start()
        self.worker.start()
        if not wait_listening(self.port, 60):
            raise RuntimeError(f"sidecar serve did not listen on {self.port} (log: {self.serve.log})")
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            self.serve.check()
            self.worker.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.worker.stop()
        self.serve.stop()
