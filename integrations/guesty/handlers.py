"""The I/O edge for Guesty events: mirror reservations and listings, then tell Chatwoot and the knowledge base.

Each handler parses the stored payload, fetches what the event lacks from the Open API (v2 events carry
only ids), and applies the pure plans from `transforms`. Idempotent by construction: rows are upserted
and only move forward (an event older than the stored `source_updated_at` is ignored); notes are planned
in the same transaction as the row change, as pending `bot_replies` rows keyed
`guesty:<reservation id>:<change>`, and posted from there, so a redelivered or retried event posts each
note at most once. Heavy imports (embedder, Qdrant) happen inside functions: the web process imports
HANDLERS too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from bot.context import Handler, JobContext
from bot.core import replies
from bot.core.ledger import StoredEvent
from bot.errors import Defer, PermanentError
from bot.knowledge import Embedder, KnowledgeStore, index_document, remove_document
from integrations.chatwoot.contacts import find_or_create_contact, normalize_email, normalize_phone
from integrations.chatwoot.readback import post_marked
from integrations.guesty.client import (
    GuestyAuthError,
    GuestyBadRequest,
    GuestyClient,
    GuestyConfigError,
    GuestyNotFound,
    GuestyRetryable,
    GuestyTokenBudgetExceeded,
    TokenStore,
)
from integrations.guesty.models import (
    GUEST_EVENTS,
    RESERVATION_EVENTS,
    Guest,
    GuestEvent,
    Listing,
    ListingEvent,
    Reservation,
    ReservationEvent,
)
from integrations.guesty.staleness import check_listing
from integrations.guesty.stays import instant, stay_stage, sync_contact
from integrations.guesty.transforms import (
    PropertyRow,
    ReservationRow,
    StoredReservation,
    is_stale,
    listing_document,
    listing_source,
    plan_notes,
    property_row,
    reservation_row,
    status_change,
)

log = logging.getLogger(__name__)

CLIENT_KEY = "guesty_client"  # JobContext.extras: one client (and token cache) per worker process
RESERVATION_LOCK_CLASS = 72_711  # two-integer advisory locks, apart from contacts' 72_701/72_702
LISTING_LOCK_CLASS = 72_712

M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------- context helpers


def guesty_client(ctx: JobContext) -> GuestyClient | None:
    """This process's Guesty client, or None when no OAuth credentials are configured."""
    client = ctx.extras.get(CLIENT_KEY)
    if client is None:
        settings = ctx.settings
        client_id, secret = settings.secret("guesty_client_id"), settings.secret("guesty_client_secret")
        if not (client_id and secret):
            return None
        client = GuestyClient(ctx.http, settings.guesty_api_url, client_id, secret, TokenStore(ctx.db))
        ctx.extras[CLIENT_KEY] = client
    assert isinstance(client, GuestyClient)
    return client


def _require_client(ctx: JobContext, why: str) -> GuestyClient:
    client = guesty_client(ctx)
    if client is None:
        raise PermanentError(
            f"{why}, and GUESTY_CLIENT_ID / GUESTY_CLIENT_SECRET are not set to fetch it from the Guesty Open API"
        )
    return client


@contextlib.contextmanager
def _guesty_failures() -> Iterator[None]:
    """Map Guesty failures to what the job layer does with them: wait, give up, or retry."""

    try:
        yield
    except GuestyTokenBudgetExceeded as exc:
        log.error("Guesty token budget exhausted: %s", exc)
        raise Defer(max((exc.retry_at - datetime.now(UTC)).total_seconds(), 60.0)) from exc
    except GuestyRetryable as exc:
        if exc.retry_after is not None:
            raise Defer(max(exc.retry_after, 1.0)) from exc
        raise
    except (GuestyAuthError, GuestyConfigError, GuestyBadRequest) as exc:
        raise PermanentError(str(exc)) from exc


