"""Past conversations for `sidecar replay`, and the guest questions a person answered in them.

Two sources give the same shape: Chatwoot's resolved conversations read with the user token (GET
/conversations?status=resolved, 25 a page, most recent activity first, then each one's messages paged back
with `before`), and the archive of the history import (archived_conversations / archived_messages,
bot.migration), for tests and offline use. `questions` is pure: a question is a guest's message (or a burst
of them) whose next public message is a human agent's reply; a burst the bot answered is not one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from bot.answer.types import Turn
from integrations.chatwoot.client import ChatwootClient
from integrations.guesty.stays import StayFacts, contact_stays, stays_holding

Role = Literal["guest", "agent", "bot"]
MAX_CONVERSATION_PAGES = 400  # 10,000 conversations
MAX_MESSAGE_PAGES = 50  # 1,000 messages of one conversation
MESSAGES_PAGE = 20  # Chatwoot's MessageFinder returns 20 per page
HISTORY_TURNS = 10


@dataclass(frozen=True)
class PastMessage:
    id: str
    role: Role
    text: str
    at: datetime | None


@dataclass(frozen=True)
class PastConversation:
    id: str
    inbox_id: int | None
    messages: Sequence[PastMessage]
    contact_id: int | None = None  # Chatwoot's contact
    email: str | None = None  # the archive's contact
    phone: str | None = None


@dataclass(frozen=True)
class PastQuestion:
    conversation: PastConversation
    text: str
    at: datetime | None
    human: str
    turns: Sequence[Turn] = field(default_factory=tuple)


def questions(conv: PastConversation) -> list[PastQuestion]:
    """Each guest burst followed by a human agent's public reply (consecutive agent messages joined)."""
    found: list[PastQuestion] = []
    burst: list[PastMessage] = []
    reply: list[PastMessage] = []
    turns: list[Turn] = []

    def close() -> None:
        if burst and reply:
            found.append(
                PastQuestion(
                    conv,
                    "\n".join(m.text for m in burst),
                    burst[-1].at,
                    "\n".join(m.text for m in reply),
                    tuple(turns[-HISTORY_TURNS:]),
                )
            )
        for m in burst + reply:
            turns.append(Turn("guest" if m.role == "guest" else "host", m.text))
        burst.clear()
        reply.clear()

    for message in conv.messages:
        if not message.text.strip():
            continue
        if message.role == "guest":
            if reply:
                close()
            burst.append(message)
        elif message.role == "agent" and burst:
            reply.append(message)
        else:  # the bot answered the burst, or a person wrote first: no question to replay
            if reply:
                close()
            turns.extend(Turn("guest", m.text) for m in burst)
            burst.clear()
            turns.append(Turn("host", message.text))
    close()
    return found


def stay_at(stays: Sequence[StayFacts], at: datetime | None) -> StayFacts | None:
    """The booking whose dates cover the moment of the question (the latest-starting one if several)."""
    if at is None:
        return None
    covering = [s for s in stays if s.starts is not None and s.ends is not None and s.starts <= at <= s.ends]
    return max(covering, key=lambda s: s.starts or at) if covering else None


async def stays_of(db: AsyncConnectionPool, conv: PastConversation) -> list[StayFacts]:
    """The bookings the conversation's contact points at (Chatwoot contact, else the archive's email/phone)."""
    if conv.contact_id is not None:
        return await contact_stays(db, conv.contact_id)
    if conv.email or conv.phone:
        return await stays_holding(db, phone=conv.phone, email=conv.email)
    return []


# ------------------------------------------------------------------------------------------ Chatwoot


def _when(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def chatwoot_role(message: dict[str, Any]) -> Role | None:
    """guest for a public incoming message, agent for a person's public reply, bot for any other sender's."""
    if message.get("private"):
        return None
    kind = message.get("message_type")
    if kind in (0, "incoming"):
        return "guest"
    if kind not in (1, "outgoing"):
        return None  # activity, templates (greetings, CSAT)
    sender = message.get("sender") if isinstance(message.get("sender"), dict) else {}
    person = message.get("sender_type") == "User" or (sender or {}).get("type") == "user"
    return "agent" if person else "bot"


def chatwoot_conversation(conv: dict[str, Any], messages: Sequence[dict[str, Any]]) -> PastConversation:
    """A Chatwoot conversation and its messages (REST form) as a PastConversation."""
    meta = conv.get("meta") if isinstance(conv.get("meta"), dict) else {}
    sender = (meta or {}).get("sender") or {}
    past = []
    for m in sorted(messages, key=lambda m: (m.get("created_at") or 0, m.get("id") or 0)):
        role = chatwoot_role(m)
        if role is not None:
            past.append(
                PastMessage(str(m.get("id")), role, str(m.get("content") or "").strip(), _when(m.get("created_at")))
            )
    contact = sender.get("id") if isinstance(sender, dict) else None
    return PastConversation(
        str(conv.get("id")), conv.get("inbox_id"), tuple(past), contact_id=contact if isinstance(contact, int) else None
    )


async def all_messages(cw: ChatwootClient, conversation_id: int) -> list[dict[str, Any]]:
    """Every message of a conversation, paged back 20 at a time from the newest."""
    found: list[dict[str, Any]] = []
    before: int | None = None
    for _ in range(MAX_MESSAGE_PAGES):
        page = await cw.list_messages(conversation_id, before=before)
        ids = [m["id"] for m in page if isinstance(m.get("id"), int)]
        if not ids:
            break
        found = page + found
        if len(page) < MESSAGES_PAGE:  # a short page is the oldest one
            break
        before = min(ids)
    return found


async def from_chatwoot(
    cw: ChatwootClient, *, since: datetime, inbox_id: int | None = None, limit: int | None = None
) -> AsyncIterator[PastConversation]:
    """Resolved conversations active since `since` (newest first), with their messages."""
    seen = 0
    for page in range(1, MAX_CONVERSATION_PAGES + 1):
        batch = await cw.list_conversations(status="resolved", page=page, inbox_id=inbox_id)
        if not batch:
            return
        for conv in batch:
            active = _when(conv.get("last_activity_at")) or _when(conv.get("created_at"))
            if active is not None and active < since:
                return  # sorted by last activity: everything after is older
            if inbox_id is not None and conv.get("inbox_id") != inbox_id:
                continue
            yield chatwoot_conversation(conv, await all_messages(cw, int(conv["id"])))
            seen += 1
            if limit is not None and seen >= limit:
                return


# ------------------------------------------------------------------------------------------- archive

ARCHIVE_ROLES: dict[str, Role] = {"guest": "guest", "agent": "agent"}


async def from_archive(
    db: AsyncConnectionPool, *, since: datetime, limit: int | None = None
) -> AsyncIterator[PastConversation]:
    """Archived conversations closed (or last written) since `since`, oldest first."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT room_id, contact_email, contact_phone FROM archived_conversations"
            " WHERE coalesce(closed_at, last_message_at, started_at) >= %s"
            " ORDER BY coalesce(closed_at, last_message_at, started_at), room_id LIMIT %s",
            (since, limit),
        )
        rooms = await cur.fetchall()
    for room_id, email, phone in rooms:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT message_id, author_kind, coalesce(body, ''), sent_at FROM archived_messages"
                " WHERE room_id = %s ORDER BY sent_at NULLS LAST, message_id",
                (room_id,),
            )
            rows = await cur.fetchall()
        messages = tuple(
            PastMessage(mid, ARCHIVE_ROLES[kind], body.strip(), at)
            for mid, kind, body, at in rows
            if kind in ARCHIVE_ROLES
        )
        yield PastConversation(room_id, None, messages, email=email, phone=phone)
