"""Which Chatwoot messages the bot answers: pure decisions, one place, tested to the letter.

Chatwoot sends an agent bot every message of its conversations, the bot's own replies, agents'
replies and private notes included, whatever the conversation's status. So the bot filters here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from config.inboxes import InboxPolicy
from integrations.chatwoot.models import MessageEvent

Action = Literal["answer", "human_took_over", "ignore"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def classify(msg: MessageEvent, policy: InboxPolicy) -> Decision:
    """Decide what a message_created means for the bot.

    Autopilot answers only in `pending` conversations (the agent-bot inbox state) that no person has
    taken over. Copilot suggests for guest messages in pending or open conversations, since its notes
    are for the agents who handle them. Shadow follows autopilot's rules: it shows what autopilot would
    have said, so switching to autopilot holds no surprise.
    """
    if msg.event != "message_created":
        return Decision("ignore", "not a new message")
    if msg.message_type in ("activity", "template"):
        return Decision("ignore", f"{msg.message_type} message")
    if msg.message_type == "outgoing":
        if msg.is_private:
            return Decision("ignore", "private note")
        if msg.sender_kind == "user":
            return Decision("human_took_over", "an agent replied")
        return Decision("ignore", f"outgoing message from {msg.sender_kind}")
    if msg.message_type != "incoming":
        return Decision("ignore", f"message type {msg.message_type}")
    if msg.is_private:
        return Decision("ignore", "private note")
    if not msg.is_from_contact:
        return Decision("ignore", f"incoming message from {msg.sender_kind}")
    if policy.mode == "off":
        return Decision("ignore", "inbox mode is off")
    status = msg.conversation.status
    if policy.mode in ("autopilot", "shadow"):
        if status != "pending":
            return Decision("ignore", f"conversation is {status}, not pending")
        if msg.conversation.assignee_type == "User":
            return Decision("ignore", "conversation is assigned to an agent")
    elif status not in ("pending", "open"):
        return Decision("ignore", f"conversation is {status}")
    if not msg.text.strip() and not msg.audio_attachments:
        return Decision("ignore", "no text to answer")
    return Decision("answer", policy.mode)
