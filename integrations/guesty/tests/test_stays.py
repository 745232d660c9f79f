"""Stay stages, the booking a contact is about, who may see access details, and the stage-label job."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from bot.answer.types import GuestContext, GuestFacts
from bot.context import JobContext
from integrations.guesty.stays import (
    PRIVATE_DAYS_AFTER,
    StayFacts,
    access_window_open,
    booking_context,
    contact_stays,
    latest_conversation,
    one_guest,
    pick_reservation,
    private_window_open,
    refresh_stay_stages,
    relabel,
    stay_by_id,
    stay_stage,
    stays_by_codes,
    stays_holding,
)
from integrations.guesty.tests.conftest import FakeChatwoot

CHECK_IN = datetime(2026, 2, 13, 15, 0, tzinfo=UTC)
CHECK_OUT = datetime(2026, 2, 17, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        ("confirmed", datetime(2026, 2, 1, tzinfo=UTC), "pre-stay"),
        ("confirmed", CHECK_IN - timedelta(seconds=1), "pre-stay"),
        ("confirmed", CHECK_IN, "during-stay"),
        ("confirmed", CHECK_OUT - timedelta(seconds=1), "during-stay"),
        ("confirmed", CHECK_OUT, "post-stay"),
        ("reserved", datetime(2026, 2, 15, tzinfo=UTC), "during-stay"),
        ("inquiry", datetime(2026, 2, 15, tzinfo=UTC), "inquiry"),
        ("canceled", datetime(2026, 2, 1, tzinfo=UTC), None),
        ("declined", datetime(2026, 2, 1, tzinfo=UTC), None),
        ("Confirmed", datetime(2026, 3, 1, tzinfo=UTC), "post-stay"),
    ],
)
def test_stay_stage(status: str, now: datetime, expected: str | None) -> None:
    assert stay_stage(status, CHECK_IN, CHECK_OUT, now) == expected


def test_stay_stage_without_dates_is_none() -> None:
    assert stay_stage("confirmed", None, CHECK_OUT, CHECK_IN) is None


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        ("confirmed", CHECK_IN - timedelta(days=2), True),  # the first moment of a 2-day window
        ("confirmed", CHECK_IN - timedelta(days=2, seconds=1), False),
        ("confirmed", CHECK_IN - timedelta(days=7), False),  # a week early
        ("confirmed", CHECK_OUT, True),
        ("confirmed", CHECK_OUT + timedelta(seconds=1), False),
        ("canceled", CHECK_IN, False),
        ("inquiry", CHECK_IN, False),
        ("reserved", CHECK_IN, False),  # not confirmed yet
    ],
)
def test_access_window(status: str, now: datetime, expected: bool) -> None:
    assert access_window_open(status, CHECK_IN, CHECK_OUT, now, 2) is expected


def stay(gid: str, status: str, check_in: datetime, nights: int = 3, code: str = "lis") -> StayFacts:
    return StayFacts(
        guesty_id=gid,
        confirmation_code=None,
        status=status,
        guest_name=None,
        property_code=code,
        property_name=None,
        check_in_date=check_in.date(),
        check_out_date=None,
        check_in_time=None,
        check_out_time=None,
        guests_count=None,
        check_in_at=check_in,
        check_out_at=check_in + timedelta(days=nights),
    )


def test_pick_prefers_current_then_next_then_latest_past() -> None:
    now = datetime(2026, 5, 10, tzinfo=UTC)
    past = stay("past", "confirmed", datetime(2026, 3, 1, tzinfo=UTC))
    older = stay("older", "confirmed", datetime(2025, 3, 1, tzinfo=UTC))
    current = stay("current", "confirmed", datetime(2026, 5, 9, tzinfo=UTC))
    soon = stay("soon", "confirmed", datetime(2026, 6, 1, tzinfo=UTC))
    later = stay("later", "confirmed", datetime(2026, 8, 1, tzinfo=UTC))
    assert pick_reservation([past, later, current, soon], now) is current
    assert pick_reservation([past, later, soon, older], now) is soon
    assert pick_reservation([older, past], now) is past
    assert pick_reservation([], now) is None


def test_pick_passes_over_canceled_bookings_unless_nothing_else() -> None:
    now = datetime(2026, 5, 10, tzinfo=UTC)
    canceled_now = stay("c", "canceled", datetime(2026, 5, 9, tzinfo=UTC))
    past = stay("p", "confirmed", datetime(2026, 3, 1, tzinfo=UTC))
    assert pick_reservation([canceled_now, past], now) is past
    assert pick_reservation([canceled_now], now) is canceled_now


def test_latest_conversation_and_relabel() -> None:
    assert (
        latest_conversation(
            [
                {"id": 5, "last_activity_at": 200},
                {"id": 9, "last_activity_at": 100},
                {"id": 7, "last_activity_at": 200},
                {"no": "id"},
            ]
        )
        == 7
    )
    assert latest_conversation([]) is None
    assert relabel(["vip", "pre-stay", "late-arrival"], "during-stay") == ["vip", "late-arrival", "during-stay"]
    assert relabel(["post-stay"], None) == []


# --------------------------------------------------------------------------- with the database


async def add_property(pool: AsyncConnectionPool, code: str, name: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO properties (code, name, check_in_time, check_out_time) VALUES (%s, %s, '15:00', '10:00')",
            (code, name),
        )


async def add_reservation(
    pool: AsyncConnectionPool,
    gid: str,
    *,
    contact: int | None,
    status: str = "confirmed",
    property_code: str = "lis-alfama",
    check_in: datetime = CHECK_IN,
    nights: int = 4,
    email: str | None = None,
    phone: str | None = None,
    stage: str | None = None,
    **extra: Any,
) -> None:
    check_out = check_in + timedelta(days=nights) - timedelta(hours=5)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO properties (code, name) VALUES (%s, %s) ON CONFLICT (code) DO NOTHING",
            (property_code, property_code),
        )
        await conn.execute(
            "INSERT INTO reservations (guesty_id, confirmation_code, property_code, status, check_in_at, check_out_at,"
            " check_in_local, check_out_local, guest_name, guest_email, guest_phone, guests_count,"
            " chatwoot_contact_id, stay_stage, planned_arrival)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'Oliver Bennett', %s, %s, 2, %s, %s, %s)",
            (
                gid,
                f"CODE-{gid}",
                property_code,
                status,
                check_in,
                check_out,
                check_in.date(),
                check_out.date(),
                email,
                phone,
                contact,
                stage,
                extra.get("planned_arrival"),
            ),
        )


INSIDE = CHECK_IN - timedelta(days=1)


async def verified(pool: AsyncConnectionPool, gid: str, now: datetime) -> Any:
    stay = await stay_by_id(pool, gid)
    assert stay is not None
    return booking_context(stay, verified=True, now=now, window_days_before=2, verified_by="WhatsApp number")


async def test_verified_guest_inside_the_window_gets_access(pool: AsyncConnectionPool) -> None:
    await add_property(pool, "lis-alfama", "Sunny 2BR in Alfama")
    await add_reservation(pool, "r1", contact=501, planned_arrival="17:30")
    context = await verified(pool, "r1", INSIDE)
    assert context.access_properties == frozenset({"lis-alfama"})
    assert (context.property_code, context.identity, context.booking) == ("lis-alfama", "verified", "CODE-r1")
    stay = await stay_by_id(pool, "r1")
    assert stay is not None
    assert stay.lines() == [
        "Reservation: CODE-r1 (confirmed)",
        "Guest: Oliver Bennett",
        "Property: Sunny 2BR in Alfama",
        "Check-in: 2026-02-13 from 17:30",
        "Check-out: 2026-02-17 by 10:00",
        "Guests: 2",
    ]
    assert (stay.check_in_date, stay.check_out_date) == (date(2026, 2, 13), date(2026, 2, 17))


async def test_a_week_early_there_is_no_access_yet(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=501)
    context = await verified(pool, "r1", CHECK_IN - timedelta(days=7))
    assert context.access_properties == frozenset()
    assert context.property_code == "lis-alfama"  # the bot still knows which property the guest is asking about


async def test_canceled_booking_gives_no_access(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=501, status="canceled")
    context = await verified(pool, "r1", INSIDE)
    assert context.access_properties == frozenset() and context.private_properties == frozenset()
    assert context.facts is not None and context.facts.status == "canceled"


async def test_a_claimed_booking_scopes_knowledge_but_unlocks_nothing(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=501)
    stay = await stay_by_id(pool, "r1")
    assert stay is not None
    context = booking_context(stay, verified=False, now=INSIDE, window_days_before=2)
    assert context == GuestContext(property_code="lis-alfama", identity="claimed", booking="CODE-r1")


async def test_bookings_holding_a_phone_or_email_match_exactly(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=None, email="oliver.bennett@example.co.uk", phone="+447700900123")
    await add_reservation(pool, "r2", contact=None, email="someone@example.com", phone="+447700900999")
    assert [s.guesty_id for s in await stays_holding(pool, phone="+447700900123")] == ["r1"]
    assert [s.guesty_id for s in await stays_holding(pool, email="Oliver.Bennett@Example.co.uk")] == ["r1"]
    assert await stays_holding(pool, phone="x+447700900123") == []
    assert await stays_holding(pool, phone="+44770090012") == []
    assert await stays_holding(pool) == []


async def test_a_confirmation_code_is_found_whatever_its_case_and_dashes(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=None)  # confirmation code CODE-r1
    assert [s.guesty_id for s in await stays_by_codes(pool, ["coder1"])] == ["r1"]
    assert [s.guesty_id for s in await stays_by_codes(pool, ["CODE-R1", "nothing"])] == ["r1"]
    assert await stays_by_codes(pool, ["CODE-R2"]) == []


def test_bookings_of_two_guests_are_not_one_guest() -> None:
    a = stay("a", "confirmed", CHECK_IN)
    same = [a, StayFacts(**{**a.__dict__, "guesty_id": "b"})]
    assert one_guest([]) and one_guest([a])
    assert not one_guest(same)  # no guest id or name: who they are for cannot be told apart
    named = [
        StayFacts(**{**a.__dict__, "guest_name": "Oliver  Bennett"}),
        StayFacts(**{**a.__dict__, "guesty_id": "b", "guest_name": "oliver bennett"}),
    ]
    assert one_guest(named)
    other = [named[0], StayFacts(**{**a.__dict__, "guesty_id": "c", "guest_name": "Ana Lima"})]
    assert not one_guest(other)
    by_id = [StayFacts(**{**named[0].__dict__, "guest_id": "g1"}), StayFacts(**{**other[1].__dict__, "guest_id": "g1"})]
    assert one_guest(by_id)  # Guesty says it is the same guest, whatever the names


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        ("confirmed", CHECK_IN - timedelta(days=60), True),  # booked months ahead: may plan the trip
        ("reserved", CHECK_IN - timedelta(days=21), True),  # a live booking, not confirmed yet
        ("Confirmed", CHECK_OUT + timedelta(days=PRIVATE_DAYS_AFTER), True),  # the last moment after check-out
        ("confirmed", CHECK_OUT + timedelta(days=PRIVATE_DAYS_AFTER, seconds=1), False),
        ("canceled", CHECK_IN, False),
        ("declined", CHECK_IN, False),
        ("expired", CHECK_IN - timedelta(days=3), False),
        ("inquiry", CHECK_IN - timedelta(days=3), False),
        ("", CHECK_IN, False),
    ],
)
def test_private_window(status: str, now: datetime, expected: bool) -> None:
    assert private_window_open(status, CHECK_OUT, now) is expected


def test_private_window_needs_a_check_out() -> None:
    assert private_window_open("confirmed", None, CHECK_IN) is False


async def test_verified_guest_weeks_ahead_gets_the_address_but_no_access(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=501)
    context = await verified(pool, "r1", CHECK_IN - timedelta(days=21))
    assert context.private_properties == frozenset({"lis-alfama"})
    assert context.access_properties == frozenset()


async def test_bookings_are_found_through_the_contacts_cached_email_and_phone(pool: AsyncConnectionPool) -> None:
    await add_reservation(pool, "r1", contact=None, email="oliver.bennett@example.co.uk")
    await add_reservation(
        pool,
        "r2",
        contact=None,
        phone="+447700900123",
        property_code="por-ribeira",
        check_in=CHECK_IN + timedelta(days=1),
    )
    await add_reservation(pool, "r3", contact=777, property_code="lis-graca")  # someone else's booking
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO contact_links (key, chatwoot_contact_id) VALUES"
            " ('email:oliver.bennett@example.co.uk', 501), ('phone:+447700900123', 501)"
        )
    assert [s.guesty_id for s in await contact_stays(pool, 501)] == ["r1", "r2"]
    assert await contact_stays(pool, 999) == []


async def test_refresh_moves_stages_and_swaps_the_label(ctx: JobContext, chatwoot: FakeChatwoot) -> None:
    chatwoot.contacts.append({"id": 501, "name": "Oliver Bennett", "email": None, "phone_number": None})
    chatwoot.conversations[501] = [{"id": 70, "last_activity_at": 100}, {"id": 77, "last_activity_at": 200}]
    chatwoot.labels[77] = ["vip", "pre-stay"]
    await add_reservation(ctx.db, "r1", contact=501, stage="pre-stay")
    await add_reservation(ctx.db, "r2", contact=None, stage="pre-stay", property_code="x")
    await add_reservation(ctx.db, "r3", contact=None, stage=None, status="canceled")

    report = await refresh_stay_stages(ctx, now=CHECK_IN + timedelta(hours=1))
    assert (report.changed, report.contacts_labeled, report.failed_contacts) == (2, 1, ())
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT guesty_id, stay_stage FROM reservations ORDER BY guesty_id")
        assert await cur.fetchall() == [("r1", "during-stay"), ("r2", "during-stay"), ("r3", None)]
    assert chatwoot.label_posts == [(77, ["vip", "during-stay"])]
    assert chatwoot.updates[-1]["custom_attributes"]["reservation_status"] == "confirmed"

    again = await refresh_stay_stages(ctx, now=CHECK_IN + timedelta(hours=2))
    assert again.changed == 0 and len(chatwoot.label_posts) == 1


async def test_refresh_keeps_the_old_stage_when_chatwoot_fails(ctx: JobContext, chatwoot: FakeChatwoot) -> None:
    await add_reservation(ctx.db, "r1", contact=404, stage="pre-stay")  # the fake knows no contact 404
    report = await refresh_stay_stages(ctx, now=CHECK_IN + timedelta(hours=1))
    assert (report.changed, report.failed_contacts) == (0, (404,))
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT stay_stage FROM reservations")
        assert await cur.fetchall() == [("pre-stay",)]


async def test_verified_context_gives_the_facts_with_the_propertys_today(pool: AsyncConnectionPool) -> None:
    await add_property(pool, "lis-alfama", "Sunny 2BR in Alfama")
    async with pool.connection() as conn:
        await conn.execute("UPDATE properties SET timezone = 'Asia/Tokyo' WHERE code = 'lis-alfama'")
    await add_reservation(pool, "r1", contact=501)
    late_evening = datetime(2026, 2, 12, 20, 0, tzinfo=UTC)  # already the 13th in Tokyo
    assert await verified(pool, "r1", late_evening) == GuestContext(
        property_code="lis-alfama",
        facts=GuestFacts(
            guest_name="Oliver Bennett",
            property_name="Sunny 2BR in Alfama",
            check_in_date=date(2026, 2, 13),
            check_in_time="15:00",
            check_out_date=date(2026, 2, 17),
            check_out_time="10:00",
            status="confirmed",
            guests_count=2,
            today=date(2026, 2, 13),
        ),
        access_properties=frozenset({"lis-alfama"}),
        private_properties=frozenset({"lis-alfama"}),
        identity="verified",
        booking="CODE-r1",
        verified_by="WhatsApp number",
    )
