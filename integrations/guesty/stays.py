"""Stays: the bookings a sender may be, their stage, and what a booking lets its guest be told.

The agent (bot.agent.entitlement) decides *who* is writing; this module answers the booking questions it
asks: which bookings hold exactly this phone or email, which one a confirmation code names, which ones a
Chatwoot contact points at (only a claim: a widget visitor types their own email), and what one booking
unlocks for its verified guest. `access_properties` (door codes, Wi-Fi passwords) come only from a
CONFIRMED stay whose window [check-in − N days, check-out] contains now; `private_properties` (the exact
street address) from any live booking (not canceled, declined, expired or a mere inquiry) whose check-out
is at most PRIVATE_DAYS_AFTER days ago, however far ahead its check-in (a guest booking weeks ahead plans
the trip from the address). Nothing here ever unions several bookings: one booking, one property.
`refresh_stay_stages()` is the periodic job that moves reservations through inquiry → pre-stay →
during-stay → post-stay and keeps the matching label on the contact's latest conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg_pool import AsyncConnectionPool

from bot.answer.types import GuestContext, GuestFacts
from bot.context import JobContext
from integrations.chatwoot.client import ChatwootClient, ChatwootError
from integrations.guesty.models import CANCELED_STATUSES
from integrations.guesty.transforms import contact_attributes

log = logging.getLogger(__name__)

STAGE_LABELS = ("inquiry", "pre-stay", "during-stay", "post-stay")
INQUIRY_STATUSES = frozenset({"inquiry"})
ACCESS_STATUSES = frozenset({"confirmed"})
# A week after check-out a guest may still ask where they stayed (lost property, an invoice); after that
# the address is no longer theirs to be told.
PRIVATE_DAYS_AFTER = 7


def instant(at: datetime | None, local: date | None) -> datetime | None:
    """The UTC moment of a check-in/out, or midnight UTC of its local date when only that is known."""
    return at or (datetime.combine(local, time(0), UTC) if local else None)


def stay_stage(status: str | None, check_in: datetime | None, check_out: datetime | None, now: datetime) -> str | None:
    """The stage label for a reservation at `now`; None for a canceled one or one without dates."""
    status = (status or "").lower()
    if status in CANCELED_STATUSES:
        return None
    if status in INQUIRY_STATUSES:
        return "inquiry"
    if check_in is None or check_out is None:
        return None
    if now < check_in:
        return "pre-stay"
    if now < check_out:
        return "during-stay"
    return "post-stay"


def access_window_open(
    status: str | None, check_in: datetime | None, check_out: datetime | None, now: datetime, days_before: int
) -> bool:
    """Whether a guest may be told this property's access details now."""
    if (status or "").lower() not in ACCESS_STATUSES or check_in is None or check_out is None:
        return False
    return check_in - timedelta(days=days_before) <= now <= check_out


def private_window_open(
    status: str | None, check_out: datetime | None, now: datetime, days_after: int = PRIVATE_DAYS_AFTER
) -> bool:
    """Whether a guest may be told this property's exact address now: a live booking, not long over."""
    status = (status or "").lower()
    if not status or status in CANCELED_STATUSES or status in INQUIRY_STATUSES or check_out is None:
        return False
    return now <= check_out + timedelta(days=days_after)


