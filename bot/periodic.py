"""Periodic work, queued by the worker's sweeper thread and run as ordinary jobs (so it shares the warm
context and shows up in the queue like everything else)."""

from __future__ import annotations

import logging

from bot.jobs import runtime

log = logging.getLogger("sidecar.periodic")

STAY_STAGES_EVERY_S = 3600.0


def refresh_stay_stages() -> str:
    """Move each guest's stay-stage label (inquiry, pre-stay, during-stay, post-stay) along with the dates."""
    from integrations.guesty.stays import refresh_stay_stages as refresh

    rt = runtime()
    report = rt.run(refresh(rt.context()))
    log.info("stay stages refreshed", extra={"report": str(report)})
    return str(report)