def _parse(model: type[M], data: Any) -> M:

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PermanentError(f"unreadable Guesty {model.__name__}: {exc.errors()[:3]}") from None


def _as_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------- handlers


async def handle_reservation(ctx: JobContext, event: StoredEvent) -> str | None:
    return await process_reservation(ctx, event.payload, now=datetime.now(UTC))


async def handle_listing(ctx: JobContext, event: StoredEvent) -> str | None:
    return await process_listing(ctx, event.payload)


async def handle_listing_removed(ctx: JobContext, event: StoredEvent) -> str | None:
    return await process_listing_removed(ctx, event.payload)


async def handle_guest(ctx: JobContext, event: StoredEvent) -> str | None:
    return await process_guest(ctx, event.payload, now=datetime.now(UTC))


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(sorted(RESERVATION_EVENTS), handle_reservation),
    "listing.new": handle_listing,
    "listing.updated": handle_listing,
    "listing.removed": handle_listing_removed,
    **dict.fromkeys(sorted(GUEST_EVENTS), handle_guest),
}


# --------------------------------------------------------------------------- reservations


async def process_reservation(ctx: JobContext, payload: dict[str, Any], *, now: datetime) -> str | None:
    """Mirror one reservation event; returns "ignored" when it is older than what we hold."""

    parsed = _parse(ReservationEvent, payload)
    rid = parsed.reservation_id()
    if not rid:
        raise PermanentError(f"{parsed.event} without a reservation id")
    stamp = parsed.ordering_stamp()
    if is_stale(stamp, await _stored_reservation_stamp(ctx, rid)):
        return "ignored"
    res, raw = parsed.reservation, _as_dict(payload.get("reservation"))
    with _guesty_failures():
        if parsed.is_v2 or res is None or res.is_partial:
            client = _require_client(ctx, f"{parsed.event} for {rid} does not carry the whole reservation")
            try:
                raw = await client.get_reservation(rid)
            except GuestyNotFound:
                log.info("Guesty reservation %s no longer exists; event ignored", rid)
                return "ignored"
            res = _parse(Reservation, raw)
        if res.id is None:
            res = res.model_copy(update={"id": rid})
        if res.is_partial:
            raise PermanentError(f"Guesty reservation {rid} lacks its status, dates or listing")
        res = await _with_guest(ctx, res)
        prop = await _ensure_property(ctx, res)
    row = reservation_row(res, stamp=stamp, timezone=prop.timezone if prop else None, raw=raw)
    stored = await _store_reservation(ctx, row, prop, now=now, plan=ctx.chatwoot is not None)
    if not stored:
        return "ignored"
    if ctx.chatwoot is not None:
        await _tell_chatwoot(ctx, row, now=now)
    return None


async def _stored_reservation_stamp(ctx: JobContext, rid: str) -> datetime | None:
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT source_updated_at FROM reservations WHERE guesty_id = %s", (rid,))
        row = await cur.fetchone()
    return row[0] if row else None


async def _with_guest(ctx: JobContext, res: Reservation) -> Reservation:
    """Fetch the guest when the reservation names one but carries no way to reach them."""
    guest = res.guest
    if guest is not None and (guest.best_email or guest.best_phone):
        return res
    client = guesty_client(ctx)
    if client is None or not res.guest_id:
        return res
    try:
        fetched = _parse(Guest, await client.get_guest(res.guest_id))
    except GuestyNotFound:
        return res
    return res.model_copy(update={"guest": fetched})


@dataclass(frozen=True)
class PropertyInfo:
    code: str
    name: str
    timezone: str | None


async def _property_info(ctx: JobContext, listing_id: str) -> PropertyInfo | None:
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT code, name, timezone FROM properties WHERE guesty_listing_id = %s", (listing_id,)
        )
        row = await cur.fetchone()
    return PropertyInfo(*row) if row else None


