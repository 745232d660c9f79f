"""Async client for the parts of Chatwoot's REST API the sidecar uses.

Chatwoot knows two kinds of token. The Agent Bot's token may reply, toggle status, typing and
priority and (4.15+) read a conversation and its labels; everything else (message history,
contacts) answers 401 to a bot, so those calls need a user token (CHATWOOT_API_TOKEN).
Facts: /work/shared/reference/chatwoot.md §5.

Errors (what a caller catches):

    ChatwootError (status: int | None)
    ├── ChatwootConfigError   a token or setting is missing; raised before any request
    ├── ChatwootAuthError     401/403: wrong token, or a bot token on a user-only endpoint
    ├── ChatwootNotFound      404
    ├── ChatwootBadRequest    other 4xx (422 validation errors...)
    └── ChatwootRetryable     429, 5xx, timeouts and transport errors

Retryable failures are retried here a few times with short exponential backoff (Retry-After on 429
is honoured, capped). Requests that create something (messages, contacts, conversations) are only
re-sent when the failure shows Chatwoot did not process them (429, 503, connection refused), so a
slow 500 cannot post a guest the same reply twice; otherwise the ChatwootRetryable propagates and
the job layer decides.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.errors import ConfigurationError, UpstreamError, UpstreamPermanent, UpstreamTransient

log = logging.getLogger(__name__)

TokenKind = Literal["bot", "user"]
Sleep = Callable[[float], Awaitable[None]]

SEARCH_PAGE_SIZE = 15  # RESULTS_PER_PAGE in Chatwoot's contacts controller
MAX_CONTACT_PAGES = 5  # search/filter read at most 75 contacts: enough to match a phone or email
MAX_ATTACHMENTS = 15  # Chatwoot refuses more per message
ERROR_BODY_CHARS = 300
# The key under which each message we post carries its reply-ledger key, in content_attributes. Chatwoot
# (4.x: Messages::MessageBuilder keeps the whole content_attributes hash) stores it and returns it when
# messages are listed, so a post whose outcome was lost can be found again. `echo_id` cannot serve: it is
# a transient attribute, echoed once over ActionCable and never stored or listed.
REPLY_MARKER = "sidecar_reply_key"
READ_BACK_PAGES = 5  # pages of 20 read back at most when looking for a message in doubt
CLOCK_SKEW_S = 60  # Chatwoot's clock may differ from our database's


class ChatwootError(UpstreamError):
    """Any failure talking to Chatwoot; `status` is the HTTP status when there was a response."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ChatwootConfigError(ChatwootError, ConfigurationError):
    """A required token or setting is missing; the message names the variable to set."""


class ChatwootAuthError(ChatwootError, UpstreamPermanent):
    """401/403: the token is wrong, or a bot token was used on an endpoint Chatwoot keeps for users."""


class ChatwootNotFound(ChatwootError, UpstreamPermanent):
    """404: no such conversation/contact (or, on old Chatwoot, no such endpoint)."""


class ChatwootBadRequest(ChatwootError, UpstreamPermanent):
    """A 4xx other than 401/403/404/429: our request was refused as invalid; retrying will not help."""


class ChatwootRetryable(ChatwootError, UpstreamTransient):
    """429, 5xx or a transport failure: worth trying again later.

    `retry_after` is the server's Retry-After in seconds, if any. `not_processed` is True when the
    failure shows Chatwoot did not act on the request, so even a create can safely be re-sent.
    """

    def __init__(
        self, message: str, status: int | None = None, *, retry_after: float | None = None, not_processed: bool = False
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after
        self.not_processed = not_processed


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)


