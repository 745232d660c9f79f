"""Send guest messages the way Chatwoot's AgentBots::WebhookJob does, and remember what happened.

Chatwoot (4.15, reference §4): 5 s open/read timeout; only 429 and 500 are retried, 3 attempts in all,
3 s apart, with the same X-Chatwoot-Delivery and a fresh timestamp and signature; anything else
(timeouts, other 5xx, 4xx) is given up at once, and Chatwoot then opens the conversation itself.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

import httpx

from harness.payloads import AUTOPILOT_INBOX, QUESTIONS, chatwoot_headers, dumps, guest_message

CHATWOOT_TIMEOUT_S = 5.0
CHATWOOT_ATTEMPTS = 3
CHATWOOT_RETRY_WAIT_S = 3.0
RETRIED = (429, 500)


@dataclass
class Sent:
    """One guest message and the sidecar's answers to its delivery attempts."""

    scenario: str
    conversation_id: int
    message_id: int
    statuses: list[int] = field(default_factory=list)  # 0 = no answer (timeout, connection refused)

    @property
    def acknowledged(self) -> bool:
        return any(200 <= s < 300 for s in self.statuses)

    @property
    def server_errors(self) -> int:
        return sum(1 for s in self.statuses if s >= 500)


_ids = itertools.count(1)


def next_ids() -> tuple[int, int, int]:
    """(conversation, message, contact) ids: one fresh conversation per guest message."""
    n = next(_ids)
    return 700_000 + n, 9_000_000 + n, 40_000 + n


class Streamer:
    """Registers each guest message in the stand-in (as Chatwoot creates it) and delivers it to the bot."""

    def __init__(self, sidecar_url: str, standin_url: str) -> None:
        self.sidecar_url = sidecar_url
        self.standin_url = standin_url
        self.sent: list[Sent] = []
        self._client = httpx.AsyncClient(
            timeout=CHATWOOT_TIMEOUT_S, limits=httpx.Limits(max_connections=64, max_keepalive_connections=16)
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def stream(self, scenario: str, count: int, rate_per_s: float) -> None:
        """Send `count` guest messages at a steady rate; returns when every delivery has settled."""
        tasks: list[asyncio.Task[None]] = []
        started = time.monotonic()
        for i in range(count):
            delay = started + i / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.deliver(scenario, QUESTIONS[i % len(QUESTIONS)])))
        await asyncio.gather(*tasks)

    async def deliver(self, scenario: str, text: str) -> None:
        conv, msg, contact = next_ids()
        sent = Sent(scenario, conv, msg)
        self.sent.append(sent)
        await self._client.post(
            f"{self.standin_url}/_harness/incoming",
            json={
                "conversation_id": conv,
                "message_id": msg,
                "contact_id": contact,
                "inbox_id": AUTOPILOT_INBOX,
                "content": text,
            },
        )
        body = dumps(guest_message(conv, msg, contact, text))
        delivery = str(uuid.uuid4())
        for attempt in range(CHATWOOT_ATTEMPTS):
            if attempt:
                await asyncio.sleep(CHATWOOT_RETRY_WAIT_S)
            try:
                response = await self._client.post(
                    f"{self.sidecar_url}/webhooks/chatwoot", content=body, headers=chatwoot_headers(body, delivery)
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            sent.statuses.append(status)
            if status not in RETRIED:
                return
