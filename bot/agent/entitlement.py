"""One door for every guest message, typed or spoken: who is writing, and what they may be told.

`admit()` is the only place a GuestContext is made for a message. The text path (bot.agent.answering) and
the voice path (bot.agent.voice) both call it before retrieval, and retrieval builds its Qdrant filter
from that context, so gated text never reaches a prompt unless `admit()` allowed it.

Identity levels (bot.agent.identity says what a channel vouches for):
- verified: the channel vouches for the booking's own phone or email (WhatsApp/SMS number, email sender,
  widget identity validation) and no other guest's live booking shares it; or this conversation passed
  the check (confirmation code + last name, bot.agent.verification). Only a verified identity gets the
  booking's facts, and its property's access details and exact address while the booking's windows are
  open. A channel-vouched identity is re-read from Chatwoot first, so a contact changed or merged since
  the delivery is not trusted stale.
- claimed: the contact's own email or phone (or a link the booking mirror made) points at a booking. The
  booking's property scopes the open knowledge; nothing else.
- unknown: anything else; the inbox's property, open knowledge.

With neither a booking's property nor an inbox's, a property the guest names (bot.agent.properties)
scopes the open knowledge; when the name fits several, the bot asks which one (stop "which") first.

Asked for gated details without a verified identity (autopilot), the bot asks for the check instead of
answering; failures are counted and lock the check (then a person takes over). Every refusal and every
release is written to the access log (bot.agent.access_log), and each release leaves a note for agents.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from bot.agent import access_log, properties
from bot.agent import verification_store as store
from bot.agent.identity import SenderView, claimed, sender_of, vouched
from bot.agent.intent import FACTS, Fact, gated_facts
from bot.agent.verification import ASK, HELP, RETRY, VERIFIED, VERIFIED_BY, code_candidates, language_for, names_booking
from bot.answer.types import GuestContext, IdentityLevel
from bot.context import JobContext
from bot.knowledge import RetrievedChunk
from config.inboxes import InboxPolicy
from integrations.chatwoot.client import ChatwootClient, ChatwootError
from integrations.chatwoot.models import ConversationMeta, MessageEvent
from integrations.guesty.stays import (
    StayFacts,
    booking_context,
    contact_stays,
    live_stays,
    one_guest,
    pick_reservation,
    stay_by_id,
    stays_by_codes,
    stays_holding,
)

log = logging.getLogger("sidecar.trust")

Stop = Literal["verify", "verified", "locked", "which"]
LOCKED_NOTE = (
    "Identity check locked: {max} wrong confirmation codes or last names within {hours:g} h for this "
    "contact or booking. The bot gives no door code or exact address until that period ends; please "
    "check the guest's identity yourself before sharing them."
)


@dataclass(frozen=True)
class Identity:
    """Who is writing: the level, the one booking it points at, what vouched for it, or why not."""

    level: IdentityLevel
    stay: StayFacts | None = None
    how: str | None = None
    why_not: str = "identity_not_verified"
    reread: bool = False  # vouched by the channel: read the contact again before anything is released


@dataclass(frozen=True)
class Admission:
    """What the bot may use to answer one message, or why it stops to run the identity check first."""

    guest: GuestContext
    question: str  # what to answer: the message, or the question that waited for the check
    asked: frozenset[Fact]
    stop: Stop | None = None  # verify: ask for the check; verified: only thank; locked: hand off; which: ask
    reply: str | None = None  # to the guest, in their language: the request, the thanks, "which one?"
    note: str | None = None  # for agents, when the check is locked
    search: str | None = None  # what retrieval searches, when not the question: it without a property's names


async def admit(
    ctx: JobContext,
    msg: MessageEvent,
    policy: InboxPolicy,
    question: str,
    *,
    language: str | None = None,
    now: datetime | None = None,
) -> Admission:
    """The GuestContext for this message (text or transcript), after the identity check it may carry."""
    now = now or datetime.now(UTC)
    lang = language_for(language, _browser_language(msg), policy.language)
    asked = gated_facts(question)
    sender = sender_of(msg)
    identity = await identify(ctx, sender, msg.conversation_id, now)
    reply: str | None = None
    if identity.level != "verified" and policy.mode == "autopilot":
        checked = await _check(ctx, msg, question, identity, asked, lang, now)
        if isinstance(checked, Admission):
            return checked
        if checked is not None:
            identity, waiting = checked
            if waiting is None and not asked and "?" not in question:  # nothing but the two factors
                guest = context_for(identity, policy, ctx, now)
                return Admission(guest, question, asked, stop="verified", reply=f"{VERIFIED[lang]} {HELP[lang]}")
            if waiting is not None:
                question = waiting.question
                asked = gated_facts(question) | frozenset(f for f in FACTS if f in waiting.facts)
            reply = VERIFIED[lang]
    if identity.reread:
        identity = await confirm(ctx, msg, sender, identity, now)
    guest = context_for(identity, policy, ctx, now)
    named = await properties.resolve(ctx, msg, question) if guest.property_code is None else properties.Named()
    search: str | None = None
    if named.code is not None:  # open knowledge of the property the guest names; no gate opens by naming
        guest = replace(guest, property_code=named.code)
        if named.question is not None:
            # The model answers the guest's own words; retrieval searches them without the property's name,
            # which would pull every guide's introduction ahead of the passage that answers.
            question, search = named.question, named.search
            asked = gated_facts(question)
    refused = [fact for fact in FACTS if fact in asked and not allows(guest, fact)]
    if not refused:
        if named.choices:  # autopilot asks the guest; copilot suggests the question to the agent
            await properties.park(ctx, msg, question, named.choices)
            which = properties.which(
                named.choices,
                language_for(language, properties.guess_language(question), _browser_language(msg), policy.language),
            )
            return Admission(guest, question, asked, stop="which", reply=f"{reply} {which}" if reply else which)
        return Admission(guest, question, asked, reply=reply, search=search)
    unverified = identity.level != "verified"
    locked = unverified and await _locked(ctx, msg, [identity.stay.guesty_id] if identity.stay else [], now)
    for fact in refused:
        why = "verification_locked" if locked else identity.why_not if unverified else _closed(fact)
        await _refuse(ctx, msg, identity, fact, why)
    if not unverified or policy.mode != "autopilot":
        return Admission(guest, question, asked, reply=reply)
    if locked:
        return Admission(guest, question, asked, stop="locked", note=_locked_note(ctx))
    await store.ask(ctx.db, msg.conversation_id, msg.contact_id, question, refused)
    return Admission(guest, question, asked, stop="verify", reply=ASK[lang])


# ------------------------------------------------------------------------------------------- identity


async def identify(ctx: JobContext, sender: SenderView, conversation_id: int, now: datetime) -> Identity:
    """The identity behind a message: a booking this conversation proved, else what the sender shows."""
    proven = await store.proven_booking(ctx.db, conversation_id)
    if proven is not None:
        stay = await stay_by_id(ctx.db, proven)
        if stay is not None:
            return Identity("verified", stay, VERIFIED_BY)
    return await identify_sender(ctx, sender, now)


async def identify_sender(ctx: JobContext, sender: SenderView, now: datetime) -> Identity:
    """Verified through what the channel vouches for, claimed through what the contact holds, else unknown."""
    sure = vouched(sender)
    if sure:
        held = await stays_holding(ctx.db, phone=sure.phone, email=sure.email)
        if held and one_guest(live_stays(held, now)):
            return Identity("verified", pick_reservation(held, now), sure.how, reread=True)
        if held:  # one phone or email, several guests' bookings: it proves none of them
            return Identity("claimed", why_not="shared_by_several_bookings")
    said = claimed(sender)
    pointed = await stays_holding(ctx.db, phone=said.phone, email=said.email)
    if sender.contact_id is not None:
        known = {s.guesty_id for s in pointed}
        pointed += [s for s in await contact_stays(ctx.db, sender.contact_id) if s.guesty_id not in known]
    if not pointed:
        return Identity("unknown")
    stay = pick_reservation(pointed, now) if one_guest(live_stays(pointed, now)) else None
    return Identity("claimed", stay)


async def confirm(
    ctx: JobContext, msg: MessageEvent, sender: SenderView, identity: Identity, now: datetime
) -> Identity:
    """Read the conversation's contact again and keep the identity only if it still vouches for the booking."""
    fresh = await reread(ctx.chatwoot, msg.conversation_id, sender)
    if fresh is None:
        log.info("contact not re-read; nothing released", extra={"conversation_id": msg.conversation_id})
        return Identity("claimed", identity.stay, why_not="contact_not_rereadable")
    again = await identify_sender(ctx, fresh, now)
    if (
        again.level == "verified"
        and again.stay is not None
        and identity.stay is not None
        and again.stay.guesty_id == identity.stay.guesty_id
    ):
        return replace(again, reread=False)
    return Identity("claimed", identity.stay, why_not="contact_changed")


