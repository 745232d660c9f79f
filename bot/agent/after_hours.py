"""after_hours = "handoff": outside opening hours the bot says nothing and leaves the guest to the morning.

The hand-off is the usual keyed plan (bot.agent.answering.hand_off) without the public message: a note for
the agents, the hand-off label, and the conversation snoozed until opening time. Snoozed rather than open,
because open at night puts it in the agents' Open list and notifies whoever is on the app then; Chatwoot
reopens a snoozed conversation by itself at `snoozed_until` (and at once if the guest writes again), so it
lands in the morning queue with its note. A message that reads as an emergency is left open instead: an
urgent alert (bot.agent.urgent, already raised) must not be hidden until morning.

Applies where the bot would speak to the guest (autopilot and shadow); copilot's suggestions are private
notes that wait for the agents anyway, so copilot inboxes are unaffected.
"""

from __future__ import annotations

import time

from bot.agent import hours, state
from bot.agent.answering import Batch, hand_off, record_qa
from bot.answer.pipeline import AnswerOutcome
from bot.answer.types import GuestContext
from bot.answer.urgency import urgent_category
from bot.context import JobContext
from bot.errors import PermanentError
from config.inboxes import InboxPolicy
from integrations.chatwoot.models import MessageEvent

AFTER_HOURS = "after_hours"  # the hand-off reason kept in qa_records
AFTER_HOURS_NOTE = "Outside opening hours ({hours}, {days}, {zone}); nothing was said to the guest. {until}"


async def hand_to_morning(ctx: JobContext, msg: MessageEvent, policy: InboxPolicy) -> bool:
    """Hand the message to the morning queue when the inbox is closed and set to; True when it did."""
    if policy.after_hours != "handoff" or policy.mode not in ("autopilot", "shadow"):
        return False
    at = hours.now(ctx)
    if hours.is_open(policy, at):
        return False
    cw = ctx.chatwoot
    if cw is None:
        raise PermanentError("Chatwoot is not configured: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_BOT_TOKEN")
    started = time.perf_counter()
    opening = hours.next_opening(policy, at)
    if opening is None or urgent_category(msg.text) is not None:
        status, until = "open", "Left open: it may be urgent."
    else:
        status, until = f"snoozed:{int(opening.timestamp())}", f"Snoozed until {opening:%a %H:%M}."
    note = AFTER_HOURS_NOTE.format(hours=policy.hours, days=policy.days, zone=policy.timezone, until=until)
    question = msg.text.strip() or "(a voice note)"
    await hand_off(ctx, cw, msg, policy, note, question, tell_guest=False, status=status)
    await state.set_last_answered(ctx.db, msg.conversation_id, msg.id, msg.inbox_id, msg.contact_id)
    await record_qa(
        ctx,
        Batch([msg]),
        question,
        AnswerOutcome("handoff", note, AFTER_HOURS),
        policy,
        GuestContext(property_code=policy.property),
        "handed_off",
        started,
        0,
    )
    return True
