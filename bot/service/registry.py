"""Which events we handle, and with what: source -> event type -> async handler.

Supported events are exactly the keys of each source's map; the webhook intake stores anything else as
`ignored` and answers 200 so the sender does not retry.
"""

from __future__ import annotations

from bot.agent.handlers import HANDLERS as CHATWOOT
from bot.context import Handler
from integrations.aircall.handlers import HANDLERS as AIRCALL
from integrations.guesty.handlers import HANDLERS as GUESTY

HANDLERS: dict[str, dict[str, Handler]] = {"chatwoot": dict(CHATWOOT), "aircall": dict(AIRCALL), "guesty": dict(GUESTY)}


def handlers() -> dict[str, dict[str, Handler]]:
    """The registry (a function, so tests can swap a handler with monkeypatch.setitem)."""
    return HANDLERS


def is_supported(source: str, event_type: str) -> bool:
    return event_type in HANDLERS.get(source, {})


def handler_for(source: str, event_type: str) -> Handler | None:
    return HANDLERS.get(source, {}).get(event_type)