async def _ensure_property(ctx: JobContext, res: Reservation) -> PropertyInfo | None:
    """The reservation's property, mirrored first when unknown: fetched whole (and indexed as
    knowledge) when the Open API is configured, else from the summary embedded in the reservation."""
    listing_id = res.effective_listing_id
    if not listing_id:
        return None
    found = await _property_info(ctx, listing_id)
    if found is not None:
        return found
    client = guesty_client(ctx)
    if client is not None:
        try:
            raw = await client.get_listing(listing_id)
        except GuestyNotFound:
            raw = None
        if raw is not None:
            listing = _parse(Listing, raw)
            await sync_listing(ctx, listing if listing.id else listing.model_copy(update={"id": listing_id}), raw)
            return await _property_info(ctx, listing_id)
    if res.listing is not None and (res.listing.title or res.listing.nickname):
        summary = res.listing if res.listing.id else res.listing.model_copy(update={"id": listing_id})
        await upsert_property(ctx, property_row(summary), only_if_missing=True)
        return await _property_info(ctx, listing_id)
    return None


# Shared with the history import (bot.migration), so both mirror a reservation by the same rules.
UPSERT_RESERVATION_SQL = """
INSERT INTO reservations (guesty_id, confirmation_code, property_code, listing_id, guest_id, status,
                          check_in_at, check_out_at, check_in_local, check_out_local, planned_arrival,
                          planned_departure, guest_name, guest_email, guest_phone, guests_count, channel,
                          currency, total_price, stay_stage, source_updated_at, raw, updated_at)
VALUES (%(guesty_id)s, %(confirmation_code)s, %(property_code)s, %(listing_id)s, %(guest_id)s, %(status)s,
        %(check_in_at)s, %(check_out_at)s, %(check_in_local)s, %(check_out_local)s, %(planned_arrival)s,
        %(planned_departure)s, %(guest_name)s, %(guest_email)s, %(guest_phone)s, %(guests_count)s, %(channel)s,
        %(currency)s, %(total_price)s, %(stay_stage)s, %(source_updated_at)s, %(raw)s, now())
ON CONFLICT (guesty_id) DO UPDATE SET
    confirmation_code = coalesce(EXCLUDED.confirmation_code, reservations.confirmation_code),
    property_code = coalesce(EXCLUDED.property_code, reservations.property_code),
    listing_id = coalesce(EXCLUDED.listing_id, reservations.listing_id),
    guest_id = coalesce(EXCLUDED.guest_id, reservations.guest_id),
    status = EXCLUDED.status,
    check_in_at = EXCLUDED.check_in_at, check_out_at = EXCLUDED.check_out_at,
    check_in_local = EXCLUDED.check_in_local, check_out_local = EXCLUDED.check_out_local,
    planned_arrival = coalesce(EXCLUDED.planned_arrival, reservations.planned_arrival),
    planned_departure = coalesce(EXCLUDED.planned_departure, reservations.planned_departure),
    guest_name = coalesce(EXCLUDED.guest_name, reservations.guest_name),
    guest_email = coalesce(EXCLUDED.guest_email, reservations.guest_email),
    guest_phone = coalesce(EXCLUDED.guest_phone, reservations.guest_phone),
    guests_count = coalesce(EXCLUDED.guests_count, reservations.guests_count),
    channel = coalesce(EXCLUDED.channel, reservations.channel),
    currency = coalesce(EXCLUDED.currency, reservations.currency),
    total_price = coalesce(EXCLUDED.total_price, reservations.total_price),
    stay_stage = EXCLUDED.stay_stage,
    source_updated_at = coalesce(EXCLUDED.source_updated_at, reservations.source_updated_at),
    raw = EXCLUDED.raw,
    updated_at = now()
"""

_STATUS_EVENT = """
INSERT INTO operational_events (source, event_type, dedupe_key, subject, payload, status, processed_at)
VALUES ('internal', 'reservation.status_changed', %s, %s, %s, 'done', now())
ON CONFLICT (dedupe_key) DO NOTHING
"""


