"""Agents talk to the bot in private notes: `/send`, `/send <edited text>`, `/teach [shared] [answer]`, `/approve`.

Chatwoot cannot keep a server-side draft for a bot, so a copilot suggestion is a private note; these
commands let an agent approve it from anywhere Chatwoot runs (its mobile app included) and teach the bot
what it did not know:

- `/send` posts the bot's last suggestion in this conversation to the guest; `/send <text>` posts the
  edited text instead and learns it as the answer to the guest's question. One suggestion is sent once,
  however many `/send` notes follow (the reply ledger key is the suggestion's).
- `/teach` learns the agent's last public reply as the answer to the guest's last question; `/teach
  <answer>` learns that text; `/teach shared …` makes it every property's knowledge.
- `/approve` approves what was taught here when LEARN_REQUIRE_APPROVAL asks for a second step.
The bot confirms each in a private note saying what it learned.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.agent import state
from bot.agent.answering import parse_message
from bot.agent.learning import sync_learned
from bot.agent.posting import post_text
from bot.context import JobContext
from bot.core import learned
from bot.core.learned import LearnedAnswer
from bot.errors import PermanentError
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import ChatwootClient
from integrations.chatwoot.models import MessageEvent

log = logging.getLogger("sidecar.commands")

Name = Literal["send", "teach", "approve"]
_COMMAND = re.compile(r"^\s*/(send|teach|approve)\b[ \t]*(.*)$", re.IGNORECASE | re.DOTALL)

NOTHING_TO_SEND = "🤖 /send: there is no suggestion of mine in this conversation to send."
ALREADY_SENT = "🤖 /send: that suggestion was sent already."
NOTHING_TO_TEACH = (
    "🤖 /teach: I found no question and answer to learn. Write `/teach <answer>` after the guest's "
    "question, or reply to the guest first."
)
LEARNED_NOTE = "📚 Learned ({scope}), #{id}:\nQ: {question}\nA: {answer}\nRemove with `sidecar learned remove {id}`."
PENDING_NOTE = "📚 Taught ({scope}), #{id}, waiting for an `/approve` note before the bot uses it."
NOTHING_TO_APPROVE = "🤖 /approve: nothing taught here is waiting for approval."


@dataclass(frozen=True)
class Command:
    name: Name
    text: str = ""
    shared: bool = False


def parse_command(text: str) -> Command | None:
    """The command in an agent's private note, or None when the note is ordinary."""
    match = _COMMAND.match(text or "")
    if match is None:
        return None
    name: Name = match.group(1).lower()  # type: ignore[assignment]
    rest = match.group(2).strip()
    shared = False
    if name == "teach":
        first, _, remainder = rest.partition(" ")
        if first.lower() == "shared":
            shared, rest = True, remainder.strip()
    return Command(name, rest, shared)


def is_agent_command(msg: MessageEvent) -> bool:
    """A private note by a person that starts with one of our commands."""
    return (
        msg.message_type == "outgoing"
        and msg.is_private
        and msg.sender_kind == "user"
        and parse_command(msg.text) is not None
    )


async def on_agent_command(ctx: JobContext, msg: MessageEvent, policy: InboxPolicy) -> str:
    """Carry out one command note; every post is keyed by the note, so a redelivery does nothing twice."""
    cw = ctx.chatwoot
    if cw is None:
        raise PermanentError("Chatwoot is not configured: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_BOT_TOKEN")
    command = parse_command(msg.text)
    if command is None:
        return "ignored"
    agent = msg.sender.id if msg.sender else None
    if command.name == "send":
        await _send(ctx, cw, msg, command, agent)
    elif command.name == "teach":
        await _teach(ctx, cw, msg, policy, command, agent)
    else:
        await _approve(ctx, cw, msg)
    return "done"


async def _note(ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, key: str, text: str) -> None:
    await post_text(ctx, cw, f"{key}:{msg.id}", msg.conversation_id, "note", text, private=True)