async def reread(cw: ChatwootClient | None, conversation_id: int, before: SenderView) -> SenderView | None:
    """The conversation's contact as Chatwoot has it now (after edits and merges), or None if unreadable.

    GET conversation is allowed to the bot token from Chatwoot 4.15; its meta carries the current contact
    and the contact inbox's hmac_verified. The contact inbox's source id does not change, so it is kept."""
    if cw is None:
        return None
    try:
        conv = await cw.get_conversation(conversation_id)
        meta = ConversationMeta.model_validate(conv.get("meta") or {})
    except (ChatwootError, ValidationError) as exc:
        log.info("conversation re-read failed", extra={"conversation_id": conversation_id, "error": str(exc)[:200]})
        return None
    if meta.sender is None or meta.sender.id is None:
        return None
    return SenderView(
        contact_id=meta.sender.id,
        channel=meta.channel or before.channel,
        email=meta.sender.email,
        phone_number=meta.sender.phone_number,
        source_id=before.source_id,
        hmac_verified=bool(meta.hmac_verified),
    )


def context_for(identity: Identity, policy: InboxPolicy, ctx: JobContext, now: datetime) -> GuestContext:
    """The identity's booking in the answering pipeline's terms; no booking: the inbox's property."""
    if identity.stay is None:
        return GuestContext(property_code=policy.property, identity=identity.level)
    found = booking_context(
        identity.stay,
        verified=identity.level == "verified",
        now=now,
        window_days_before=ctx.settings.access_window_days_before,
        verified_by=identity.how,
    )
    return found if found.property_code else replace(found, property_code=policy.property)