async def _store_reservation(
    ctx: JobContext, row: ReservationRow, prop: PropertyInfo | None, *, now: datetime, plan: bool
) -> bool:
    """Upsert the row, record a status change and plan its notes, atomically; False when stale."""
    async with ctx.db.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (RESERVATION_LOCK_CLASS, row.guesty_id))
        cur = await conn.execute(
            "SELECT status, check_in_local, check_out_local, guests_count, source_updated_at"
            " FROM reservations WHERE guesty_id = %s FOR UPDATE",
            (row.guesty_id,),
        )
        found = await cur.fetchone()
        previous = StoredReservation(*found) if found else None
        if previous is not None and is_stale(row.source_updated_at, previous.source_updated_at):
            return False
        stage = stay_stage(
            row.status,
            instant(row.check_in_at, row.check_in_local),
            instant(row.check_out_at, row.check_out_local),
            now,
        )
        values = {
            **asdict(row),
            "property_code": prop.code if prop else None,
            "stay_stage": stage,
            "raw": Jsonb(row.raw),
        }
        await conn.execute(UPSERT_RESERVATION_SQL, values)
        change = status_change(previous, row)
        if change is not None:
            before, after = change
            stamp = row.source_updated_at.isoformat() if row.source_updated_at else "-"
            await conn.execute(
                _STATUS_EVENT,
                (
                    f"internal:reservation.status_changed:{row.guesty_id}:{before}:{after}:{stamp}",
                    f"reservation:{row.guesty_id}",
                    Jsonb(
                        {
                            "reservation_id": row.guesty_id,
                            "from": before,
                            "to": after,
                            "source_updated_at": row.source_updated_at.isoformat() if row.source_updated_at else None,
                        }
                    ),
                ),
            )
        for note in plan_notes(previous, row, prop.name if prop else None) if plan else []:
            await replies.plan(conn, note.reply_key, kind="note", content=note.text)
    return True


async def _tell_chatwoot(ctx: JobContext, row: ReservationRow, *, now: datetime) -> None:
    """Link the guest's contact, refresh its booking attributes and stage label, post the pending notes."""
    assert ctx.chatwoot is not None
    contact_id = await find_or_create_contact(
        ctx.db, ctx.chatwoot, phone=row.guest_phone, email=row.guest_email, name=row.guest_name
    )
    if contact_id is None:
        await _post_pending_notes(ctx, row.guesty_id, None)
        return
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE reservations SET chatwoot_contact_id = %s, updated_at = now()"
            " WHERE guesty_id = %s AND chatwoot_contact_id IS DISTINCT FROM %s",
            (contact_id, row.guesty_id, contact_id),
        )
    conversation_id = await sync_contact(ctx.db, ctx.chatwoot, contact_id, now)
    await _post_pending_notes(ctx, row.guesty_id, conversation_id)


async def _post_pending_notes(ctx: JobContext, reservation_id: str, conversation_id: int | None) -> int:
    """Post this reservation's planned notes on the conversation; without one they are skipped for good.

    Skipped notes end as status 'skipped'; a note whose posting failed keeps its
    conversation id and is tried again by the next run (the job retry), through replies.post_once.
    """
    assert ctx.chatwoot is not None
    chatwoot = ctx.chatwoot
    pending = await replies.planned(ctx.db, f"guesty:{reservation_id}:")
    if conversation_id is None:
        if pending:
            log.info("no Chatwoot conversation for reservation %s: %d note(s) skipped", reservation_id, len(pending))
            await replies.skip(ctx.db, [key for key, _ in pending])
        return 0
    await replies.attach(ctx.db, [key for key, _ in pending], conversation_id)
    posted = 0
    for key, content in pending:
        settle_s = ctx.settings.reply_settle_s
        if await post_marked(ctx.db, chatwoot, key, conversation_id, "note", content, private=True, settle_s=settle_s):
            posted += 1
    return posted