async def _send(ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, command: Command, agent: int | None) -> None:
    conv = msg.conversation_id
    suggestion = await learned.latest_suggestion(ctx.db, conv)
    if suggestion is None:
        await _note(ctx, cw, msg, "command-reply", NOTHING_TO_SEND)
        return
    text = command.text or suggestion.answer
    posted = await post_text(ctx, cw, f"approved:{suggestion.qa_id}", conv, "reply", text, private=False)
    if not posted:
        await _note(ctx, cw, msg, "command-reply", ALREADY_SENT)
        return
    await learned.record_approval(
        ctx.db,
        suggestion,
        conversation_id=conv,
        note_message_id=msg.id,
        approved_by=agent,
        sent_text=text,
        at=datetime.now(UTC),
    )
    if command.text and command.text.strip() != suggestion.answer.strip():
        pair = await learned.teach(
            ctx.db,
            source_message_id=msg.id,
            conversation_id=conv,
            question=suggestion.question,
            answer=command.text,
            property_code=suggestion.property_code,
            shared=False,
            taught_by=agent,
            approved=not ctx.settings.learn_require_approval,
        )
        await _learned(ctx, cw, msg, pair)


async def _teach(
    ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, policy: InboxPolicy, command: Command, agent: int | None
) -> None:
    question, reply = await _last_exchange(ctx, msg)
    answer = command.text or reply
    if not question or not answer:
        await _note(ctx, cw, msg, "command-reply", NOTHING_TO_TEACH)
        return
    property_code = await learned.conversation_property(ctx.db, msg.conversation_id) or policy.property
    pair = await learned.teach(
        ctx.db,
        source_message_id=msg.id,
        conversation_id=msg.conversation_id,
        question=question,
        answer=answer,
        property_code=property_code,
        shared=command.shared,
        taught_by=agent,
        approved=not ctx.settings.learn_require_approval,
    )
    await _learned(ctx, cw, msg, pair)


async def _approve(ctx: JobContext, cw: ChatwootClient, msg: MessageEvent) -> None:
    pairs = await learned.approve_pending(ctx.db, msg.conversation_id)
    if not pairs:
        await _note(ctx, cw, msg, "command-reply", NOTHING_TO_APPROVE)
        return
    await sync_learned(ctx)
    for pair in pairs:
        await _note(ctx, cw, msg, f"learned-{pair.id}", _describe(LEARNED_NOTE, pair))


async def _learned(ctx: JobContext, cw: ChatwootClient, msg: MessageEvent, pair: LearnedAnswer | None) -> None:
    if pair is None:  # this note taught already (a redelivery); its confirmation is in the ledger
        return
    if pair.status == "approved":
        await sync_learned(ctx)
        await _note(ctx, cw, msg, "learned", _describe(LEARNED_NOTE, pair))
    else:
        await _note(ctx, cw, msg, "learned", _describe(PENDING_NOTE, pair))


def _describe(template: str, pair: LearnedAnswer) -> str:
    scope = "shared" if pair.shared else (pair.property_code or "shared: no property known")
    return template.format(scope=scope, id=pair.id, question=pair.question, answer=pair.answer)


async def _last_exchange(ctx: JobContext, msg: MessageEvent) -> tuple[str, str]:
    """The guest's last question before this note, and the agent's last public reply after that question."""
    question, reply = "", ""
    for payload in await state.message_payloads(ctx.db, f"conversation:{msg.conversation_id}"):
        other = _message(payload)
        if other is None or other.id >= msg.id or other.is_private or not other.text.strip():
            continue
        if other.message_type == "incoming" and other.is_from_contact:
            question, reply = other.text.strip(), ""
        elif other.message_type == "outgoing" and other.sender_kind == "user":
            reply = other.text.strip()
    return question, reply


def _message(payload: dict[str, Any]) -> MessageEvent | None:
    try:
        return parse_message(payload)
    except PermanentError:
        return None