def allows(guest: GuestContext, fact: Fact) -> bool:
    """Whether the gate opens for this kind of detail of the guest's property."""
    prop = guest.property_code
    if prop is None:
        return False
    if fact == "access":
        return prop in guest.access_properties
    return prop in guest.private_properties or prop in guest.access_properties


# ------------------------------------------------------------------------------------------- the check


async def _check(
    ctx: JobContext, msg: MessageEvent, text: str, identity: Identity, asked: frozenset[Fact], lang: str, now: datetime
) -> Admission | tuple[Identity, store.Pending | None] | None:
    """A message carrying a confirmation code: prove the conversation, count a failure, or refuse (locked).

    An attempt is a message with something shaped like a code while the bot waits for the check, or a
    message naming a real code at any time (so a known code's last name cannot be guessed for free).
    Returns None when the message is no attempt, the proven identity (and the waiting question), or the
    Admission that stops the answer."""
    candidates = code_candidates(text)
    if not candidates:
        return None
    waiting = await store.pending(ctx.db, msg.conversation_id)
    matches = await stays_by_codes(ctx.db, candidates)
    if waiting is None and not matches:
        return None
    facts: list[Fact] = [f for f in FACTS if f in (waiting.facts if waiting else ())] or sorted(asked) or ["access"]
    booked = [s.guesty_id for s in matches]
    if await _locked(ctx, msg, booked, now):
        for fact in facts:
            await _refuse(
                ctx, msg, replace(identity, stay=matches[0] if matches else identity.stay), fact, "verification_locked"
            )
        return Admission(GuestContext(identity=identity.level), text, asked, stop="locked", note=_locked_note(ctx))
    hit = next((s for s in matches if names_booking(s.guest_name, text)), None)
    await store.record_check(
        ctx.db,
        message_id=msg.id,
        conversation_id=msg.conversation_id,
        contact_id=msg.contact_id,
        guesty_id=(hit or matches[0]).guesty_id if matches else None,
        succeeded=hit is not None,
    )
    if hit is not None:
        await store.prove(ctx.db, msg.conversation_id, msg.contact_id, hit.guesty_id, msg.id)
        log.info("conversation verified for a booking", extra={"conversation_id": msg.conversation_id})
        return Identity("verified", hit, VERIFIED_BY), waiting
    tried = replace(identity, stay=matches[0] if matches else identity.stay)
    for fact in facts:
        await _refuse(ctx, msg, tried, fact, "verification_failed")
    if await _locked(ctx, msg, booked, now):
        return Admission(GuestContext(identity=identity.level), text, asked, stop="locked", note=_locked_note(ctx))
    if waiting is None:
        await store.ask(ctx.db, msg.conversation_id, msg.contact_id, text, facts)
    return Admission(GuestContext(identity=identity.level), text, asked, stop="verify", reply=RETRY[lang])


