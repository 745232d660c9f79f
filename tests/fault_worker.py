"""`sidecar worker` for the fault tests: the real command, with a message_created handler that stays busy
while the file named by FAULT_BUSY_FLAG exists (so a test can kill or stop the worker mid-job)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.context import JobContext
from bot.core.ledger import StoredEvent
from bot.service import registry, worker
from bot.service.cli import main


async def busy_while_flagged(ctx: JobContext, event: StoredEvent) -> str:
    flag = Path(os.environ["FAULT_BUSY_FLAG"])
    while flag.exists():
        await asyncio.sleep(0.05)
    return "done"


def no_warm_up(rt: object) -> None:
    """The fault tests never retrieve: skip loading the embedding model."""


if __name__ == "__main__":
    registry.handlers()["chatwoot"] = {**registry.handlers()["chatwoot"], "message_created": busy_while_flagged}
    worker.warm_up = no_warm_up  # type: ignore[assignment]
    sys.exit(main(["worker", *sys.argv[1:]]))
