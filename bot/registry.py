"""Which events we handle, and with what: source -> event type -> async handler.

Supported events are exactly the keys of HANDLERS; the webhook intake stores anything else as
`ignored` and answers 200 so the sender does not retry. Handler modules keep their imports light
because the web process imports this map too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.jobs import JobContext
    from bot.ledger import StoredEvent

Handler = Callable[["JobContext", "StoredEvent"], Awaitable[str | None]]


async def record_only(ctx: JobContext, event: StoredEvent) -> str | None:
    """Accept an event we store for the record but act on elsewhere (or not yet)."""
    return "done"


def _load() -> dict[str, dict[str, Handler]]:
    from bot.chatwoot.handlers import HANDLERS as chatwoot
    from integrations.aircall.handlers import HANDLERS as aircall
    from integrations.guesty.handlers import HANDLERS as guesty

    return {"chatwoot": dict(chatwoot), "aircall": dict(aircall), "guesty": dict(guesty)}


_HANDLERS: dict[str, dict[str, Handler]] | None = None


def handlers() -> dict[str, dict[str, Handler]]:
    """The registry, built on first use (so tests can import this module cheaply)."""
    global _HANDLERS
    if _HANDLERS is None:
        _HANDLERS = _load()
    return _HANDLERS


def is_supported(source: str, event_type: str) -> bool:
    return event_type in handlers().get(source, {})


def handler_for(source: str, event_type: str) -> Handler | None:
    return handlers().get(source, {}).get(event_type)