async def _locked(ctx: JobContext, msg: MessageEvent, guesty_ids: Sequence[str], now: datetime) -> bool:
    settings = ctx.settings
    return await store.locked(
        ctx.db,
        contact_id=msg.contact_id,
        conversation_id=msg.conversation_id,
        guesty_ids=guesty_ids,
        max_attempts=settings.verify_max_attempts,
        window=timedelta(hours=settings.verify_window_hours),
        now=now,
    )


def _locked_note(ctx: JobContext) -> str:
    return LOCKED_NOTE.format(max=ctx.settings.verify_max_attempts, hours=ctx.settings.verify_window_hours)


def _closed(fact: Fact) -> str:
    """Why a verified guest is refused: the booking's window for that detail is not open."""
    return "access_window_closed" if fact == "access" else "address_window_closed"


def _browser_language(msg: MessageEvent) -> str | None:
    value = msg.conversation.additional_attributes.get("browser_language")
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------------------------------- the trail


async def _refuse(ctx: JobContext, msg: MessageEvent, identity: Identity, fact: Fact, reason: str) -> None:
    await access_log.record(
        ctx.db,
        action="refusal",
        fact=fact,
        conversation_id=msg.conversation_id,
        message_id=msg.id,
        contact_id=msg.contact_id,
        booking=identity.stay.code if identity.stay else None,
        identity=identity.level,
        reason=reason,
    )


def released(chunks: Sequence[RetrievedChunk]) -> list[Fact]:
    """The kinds of gated detail among the chunks an answer was made from."""
    found: list[Fact] = []
    if any(c.is_access for c in chunks):
        found.append("access")
    if any(c.is_private and not c.is_access for c in chunks):
        found.append("address")
    return found


async def record_releases(
    ctx: JobContext,
    cw: ChatwootClient,
    msg: MessageEvent,
    admission: Admission,
    chunks: Sequence[RetrievedChunk],
    *,
    suggested: bool,
) -> list[Fact]:
    """Log each kind of gated detail an answer (or suggestion) carried, and tell the agents in a note."""
    guest = admission.guest
    facts = released(chunks)
    if guest.identity != "verified" or guest.booking is None:
        return []  # the gate opens for verified identities only; nothing gated can be among the chunks
    how = guest.verified_by or "an unknown route"
    for fact in facts:
        await access_log.record(
            ctx.db,
            action="release",
            fact=fact,
            conversation_id=msg.conversation_id,
            message_id=msg.id,
            contact_id=msg.contact_id,
            booking=guest.booking,
            identity="verified",
            reason=f"verified by {how}; booking window open",
        )
        await access_log.note_release(
            ctx.db,
            cw,
            conversation_id=msg.conversation_id,
            message_id=msg.id,
            fact=fact,
            booking=guest.booking,
            how=how,
            suggested=suggested,
        )
    return facts