# --------------------------------------------------------------------------- listings


async def process_listing(ctx: JobContext, payload: dict[str, Any]) -> str | None:
    """Mirror a listing and (re)index its facts as that property's knowledge."""

    parsed = _parse(ListingEvent, payload)
    lid = parsed.listing_id()
    if not lid:
        raise PermanentError(f"{parsed.event} without a listing id")
    listing, raw = parsed.listing, _as_dict(payload.get("listing"))
    if listing is None or not (listing.title or listing.nickname):
        with _guesty_failures():
            client = _require_client(ctx, f"{parsed.event} for {lid} does not carry the listing")
            try:
                raw = await client.get_listing(lid)
            except GuestyNotFound:
                log.info("Guesty listing %s no longer exists; event ignored", lid)
                return "ignored"
        listing = _parse(Listing, raw)
    if listing.id is None:
        listing = listing.model_copy(update={"id": lid})
    return await sync_listing(ctx, listing, raw)


async def sync_listing(ctx: JobContext, listing: Listing, raw: dict[str, Any] | None) -> str | None:
    """Upsert the property and index its knowledge; "ignored" when the listing is older than ours."""
    code = await upsert_property(ctx, property_row(listing, raw))
    if code is None:
        return "ignored"
    document = listing_document(listing, code, raw)
    store, embedder = _knowledge(ctx)
    report = await asyncio.to_thread(
        index_document,
        document.source,
        document.sections,
        property_code=code,
        language=document.language,
        store=store,
        embedder=embedder,
        dsn=ctx.settings.database_dsn,
        title=document.title,
    )
    log.info(
        "listing indexed",
        extra={
            "listing_id": listing.id,
            "property_code": code,
            "added": report.added,
            "unchanged": report.unchanged,
            "deleted": report.deleted,
        },
    )
    try:
        await check_listing(ctx, code, listing)
    except Exception as exc:  # a report for the team: never worth failing the mirror over
        log.warning("stale-knowledge check failed", extra={"property_code": code, "error": str(exc)[:200]})
    return None


async def process_listing_removed(ctx: JobContext, payload: dict[str, Any]) -> str | None:
    """Deactivate the property and drop its listing knowledge (folder knowledge is left alone)."""
    import asyncio

    parsed = _parse(ListingEvent, payload)
    lid = parsed.listing_id()
    if not lid:
        raise PermanentError(f"{parsed.event} without a listing id")
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE properties SET active = false, updated_at = now() WHERE guesty_listing_id = %s", (lid,)
        )
    store, _ = _knowledge(ctx)
    deleted = await asyncio.to_thread(remove_document, listing_source(lid), store=store, dsn=ctx.settings.database_dsn)
    log.info("listing removed", extra={"listing_id": lid, "chunks_deleted": deleted})
    return None


def _knowledge(ctx: JobContext) -> tuple[KnowledgeStore, Embedder]:
    """The worker's warm store and embedder: the same ones the answering pipeline searches with."""
    found = ctx.retriever
    return found.store, found.embedder


# Shared with the history import (bot.migration): a listing becomes a property row by the same rules.
UPSERT_PROPERTY_SQL = """
INSERT INTO properties (code, guesty_listing_id, name, nickname, address, timezone, check_in_time,
                        check_out_time, active, raw, source_updated_at, updated_at)
VALUES (%(code)s, %(lid)s, %(name)s, %(nickname)s, %(address)s, %(timezone)s, %(in)s, %(out)s,
        %(active)s, %(raw)s, %(stamp)s, now())
ON CONFLICT (code) DO UPDATE SET
    guesty_listing_id = EXCLUDED.guesty_listing_id, name = EXCLUDED.name,
    nickname = coalesce(EXCLUDED.nickname, properties.nickname),
    address = coalesce(EXCLUDED.address, properties.address),
    timezone = coalesce(EXCLUDED.timezone, properties.timezone),
    check_in_time = coalesce(EXCLUDED.check_in_time, properties.check_in_time),
    check_out_time = coalesce(EXCLUDED.check_out_time, properties.check_out_time),
    active = EXCLUDED.active, raw = EXCLUDED.raw,
    source_updated_at = coalesce(EXCLUDED.source_updated_at, properties.source_updated_at),
    updated_at = now()
"""