class ChatwootClient:
    """Chatwoot API for one account. Share one instance per process; it holds no per-call state."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        account_id: int,
        bot_token: str | None,
        api_token: str | None,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        if not base_url:
            raise ChatwootConfigError(
                "CHATWOOT_URL is not set: set it to your Chatwoot's root URL, e.g. https://chat.example.com"
            )
        if not account_id or account_id < 1:
            raise ChatwootConfigError(
                "CHATWOOT_ACCOUNT_ID is not set: set it to the numeric account id "
                "shown in Chatwoot URLs (/app/accounts/<id>/...)"
            )
        self._http = http
        self._root = f"{base_url.rstrip('/')}/api/v1/accounts/{account_id}"
        self._bot_token = bot_token or None
        self._api_token = api_token or None
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._timeout = timeout

    # ----------------------------------------------------------------- bot token

    async def post_message(
        self,
        conversation_id: int,
        content: str,
        *,
        private: bool = False,
        content_attributes: dict[str, Any] | None = None,
        echo_id: str | None = None,
        marker: str | None = None,
    ) -> dict[str, Any]:
        """Post an outgoing message (or a private note) and return the created message.

        `marker` (a reply-ledger key) is stored with it under content_attributes[REPLY_MARKER], so that
        `find_reply` can tell whether a post whose answer was lost was saved."""
        if marker is not None:
            content_attributes = {**(content_attributes or {}), REPLY_MARKER: marker}
        body = _without_none(
            {
                "content": content,
                "message_type": "outgoing",
                "private": private,
                "content_attributes": content_attributes,
                "echo_id": echo_id,
            }
        )
        return _as_dict(
            await self._request(
                "POST", f"/conversations/{conversation_id}/messages", "bot", json=body, idempotent=False
            )
        )

    async def post_attachment(
        self,
        conversation_id: int,
        content: str | None,
        files: list[tuple[str, bytes, str]],
        *,
        private: bool = False,
        is_voice_message: bool = False,
        marker: str | None = None,
    ) -> dict[str, Any]:
        """Post a message with files (filename, bytes, content type) as multipart `attachments[]`.

        `is_voice_message` makes WhatsApp Cloud deliver an audio/ogg file as a voice note. `marker` is stored
        as in post_message: a multipart form carries content_attributes as a JSON string, which Chatwoot's
        MessageBuilder parses.
        """
        if not files:
            raise ValueError("post_attachment needs at least one file; use post_message for text")
        if len(files) > MAX_ATTACHMENTS:
            raise ValueError(f"Chatwoot accepts at most {MAX_ATTACHMENTS} attachments per message")
        data = {"message_type": "outgoing", "private": _form_bool(private)}
        if content is not None:
            data["content"] = content
        if is_voice_message:
            data["is_voice_message"] = "true"
        if marker is not None:
            data["content_attributes"] = json.dumps({REPLY_MARKER: marker})
        parts = [("attachments[]", (name, blob, ctype)) for name, blob, ctype in files]
        return _as_dict(
            await self._request(
                "POST", f"/conversations/{conversation_id}/messages", "bot", data=data, files=parts, idempotent=False
            )
        )

    async def toggle_status(
        self, conversation_id: int, status: str, *, snoozed_until: int | None = None
    ) -> dict[str, Any]:
        """Set the status; with the bot token, pending -> open is Chatwoot's bot handoff.

        Returns the response payload: {success, conversation_id, current_status, snoozed_until?}.
        """
        body = _without_none({"status": status, "snoozed_until": snoozed_until})
        answer = await self._request("POST", f"/conversations/{conversation_id}/toggle_status", "bot", json=body)
        return _payload_dict(answer)

    async def toggle_typing(self, conversation_id: int, on: bool) -> None:
        """Show or hide the typing indicator. Cosmetic: Chatwoot < 4.12 refuses it to bots (401) or
        lacks it (404), and that must not fail the reply, so those answers are ignored."""
        try:
            await self._request(
                "POST",
                f"/conversations/{conversation_id}/toggle_typing_status",
                "bot",
                json={"typing_status": "on" if on else "off"},
            )
        except (ChatwootAuthError, ChatwootNotFound) as exc:
            log.debug("toggle_typing ignored (Chatwoot < 4.12?): %s", exc)

    async def toggle_priority(self, conversation_id: int, priority: str | None) -> None:
        """Set the priority (low|medium|high|urgent); None clears it (SPEC-GAPS 4: never send "none")."""
        await self._request(
            "POST", f"/conversations/{conversation_id}/toggle_priority", "bot", json={"priority": priority}
        )

    async def set_conversation_attributes(self, conversation_id: int, attributes: dict[str, Any]) -> None:
        """Set conversation custom attributes (bot token; Chatwoot replaces the whole set it is given)."""
        await self._request(
            "POST", f"/conversations/{conversation_id}/custom_attributes", "bot", json={"custom_attributes": attributes}
        )

    async def assign_team(self, conversation_id: int, team_id: int) -> None:
        """Hand the conversation to a team (its agents are notified)."""
        await self._request("POST", f"/conversations/{conversation_id}/assignments", "bot", json={"team_id": team_id})

    async def get_conversation(self, conversation_id: int) -> dict[str, Any]:
        """The conversation (bot token from Chatwoot 4.15; older versions answer 401)."""
        return _as_dict(await self._request("GET", f"/conversations/{conversation_id}", "bot"))

    async def get_labels(self, conversation_id: int) -> list[str]:
        """The conversation's labels (bot token from Chatwoot 4.15)."""
        answer = await self._request("GET", f"/conversations/{conversation_id}/labels", "bot")
        return [str(label) for label in _payload_list(answer)]

    async def add_labels(self, conversation_id: int, labels: list[str]) -> list[str]:
        """Add labels, keeping the existing ones: Chatwoot's POST replaces the whole set, so read first.

        Returns the labels after the change. No POST is sent when nothing is new.
        """
        current = await self.get_labels(conversation_id)
        merged = list(dict.fromkeys([*current, *labels]))
        if merged == current:
            return current
        return await self.set_labels(conversation_id, merged)

    async def set_labels(self, conversation_id: int, labels: list[str]) -> list[str]:
        """Replace the conversation's whole label set (what Chatwoot's POST does); returns the new set."""
        wanted = list(dict.fromkeys(labels))
        answer = await self._request("POST", f"/conversations/{conversation_id}/labels", "bot", json={"labels": wanted})
        stored = _payload_list(answer)
        return [str(label) for label in stored] if stored else wanted

    async def find_reply(
        self, conversation_id: int, marker: str, *, content: str | None, private: bool, since: datetime
    ) -> int | None:
        """The id of our message carrying `marker` (see REPLY_MARKER), or None when Chatwoot does not have it.

        A message matches when its content_attributes carry the marker, or, for a Chatwoot that drops
        unknown content_attributes, when it is an outgoing message with exactly `content` and the same
        privacy created since `since` (less a minute of clock skew). With the user token the newest
        messages are read (up to five pages back to `since`); with only the bot token (Chatwoot 4.15+) the
        conversation's last message is all that can be seen, so a message followed by others is missed.
        """
        cutoff = since.timestamp() - CLOCK_SKEW_S

        def ours(message: dict[str, Any]) -> bool:
            attrs = message.get("content_attributes")
            if isinstance(attrs, dict) and REPLY_MARKER in attrs:
                return bool(attrs[REPLY_MARKER] == marker)
            created = message.get("created_at")
            return (
                content is not None
                and message.get("message_type") in (1, "outgoing")
                and bool(message.get("private")) == private
                and str(message.get("content") or "").strip() == content.strip()
                and isinstance(created, int | float)
                and created >= cutoff
            )

        if not self._api_token:
            conversation = await self.get_conversation(conversation_id)
            last = conversation.get("last_non_activity_message")
            if isinstance(last, dict) and ours(last):
                return int(last["id"])
            return None
        before: int | None = None
        for _ in range(READ_BACK_PAGES):
            page = await self.list_messages(conversation_id, before=before)
            for message in reversed(page):
                if ours(message):
                    return int(message["id"])
            oldest = page[0] if page else None
            if oldest is None or not isinstance(oldest.get("id"), int) or (oldest.get("created_at") or 0) < cutoff:
                return None
            before = oldest["id"]
        return None

    # ---------------------------------------------------------------- user token

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[dict[str, Any]]:
        """Messages of a conversation, oldest first: the 20 newest, or 20 before / up to 100 after an id.

        REST messages carry an integer message_type (0 incoming, 1 outgoing, 2 activity, 3 template).
        """
        params = _without_none({"before": before, "after": after})
        answer = await self._request("GET", f"/conversations/{conversation_id}/messages", "user", params=params or None)
        return [_as_dict(item) for item in _payload_list(answer)]

    async def list_conversations(
        self, *, status: str = "resolved", page: int = 1, inbox_id: int | None = None
    ) -> list[dict[str, Any]]:
        """One page (25) of conversations in this status, all assignees, most recent activity first.

        Chatwoot answers {"data": {"meta": {...counts}, "payload": [conversation]}}; `id` is the display id,
        `last_activity_at` and `created_at` are Unix seconds, `meta.sender` is the contact."""
        params = _without_none({"status": status, "assignee_type": "all", "page": page, "inbox_id": inbox_id})
        answer = await self._request("GET", "/conversations", "user", params=params)
        data = answer.get("data", answer) if isinstance(answer, dict) else answer
        return [_as_dict(item) for item in _payload_list(data)]

    async def search_contacts(self, q: str) -> list[dict[str, Any]]:
        """Contacts whose name, email, phone or identifier contains `q` (reads up to 5 pages of 15)."""
        q = q.strip()
        if not q:
            return []  # Chatwoot answers 422 to a blank q (SPEC-GAPS 11)
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_CONTACT_PAGES + 1):
            answer = await self._request("GET", "/contacts/search", "user", params={"q": q, "page": page})
            batch = [_as_dict(item) for item in _payload_list(answer)]
            found.extend(batch)
            if not _has_more(answer, batch, len(found)):
                break
        return found

    async def filter_contacts(self, attribute_key: str, value: str) -> list[dict[str, Any]]:
        """Contacts whose attribute equals `value` (standard or custom attribute key)."""
        condition = {"attribute_key": attribute_key, "filter_operator": "equal_to", "values": [value]}
        body = {"payload": [condition]}
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_CONTACT_PAGES + 1):
            answer = await self._request("POST", "/contacts/filter", "user", params={"page": page}, json=body)
            batch = [_as_dict(item) for item in _payload_list(answer)]
            found.extend(batch)
            if not _has_more(answer, batch, len(found)):
                break
        return found

    async def create_contact(
        self,
        *,
        name: str | None,
        email: str | None = None,
        phone_number: str | None = None,
        inbox_id: int | None = None,
        custom_attributes: dict[str, Any] | None = None,
        identifier: str | None = None,
        additional_attributes: dict[str, Any] | None = None,
        source_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a contact (and its contact inbox when inbox_id is given); returns the contact.

        phone_number must already be E.164: Chatwoot's check is not anchored at the start.
        """
        body = _without_none(
            {
                "name": name,
                "email": email,
                "phone_number": phone_number,
                "identifier": identifier,
                "inbox_id": inbox_id,
                "source_id": source_id,
                "custom_attributes": custom_attributes,
                "additional_attributes": additional_attributes,
            }
        )
        answer = _as_dict(await self._request("POST", "/contacts", "user", json=body, idempotent=False))
        # The code answers {"payload": {"contact": ..., "contact_inbox": ...}} (SPEC-GAPS 9).
        payload = answer.get("payload", answer)
        if isinstance(payload, dict) and isinstance(payload.get("contact"), dict):
            return payload["contact"]
        return _as_dict(payload)

    async def update_contact(self, contact_id: int, **fields: Any) -> dict[str, Any]:
        """Update a contact; None values are left out. Chatwoot merges custom/additional attributes."""
        answer = await self._request("PUT", f"/contacts/{contact_id}", "user", json=_without_none(fields))
        return _payload_dict(answer)

    async def contact_conversations(self, contact_id: int) -> list[dict[str, Any]]:
        """The contact's conversations (each with `id` = display id, `status`, `inbox_id`...)."""
        answer = await self._request("GET", f"/contacts/{contact_id}/conversations", "user")
        return [_as_dict(item) for item in _payload_list(answer)]

    async def create_conversation(
        self, *, inbox_id: int, contact_id: int, source_id: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        """Open a conversation for a contact in an inbox; returns the conversation (`id` = display id).

        Chatwoot forces `pending` when the inbox has an active bot, whatever `status` says.
        """
        body = _without_none({"inbox_id": inbox_id, "contact_id": contact_id, "source_id": source_id, "status": status})
        return _as_dict(await self._request("POST", "/conversations", "user", json=body, idempotent=False))

    async def create_contact_inbox(
        self, contact_id: int, inbox_id: int, source_id: str | None = None
    ) -> dict[str, Any]:
        """Link a contact to an inbox; Chatwoot generates the source_id when none is given."""
        body = _without_none({"inbox_id": inbox_id, "source_id": source_id})
        return _as_dict(
            await self._request("POST", f"/contacts/{contact_id}/contact_inboxes", "user", json=body, idempotent=False)
        )

    # ------------------------------------------------------------------ plumbing

    def _token(self, kind: TokenKind, what: str) -> str:
        if kind == "bot":
            token = self._bot_token or self._api_token
            if not token:
                raise ChatwootConfigError(
                    f"{what} needs CHATWOOT_BOT_TOKEN (the Agent Bot's access token) "
                    "or CHATWOOT_API_TOKEN; neither is set"
                )
            return token
        if not self._api_token:
            raise ChatwootConfigError(
                f"{what} needs CHATWOOT_API_TOKEN (a Chatwoot agent's or admin's "
                "access token, from Profile settings): Chatwoot refuses this call "
                "to bot tokens"
            )
        return self._api_token

    async def _request(
        self, method: str, path: str, token: TokenKind, *, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        """Send one API call with retries; returns the decoded JSON body (None when empty)."""
        what = f"{method} {path}"
        headers = {"api_access_token": self._token(token, what), "Accept": "application/json"}
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout

        def should_retry(exc: BaseException) -> bool:
            return isinstance(exc, ChatwootRetryable) and (idempotent or exc.not_processed)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(should_retry),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(method, path, token, headers, kwargs)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(
        self, method: str, path: str, token: TokenKind, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> Any:
        what = f"Chatwoot {method} {path}"
        try:
            response = await self._http.request(method, self._root + path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ChatwootRetryable(
                f"{what}: could not connect ({type(exc).__name__}); check CHATWOOT_URL and that Chatwoot is up",
                not_processed=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise ChatwootRetryable(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ChatwootRetryable(f"{what}: transport error ({type(exc).__name__})") from exc
        status = response.status_code
        if 200 <= status < 300:
            if not response.content.strip():
                return None
            try:
                return response.json()
            except ValueError:
                raise ChatwootError(
                    f"{what} answered {status} with a body that is not JSON; "
                    "does CHATWOOT_URL point at Chatwoot's root?",
                    status,
                ) from None
        detail = self._scrub(response.text[:ERROR_BODY_CHARS].strip())
        message = f"{what} answered {status}: {detail}" if detail else f"{what} answered {status}"
        if status in (401, 403):
            bot = token == "bot" and self._bot_token is not None
            variable = "CHATWOOT_BOT_TOKEN" if bot else "CHATWOOT_API_TOKEN"
            raise ChatwootAuthError(
                f"{message} (sent the {variable} token; check it, and that this "
                "Chatwoot version lets that token call this endpoint)",
                status,
            )
        if status == 404:
            raise ChatwootNotFound(message, status)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            not_processed = status in (429, 503)
            raise ChatwootRetryable(message, status, retry_after=retry_after, not_processed=not_processed)
        if 400 <= status < 500:
            raise ChatwootBadRequest(message, status)
        raise ChatwootError(f"{message} (unexpected; a redirect means CHATWOOT_URL is not Chatwoot's root URL)", status)

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server gave one (capped), else exponential backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, ChatwootRetryable) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_retry_after)
        return float(min(self._backoff * 2 ** (state.attempt_number - 1), self._max_backoff))

    def _scrub(self, text: str) -> str:
        """Never let a token reach an exception message or a log line."""
        for token in (self._bot_token, self._api_token):
            if token:
                text = text.replace(token, "***")
        return text


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("Chatwoot call failed (attempt %d), retrying: %s", state.attempt_number, exc)


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _form_bool(value: bool) -> str:
    return "true" if value else "false"


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ChatwootError(f"Chatwoot answered {type(value).__name__} where an object was expected")
    return value


def _payload_dict(answer: Any) -> dict[str, Any]:
    """Chatwoot wraps many answers in {"payload": ...}; unwrap when present."""
    body = _as_dict(answer) if answer is not None else {}
    payload = body.get("payload", body)
    return _as_dict(payload)


def _payload_list(answer: Any) -> list[Any]:
    """The list in {"payload": [...]} (or a bare list); empty when the answer had no body."""
    if answer is None:
        return []
    payload = answer.get("payload") if isinstance(answer, dict) else answer
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise ChatwootError(f"Chatwoot answered {type(payload).__name__} where a list was expected")
    return payload


def _has_more(answer: Any, batch: list[dict[str, Any]], seen: int) -> bool:
    """Whether another page exists: search says meta.has_more, filter gives meta.count (the total)."""
    if not batch:
        return False
    meta = answer.get("meta") if isinstance(answer, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    if "has_more" in meta:
        return bool(meta["has_more"])
    count = meta.get("count")
    if isinstance(count, int):
        return seen < count
    return len(batch) >= SEARCH_PAGE_SIZE