@dataclass(frozen=True)
class StayFacts:
    """One reservation as the bot may talk about it (local dates and times at the property)."""

    guesty_id: str
    confirmation_code: str | None
    status: str
    guest_name: str | None
    property_code: str | None
    property_name: str | None
    check_in_date: date | None
    check_out_date: date | None
    check_in_time: str | None
    check_out_time: str | None
    guests_count: int | None
    check_in_at: datetime | None
    check_out_at: datetime | None
    stay_stage: str | None = None
    chatwoot_contact_id: int | None = None
    timezone: str | None = None  # the property's IANA zone, for "today" at the property
    guest_id: str | None = None  # Guesty's guest id: two bookings with the same one are the same person

    @property
    def starts(self) -> datetime | None:
        return instant(self.check_in_at, self.check_in_date)

    @property
    def ends(self) -> datetime | None:
        return instant(self.check_out_at, self.check_out_date)

    @property
    def code(self) -> str:
        """How people name the booking: its confirmation code, else Guesty's id."""
        return self.confirmation_code or self.guesty_id

    @property
    def guest_key(self) -> str | None:
        """Who the booking is for: Guesty's guest id, else the guest's name folded."""
        if self.guest_id:
            return f"id:{self.guest_id}"
        return f"name:{' '.join(self.guest_name.casefold().split())}" if self.guest_name else None

    def lines(self) -> list[str]:
        """The facts as short lines for a prompt (nothing secret: access details live in knowledge)."""
        out = [f"Reservation: {self.confirmation_code or self.guesty_id} ({self.status})"]
        if self.guest_name:
            out.append(f"Guest: {self.guest_name}")
        if self.property_name or self.property_code:
            out.append(f"Property: {self.property_name or self.property_code}")
        if self.check_in_date:
            out.append(
                f"Check-in: {self.check_in_date.isoformat()}"
                + (f" from {self.check_in_time}" if self.check_in_time else "")
            )
        if self.check_out_date:
            out.append(
                f"Check-out: {self.check_out_date.isoformat()}"
                + (f" by {self.check_out_time}" if self.check_out_time else "")
            )
        if self.guests_count is not None:
            out.append(f"Guests: {self.guests_count}")
        return out


def pick_reservation(stays: Sequence[StayFacts], now: datetime) -> StayFacts | None:
    """The booking a conversation is about: the current stay, else the next one, else the latest past one.

    Live bookings win over canceled ones; a canceled booking is only picked when there is nothing else
    (so the bot can still say it was canceled).
    """
    live = [s for s in stays if s.status.lower() not in CANCELED_STATUSES]
    for pool in (live, list(stays)):
        dated = [s for s in pool if s.starts is not None and s.ends is not None]
        current = [s for s in dated if s.starts <= now < s.ends]  # type: ignore[operator]
        if current:
            return max(current, key=lambda s: s.starts)  # type: ignore[arg-type,return-value]
        upcoming = [s for s in dated if s.starts > now]  # type: ignore[operator]
        if upcoming:
            return min(upcoming, key=lambda s: s.starts)  # type: ignore[arg-type,return-value]
        if dated:
            return max(dated, key=lambda s: s.ends)  # type: ignore[arg-type,return-value]
        if pool:
            return pool[0]
    return None


_STAY_COLUMNS = """
SELECT r.guesty_id, r.confirmation_code, r.status, r.guest_name, r.property_code,
       coalesce(p.name, r.property_code), r.check_in_local, r.check_out_local,
       coalesce(r.planned_arrival, p.check_in_time), coalesce(r.planned_departure, p.check_out_time),
       r.guests_count, r.check_in_at, r.check_out_at, r.stay_stage, r.chatwoot_contact_id, p.timezone, r.guest_id
  FROM reservations r
  LEFT JOIN properties p ON p.code = r.property_code
"""

_CONTACT_WHERE = """
 WHERE r.chatwoot_contact_id = %(contact)s
    OR lower(r.guest_email) IN (SELECT substr(key, 7) FROM contact_links
                                 WHERE chatwoot_contact_id = %(contact)s AND key LIKE 'email:%%')
    OR r.guest_phone IN (SELECT substr(key, 7) FROM contact_links
                          WHERE chatwoot_contact_id = %(contact)s AND key LIKE 'phone:%%')
"""
_ORDER = " ORDER BY r.check_in_at NULLS LAST, r.id"


def _facts(row: Sequence[Any]) -> StayFacts:
    return StayFacts(
        guesty_id=row[0],
        confirmation_code=row[1],
        status=row[2],
        guest_name=row[3],
        property_code=row[4],
        property_name=row[5],
        check_in_date=row[6],
        check_out_date=row[7],
        check_in_time=row[8],
        check_out_time=row[9],
        guests_count=row[10],
        check_in_at=row[11],
        check_out_at=row[12],
        stay_stage=row[13],
        chatwoot_contact_id=row[14],
        timezone=row[15],
        guest_id=row[16],
    )


async def _select(db: AsyncConnectionPool, where: str, params: dict[str, Any]) -> list[StayFacts]:
    async with db.connection() as conn:
        cur = await conn.execute(_STAY_COLUMNS + where + _ORDER, params)
        return [_facts(row) for row in await cur.fetchall()]


