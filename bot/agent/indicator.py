"""Chatwoot's typing indicator while the bot answers: cosmetic, so it never fails a reply or delays one."""

from __future__ import annotations

import asyncio
import logging

from integrations.chatwoot.client import ChatwootClient, ChatwootError

log = logging.getLogger("sidecar.bot")

# The indicator goes on this long after the model was asked. Its request then travels while the bot waits
# for the model instead of taking CPU from the work before it (the guest's scope, the search, the request to
# the model), and an answer ready sooner than this shows no indicator flashing on and off.
TYPING_AFTER_S = 0.05


async def set_typing(cw: ChatwootClient, conversation_id: int, on: bool) -> None:
    try:
        await cw.toggle_typing(conversation_id, on)
    except ChatwootError as exc:  # cosmetic: never fail a reply over the typing indicator
        log.info("typing indicator failed", extra={"conversation_id": conversation_id, "error": str(exc)[:200]})


class Typing:
    """The indicator for one answer: `start()` as the model is asked, `stop()` once the reply is out
    (switched off only if it was switched on)."""

    def __init__(self, cw: ChatwootClient, conversation_id: int, *, after_s: float = TYPING_AFTER_S) -> None:
        self.cw, self.conversation_id, self.after_s = cw, conversation_id, after_s
        self._task: asyncio.Task[None] | None = None
        self._on = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._switch_on())

    async def _switch_on(self) -> None:
        await asyncio.sleep(self.after_s)
        self._on = True
        await set_typing(self.cw, self.conversation_id, True)

    async def stop(self) -> None:
        if self._task is None:
            return
        if not self._on:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._on:
            await set_typing(self.cw, self.conversation_id, False)
