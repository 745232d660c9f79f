"""POST /webhooks/guesty: verify the Svix signature and name the event for the ledger."""

from __future__ import annotations

from starlette.requests import Request

from bot.core.ledger import Delivery
from bot.core.webhooks import Rejection, parse_object
from config.settings import Settings
from integrations.guesty import verify as guesty_verify


async def delivery(request: Request, raw: bytes) -> Delivery:
    settings: Settings = request.app.state.settings
    secret = settings.secret("guesty_webhook_secret")
    if not secret:
        raise Rejection(401, "set GUESTY_WEBHOOK_SECRET to accept Guesty")
    try:
        message_id = guesty_verify.verify(raw, request.headers, secret)
    except guesty_verify.GuestyVerificationError as exc:
        raise Rejection(401, str(exc)) from None
    payload = parse_object(raw)
    event = payload.get("event")
    if event is None or event == "":
        raise Rejection(400, "missing 'event'")
    if not isinstance(event, str):
        raise Rejection(400, "'event' must be a string")
    return Delivery("guesty", event, message_id, guesty_verify.subject(payload), payload)