# The code of a new property: a knowledge folder already named after the listing's nickname, if any.
PROPERTY_CODE_SQL = """
SELECT code FROM properties WHERE guesty_listing_id IS NULL AND lower(code) = lower(%(n)s)
UNION ALL
SELECT DISTINCT property_code FROM vector_references
 WHERE lower(property_code) = lower(%(n)s) AND source NOT LIKE 'guesty:%%'
LIMIT 1
"""


async def upsert_property(ctx: JobContext, prop: PropertyRow, *, only_if_missing: bool = False) -> str | None:
    """Insert or update a listing's property row; returns its code, or None when the update is stale.

    The code of a new property is the code of knowledge already written for it, when a knowledge folder
    is named after the listing's nickname (case-insensitive), else the Guesty listing id. An existing
    property keeps its code.
    """
    async with ctx.db.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LISTING_LOCK_CLASS, prop.guesty_listing_id)
        )
        cur = await conn.execute(
            "SELECT code, source_updated_at FROM properties WHERE guesty_listing_id = %s", (prop.guesty_listing_id,)
        )
        found = await cur.fetchone()
        if found is not None:
            code, stored = found
            if only_if_missing:
                return str(code)
            if is_stale(prop.source_updated_at, stored):
                return None
        else:
            code = await _new_property_code(conn, prop)
        await conn.execute(
            UPSERT_PROPERTY_SQL,
            {
                "code": code,
                "lid": prop.guesty_listing_id,
                "name": prop.name,
                "nickname": prop.nickname,
                "address": prop.address,
                "timezone": prop.timezone,
                "in": prop.check_in_time,
                "out": prop.check_out_time,
                "active": prop.active,
                "raw": Jsonb(prop.raw),
                "stamp": prop.source_updated_at,
            },
        )
        return str(code)


async def _new_property_code(conn: Any, prop: PropertyRow) -> str:
    if prop.nickname:
        cur = await conn.execute(PROPERTY_CODE_SQL, {"n": prop.nickname})
        row = await cur.fetchone()
        if row is not None:
            return str(row[0])
    return prop.guesty_listing_id


# --------------------------------------------------------------------------- guests


async def process_guest(ctx: JobContext, payload: dict[str, Any], *, now: datetime) -> str | None:
    """Carry a guest's new name, email or phone to their reservations and their Chatwoot contact."""
    parsed = _parse(GuestEvent, payload)
    guest = parsed.guest
    if guest is None or not guest.id:
        raise PermanentError(f"{parsed.event} without a guest id")
    email = normalize_email(guest.best_email)
    phone = normalize_phone(guest.best_phone) if guest.best_phone else None
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE reservations SET guest_name = coalesce(%s, guest_name), guest_email = coalesce(%s, guest_email),
                                    guest_phone = coalesce(%s, guest_phone), updated_at = now()
             WHERE guest_id = %s
            RETURNING guesty_id, guest_name, guest_email, guest_phone
            """,
            (guest.name, email, phone, guest.id),
        )
        rows = await cur.fetchall()
    if not rows:
        return "ignored"  # no booking yet; the reservation event will bring the guest
    if ctx.chatwoot is None:
        return None
    _, name, mail, tel = rows[0]
    contact_id = await find_or_create_contact(ctx.db, ctx.chatwoot, phone=tel, email=mail, name=name)
    if contact_id is None:
        return None
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE reservations SET chatwoot_contact_id = %s WHERE guest_id = %s", (contact_id, guest.id)
        )
    await sync_contact(ctx.db, ctx.chatwoot, contact_id, now)
    return None
