"""The Chatwoot side of the sidecar: the REST client and the Agent Bot webhook payload models."""

from integrations.chatwoot.client import (
    ChatwootAuthError,
    ChatwootBadRequest,
    ChatwootClient,
    ChatwootConfigError,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRetryable,
)
from integrations.chatwoot.models import (
    ConversationEvent,
    MalformedPayload,
    MessageEvent,
    UnknownEvent,
    WebwidgetTriggered,
    parse_event,
)

__all__ = [
    "ChatwootAuthError",
    "ChatwootBadRequest",
    "ChatwootClient",
    "ChatwootConfigError",
    "ChatwootError",
    "ChatwootNotFound",
    "ChatwootRetryable",
    "ConversationEvent",
    "MalformedPayload",
    "MessageEvent",
    "UnknownEvent",
    "WebwidgetTriggered",
    "parse_event",
]
