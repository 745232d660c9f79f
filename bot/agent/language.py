"""Which language to answer a guest in, and keeping it on the Chatwoot conversation and contact.

Per message: the language the message is written (or, for a voice note, spoken) in, when the detector is
sure; else what we last knew of this guest (the conversation's or the contact's `language` attribute);
else the widget's browser language; else the inbox's language. A detected language that differs from what
we knew (or, knowing nothing, from the inbox's language) is written to the conversation's custom
attributes (the bot token may) and, with a user token, to the contact's, so agents see it and the next
short "ok thanks" is answered in the same language.
"""

from __future__ import annotations

import logging
import re

from bot.context import JobContext
from bot.knowledge import detect_language
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import ChatwootError
from integrations.chatwoot.models import MessageEvent

log = logging.getLogger("sidecar.language")

SUPPORTED = ("en", "pt", "es", "de", "fr", "it", "nl")


def _short(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if code in SUPPORTED else None


def known_language(msg: MessageEvent) -> str | None:
    """What the payload says we knew: the conversation's attribute, the contact's, the browser's."""
    conv = msg.conversation
    sender = conv.meta.sender if conv.meta else None
    for value in (
        conv.custom_attributes.get("language"),
        sender.custom_attributes.get("language") if sender else None,
        msg.sender.custom_attributes.get("language") if msg.sender else None,
        conv.additional_attributes.get("browser_language"),
    ):
        found = _short(value)
        if found:
            return found
    return None


def long_enough(text: str) -> bool:
    """Whether a message says enough to tell its language: "ok", "merci!" or a booking code do not."""
    words = re.findall(r"[^\W\d_]{2,}", text)
    return len(words) >= 3 and sum(len(w) for w in words) >= 12


def pick_language(text: str, msg: MessageEvent, policy: InboxPolicy, heard: str | None = None) -> tuple[str, bool]:
    """(language, detected): the message's own language when sure, else the best we knew."""
    detected = _short(heard) or (_short(detect_language(text)) if long_enough(text) else None)
    if detected:
        return detected, True
    return known_language(msg) or _short(policy.language) or "en", False


async def guest_language(
    ctx: JobContext, msg: MessageEvent, text: str, policy: InboxPolicy, heard: str | None = None
) -> str:
    """The language to answer in; a newly detected one is remembered in Chatwoot (never failing the reply)."""
    language, detected = pick_language(text, msg, policy, heard)
    if detected and language != (known_language(msg) or _short(policy.language)):
        await remember(ctx, msg, language)
    return language


async def remember(ctx: JobContext, msg: MessageEvent, language: str) -> None:
    cw = ctx.chatwoot
    if cw is None:
        return
    try:
        attributes = {**msg.conversation.custom_attributes, "language": language}
        await cw.set_conversation_attributes(msg.conversation_id, attributes)
        if msg.contact_id is not None and ctx.settings.secret("chatwoot_api_token"):
            await cw.update_contact(msg.contact_id, custom_attributes={"language": language})
    except ChatwootError as exc:  # a label for agents: never worth failing the answer over
        log.info(
            "language not saved in Chatwoot", extra={"conversation_id": msg.conversation_id, "error": str(exc)[:200]}
        )