async def contact_stays(db: AsyncConnectionPool, contact_id: int) -> list[StayFacts]:
    """Every reservation a Chatwoot contact points at: linked to it, or sharing an email/phone cached for it.

    A pointer, not a proof: Chatwoot merges a widget visitor who typed a guest's email into that guest's
    contact, so these bookings are only *claimed* by whoever writes as this contact."""
    return await _select(db, _CONTACT_WHERE, {"contact": contact_id})


async def stays_holding(
    db: AsyncConnectionPool, *, phone: str | None = None, email: str | None = None
) -> list[StayFacts]:
    """The reservations whose own guest phone (exact E.164) or email (case-insensitive) is this one."""
    if not phone and not email:
        return []
    return await _select(
        db,
        " WHERE r.guest_phone = %(phone)s OR lower(r.guest_email) = %(email)s",
        {"phone": phone, "email": email.lower() if email else None},
    )


async def stays_by_codes(db: AsyncConnectionPool, codes: Sequence[str]) -> list[StayFacts]:
    """The reservations whose confirmation code is one of `codes` (compared upper-case, without - and spaces)."""
    if not codes:
        return []
    return await _select(
        db,
        " WHERE upper(translate(r.confirmation_code, '- ', '')) = ANY(%(codes)s)",
        {"codes": [code_key(c) for c in codes]},
    )


async def stay_by_id(db: AsyncConnectionPool, guesty_id: str) -> StayFacts | None:
    found = await _select(db, " WHERE r.guesty_id = %(id)s", {"id": guesty_id})
    return found[0] if found else None


def code_key(code: str) -> str:
    """A confirmation code as compared: upper-case, no dashes or spaces ("hm-4zx 8" → "HM4ZX8")."""
    return code.upper().replace("-", "").replace(" ", "")


def live_stays(stays: Sequence[StayFacts], now: datetime) -> list[StayFacts]:
    """The bookings that still mean something now: not canceled or a mere inquiry, not long over."""
    return [s for s in stays if private_window_open(s.status, s.ends, now)]


def one_guest(stays: Sequence[StayFacts]) -> bool:
    """Whether these bookings are all for one person (same Guesty guest, else same name).

    A phone or email shared by two guests' bookings (a family, an agency) says nothing about which of
    them is writing, so it verifies neither."""
    if len(stays) <= 1:
        return True
    keys = {s.guest_key for s in stays}
    return len(keys) == 1 and None not in keys


def local_today(now: datetime, timezone: str | None) -> date:
    try:
        return now.astimezone(ZoneInfo(timezone)).date() if timezone else now.date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.date()


def booking_context(
    stay: StayFacts, *, verified: bool, now: datetime, window_days_before: int, verified_by: str | None = None
) -> GuestContext:
    """What one booking gives the person writing, in the answering pipeline's own types.

    Verified: the booking's facts (dates, name) and, when its windows are open, its property's access
    details and exact address. Not verified: only which property to search (open knowledge), no facts."""
    booking = stay.code
    if not verified:
        return GuestContext(property_code=stay.property_code, identity="claimed", booking=booking)
    facts = GuestFacts(
        guest_name=stay.guest_name,
        property_name=stay.property_name,
        check_in_date=stay.check_in_date,
        check_in_time=stay.check_in_time,
        check_out_date=stay.check_out_date,
        check_out_time=stay.check_out_time,
        status=stay.status,
        guests_count=stay.guests_count,
        today=local_today(now, stay.timezone),
    )
    prop = stay.property_code
    access = prop is not None and access_window_open(stay.status, stay.starts, stay.ends, now, window_days_before)
    private = prop is not None and private_window_open(stay.status, stay.ends, now)
    return GuestContext(
        property_code=prop,
        facts=facts,
        access_properties=frozenset({prop}) if access and prop else frozenset(),
        private_properties=frozenset({prop}) if private and prop else frozenset(),
        identity="verified",
        booking=booking,
        verified_by=verified_by,
    )


# --------------------------------------------------------------------------- Chatwoot labels


def latest_conversation(conversations: Sequence[dict[str, Any]]) -> int | None:
    """The display id of the contact's most recently active conversation."""
    best: tuple[float, int] | None = None
    for conv in conversations:
        try:
            conv_id = int(conv["id"])
        except (KeyError, TypeError, ValueError):
            continue
        activity = conv.get("last_activity_at") or conv.get("timestamp") or conv.get("created_at") or 0
        key = (float(activity) if isinstance(activity, int | float) else 0.0, conv_id)
        if best is None or key > best:
            best = key
    return best[1] if best else None


