"""POST /webhooks/aircall: check the token inside the body, keep no secret or presigned link, name it for the ledger."""

from __future__ import annotations

from starlette.requests import Request

from bot.core.ledger import Delivery
from bot.core.webhooks import Rejection, parse_object
from config.settings import Settings
from integrations.aircall import transforms as aircall_transforms
from integrations.aircall import verify as aircall_verify


async def delivery(request: Request, raw: bytes) -> Delivery:
    settings: Settings = request.app.state.settings
    payload = parse_object(raw)  # Aircall signs nothing: the token is inside the JSON
    expected = settings.secret("aircall_webhook_token")
    if not expected:
        raise Rejection(401, "set AIRCALL_WEBHOOK_TOKEN to accept Aircall")
    try:
        aircall_verify.verify_token(payload, expected)
    except aircall_verify.AircallVerificationError as exc:
        raise Rejection(401, str(exc)) from None
    try:
        event, data = aircall_verify.check_envelope(payload)
    except aircall_verify.AircallPayloadError as exc:
        raise Rejection(400, str(exc)) from None
    # Never keep the shared secret, nor the presigned media links (bearer URLs to guests' audio): the
    # durable `asset` link stays, and a fresh URL comes from Aircall's API when one is needed.
    stored = {k: v for k, v in payload.items() if k != "token"}
    if payload.get("resource") == "call":
        stored["data"] = aircall_transforms.storable(dict(data))
    return Delivery("aircall", event, aircall_verify.dedupe_key(payload), aircall_verify.subject(payload), stored)
