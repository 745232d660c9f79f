"""Urgent alerts: a guest reports an emergency, so people must see it now, whatever the inbox's mode.

In every mode, copilot, off and shadow included, a message (or a voice note's transcript) that bot.answer.urgency
recognises sets the conversation's priority to urgent, adds URGENT_LABEL, assigns URGENT_TEAM_ID when
set, leaves a private note saying why, and POSTs a JSON summary to URGENT_WEBHOOK_URL (an on-call pager)
when set. It is one keyed step in the reply ledger (`urgent:<message id>`), so a redelivered message
alerts once; the priority, label and team calls are idempotent, so a retry after a partial failure
completes them, and the note has its own key (`urgent-note:<message id>`, read back after a lost
outcome), so it is left once. The pager may be called twice: a second page beats a missed one.
"""

from __future__ import annotations

import logging

from bot.agent.posting import post_text
from bot.agent.shadow import unshadowed
from bot.answer.urgency import urgent_category
from bot.context import JobContext
from bot.core import replies
from integrations.chatwoot.models import MessageEvent

log = logging.getLogger("sidecar.urgent")

URGENT_NOTE = "🚨 Urgent ({category}): the guest may need help now. Priority set to urgent.\n\nGuest wrote:\n{quote}"


async def raise_if_urgent(ctx: JobContext, msg: MessageEvent, text: str | None = None) -> str | None:
    """Alert people when the guest's message reports an emergency; returns the category, or None."""
    category = urgent_category(text if text is not None else msg.text)
    cw = unshadowed(ctx.chatwoot)  # people are alerted in shadow mode too
    if category is None or cw is None:
        return category
    conv = msg.conversation_id
    quote = "\n".join("> " + line for line in (text if text is not None else msg.text).splitlines())
    note = URGENT_NOTE.format(category=category.replace("_", " "), quote=quote)
    settings = ctx.settings

    async def alert() -> None:
        await cw.toggle_priority(conv, "urgent")
        await cw.add_labels(conv, [settings.urgent_label])
        if settings.urgent_team_id is not None:
            await cw.assign_team(conv, settings.urgent_team_id)
        # The note is the one part that is not idempotent: its own key, read back after a lost outcome.
        await post_text(ctx, cw, f"urgent-note:{msg.id}", conv, "note", note, private=True)
        if settings.urgent_webhook_url:
            response = await ctx.http.post(
                settings.urgent_webhook_url,
                json={
                    "event": "urgent",
                    "category": category,
                    "conversation_id": conv,
                    "inbox_id": msg.inbox_id,
                    "contact_id": msg.contact_id,
                    "message_id": msg.id,
                    "url": f"{settings.chatwoot_url}/app/accounts/{settings.chatwoot_account_id}/conversations/{conv}",
                },
                timeout=10,
            )
            response.raise_for_status()

    await replies.post_once(
        ctx.db, f"urgent:{msg.id}", conversation_id=conv, kind="action", content=f"urgent {category}", post=alert
    )
    log.warning("urgent message", extra={"conversation_id": conv, "category": category})
    return category
