"""POST /webhooks/chatwoot: verify an agent-bot delivery (HMAC signature or URL token) and name it for the ledger."""

from __future__ import annotations

from starlette.requests import Request

from bot.core.ledger import Delivery
from bot.core.webhooks import Rejection, parse_object
from config.settings import Settings
from integrations.chatwoot import verify as chatwoot_verify


async def delivery(request: Request, raw: bytes) -> Delivery:
    settings: Settings = request.app.state.settings
    secret = settings.secret("chatwoot_bot_secret")
    token = settings.secret("chatwoot_webhook_token")
    try:
        if secret:
            chatwoot_verify.verify_signature(raw, request.headers, secret)
        elif token:
            given = request.path_params.get("token") or request.query_params.get("token")
            chatwoot_verify.verify_url_token(given, token)
        else:
            raise chatwoot_verify.ChatwootVerificationError(
                "set CHATWOOT_BOT_SECRET or CHATWOOT_WEBHOOK_TOKEN to accept Chatwoot"
            )
    except chatwoot_verify.ChatwootVerificationError as exc:
        raise Rejection(401, str(exc)) from None
    payload = parse_object(raw)
    try:
        event = chatwoot_verify.check_envelope(payload)
    except chatwoot_verify.ChatwootPayloadError as exc:
        raise Rejection(400, str(exc)) from None
    return Delivery(
        source="chatwoot",
        event_type=event,
        dedupe_key=chatwoot_verify.dedupe_key(payload, raw, request.headers.get("x-chatwoot-delivery")),
        subject=chatwoot_verify.subject(payload),
        payload=payload,
    )