def relabel(current: Sequence[str], stage: str | None) -> list[str]:
    """The label set with exactly one stage label (or none), every other label kept in order."""
    kept = [label for label in current if label not in STAGE_LABELS]
    return [*kept, stage] if stage else kept


async def apply_stage_label(chatwoot: ChatwootClient, conversation_id: int, stage: str | None) -> bool:
    """Swap the stage label on a conversation; True when labels were changed."""
    current = await chatwoot.get_labels(conversation_id)
    wanted = relabel(current, stage)
    if set(wanted) == set(current):
        return False
    # Chatwoot's POST replaces the whole set (add_labels only unions), so the full list goes out here.
    # ChatwootClient has no public "set labels" call yet; this is the same request add_labels sends.
    await chatwoot.set_labels(conversation_id, wanted)
    return True


async def sync_contact(db: AsyncConnectionPool, chatwoot: ChatwootClient, contact_id: int, now: datetime) -> int | None:
    """Bring a contact's booking attributes and stage label up to date; returns its latest conversation."""
    picked = pick_reservation(await contact_stays(db, contact_id), now)
    if picked is not None:
        await chatwoot.update_contact(
            contact_id,
            custom_attributes=contact_attributes(
                code=picked.confirmation_code or picked.guesty_id,
                property_name=picked.property_name,
                check_in=picked.check_in_date,
                check_out=picked.check_out_date,
                status=picked.status,
                guests_count=picked.guests_count,
            ),
        )
    conversation_id = latest_conversation(await chatwoot.contact_conversations(contact_id))
    if conversation_id is not None and picked is not None:
        await apply_stage_label(chatwoot, conversation_id, stay_stage(picked.status, picked.starts, picked.ends, now))
    return conversation_id


@dataclass(frozen=True)
class StageReport:
    changed: int = 0
    contacts_labeled: int = 0
    failed_contacts: tuple[int, ...] = ()


_OPEN_STAGES_SQL = """
SELECT id, status, check_in_at, check_out_at, check_in_local, check_out_local, stay_stage, chatwoot_contact_id
  FROM reservations
 WHERE NOT (stay_stage = 'post-stay' AND NOT (lower(status) = ANY(%(canceled)s)))
   AND NOT (stay_stage IS NULL AND lower(status) = ANY(%(canceled)s))
"""


async def refresh_stay_stages(ctx: JobContext, *, now: datetime | None = None) -> StageReport:
    """Periodic job: recompute every open reservation's stage and relabel the contacts whose stage moved.

    A contact's rows are only updated after its label was set, so a Chatwoot outage is retried on the
    next run; one failing contact does not stop the others.
    """
    now = now or datetime.now(UTC)
    async with ctx.db.connection() as conn:
        cur = await conn.execute(_OPEN_STAGES_SQL, {"canceled": list(CANCELED_STATUSES)})
        rows = await cur.fetchall()
    moved: dict[int | None, list[tuple[int, str | None, str | None]]] = {}
    for rid, status, in_at, out_at, in_local, out_local, stored, contact_id in rows:
        stage = stay_stage(status, instant(in_at, in_local), instant(out_at, out_local), now)
        if stage != stored:
            moved.setdefault(contact_id, []).append((rid, stored, stage))
    changed, labeled, failed = 0, 0, []
    for contact_id, updates in moved.items():
        if contact_id is not None and ctx.chatwoot is not None:
            try:
                await sync_contact(ctx.db, ctx.chatwoot, int(contact_id), now)
                labeled += 1
            except ChatwootError as exc:
                log.warning("stay stage label failed", extra={"contact_id": contact_id, "error": str(exc)[:300]})
                failed.append(int(contact_id))
                continue
        async with ctx.db.connection() as conn:
            for rid, stored, stage in updates:
                cur = await conn.execute(
                    "UPDATE reservations SET stay_stage = %s, updated_at = now() "
                    "WHERE id = %s AND stay_stage IS NOT DISTINCT FROM %s",
                    (stage, rid, stored),
                )
                changed += cur.rowcount
    return StageReport(changed=changed, contacts_labeled=labeled, failed_contacts=tuple(failed))
