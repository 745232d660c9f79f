"""Guesty events end to end: rows in Postgres, requests to Chatwoot (checked against its spec), exact notes."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import redis
import respx
from psycopg_pool import AsyncConnectionPool

from bot.context import JobContext
from bot.core.ledger import StoredEvent
from bot.errors import Defer, PermanentError
from bot.knowledge.store import Scope
from integrations.chatwoot.client import ChatwootRetryable
from integrations.guesty.handlers import (
    HANDLERS,
    process_guest,
    process_listing,
    process_listing_removed,
    process_reservation,
)
from integrations.guesty.tests.conftest import (
    GUESTY_URL,
    REDIS_URL,
    FakeChatwoot,
    guesty_client,
    load,
    open_pool,
    settings_for,
)

RID = "6941c3a7e2b1f40012d8a5c3"
LID = "64f0b21c9d3e7a0035c1e982"
PROPERTY = "Sunny 2BR in Alfama with river view"
BEFORE_STAY = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
CREATED_NOTE = (
    "New Guesty booking HM4KQZ8X2T at Sunny 2BR in Alfama with river view: check-in 2026-02-13, "
    "check-out 2026-02-17, 2 guests, status confirmed, via airbnb2."
)
CANCELED_NOTE = (
    "Guesty booking HM4KQZ8X2T at Sunny 2BR in Alfama with river view (2026-02-13 to 2026-02-17) is now canceled."
)
CHANGED_NOTE = (
    "Guesty booking HM4KQZ8X2T at Sunny 2BR in Alfama with river view changed: "
    "check-in 2026-02-13 → 2026-02-14; check-out 2026-02-17 → 2026-02-18; guests 2 → 3."
)
ATTRIBUTES = {
    "reservation_code": "HM4KQZ8X2T",
    "property_name": PROPERTY,
    "check_in": "2026-02-13",
    "check_out": "2026-02-17",
    "reservation_status": "confirmed",
    "guests_count": 2,
}


async def query(pool: AsyncConnectionPool, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params or None)
        return list(await cur.fetchall())


@pytest.fixture
def guesty(router: respx.MockRouter) -> dict[str, respx.Route]:
    """The Open API: a token, the listing of the fixtures, and the reservation as Guesty holds it now."""
    return {
        "token": router.post(f"{GUESTY_URL}/oauth2/token").mock(
            return_value=httpx.Response(
                200, json={"token_type": "Bearer", "expires_in": 86400, "access_token": "tok-1", "scope": "open-api"}
            )
        ),
        "listing": router.get(f"{GUESTY_URL}/v1/listings/{LID}").mock(
            return_value=httpx.Response(200, json=load("listing.updated")["listing"])
        ),
        "reservation": router.get(f"{GUESTY_URL}/v1/reservations/{RID}").mock(
            return_value=httpx.Response(200, json=load("reservation.new")["reservation"])
        ),
    }


async def test_new_booking_mirrors_row_contact_label_and_note(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    chatwoot.labels[77] = ["vip"]
    assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) is None

    [row] = await query(
        ctx.db,
        """
        SELECT guesty_id, confirmation_code, property_code, listing_id, guest_id, status, check_in_at, check_out_at,
               check_in_local, check_out_local, guest_name, guest_email, guest_phone, guests_count, channel,
               currency, total_price, chatwoot_contact_id, stay_stage, source_updated_at, planned_arrival
          FROM reservations""",
    )
    assert row == (
        RID,
        "HM4KQZ8X2T",
        LID,
        LID,
        "6941c3a6e2b1f40012d8a5b9",
        "confirmed",
        datetime(2026, 2, 13, 15, tzinfo=UTC),
        datetime(2026, 2, 17, 10, tzinfo=UTC),
        date(2026, 2, 13),
        date(2026, 2, 17),
        "Oliver Bennett",
        "oliver.bennett@example.co.uk",
        "+447700900123",
        2,
        "airbnb2",
        "EUR",
        pytest.approx(580),
        501,
        "pre-stay",
        datetime(2026, 1, 9, 11, 42, 16, 2000, tzinfo=UTC),
        "15:00",
    )
    assert await query(
        ctx.db,
        "SELECT code, guesty_listing_id, name, nickname, timezone, check_in_time,"
        " check_out_time, active FROM properties",
    ) == [(LID, LID, PROPERTY, "LIS-Alfama-2B", "Europe/Lisbon", "15:00", "10:00", True)]
    assert await query(
        ctx.db, "SELECT source, event_type, subject, payload->>'from', payload->>'to', status FROM operational_events"
    ) == [("internal", "reservation.status_changed", f"reservation:{RID}", None, "confirmed", "done")]

    assert [(c["name"], c["email"], c["phone_number"]) for c in chatwoot.contacts] == [
        ("Oliver Bennett", "oliver.bennett@example.co.uk", "+447700900123")
    ]
    assert chatwoot.updates == [{"contact_id": 501, "custom_attributes": ATTRIBUTES}]
    assert chatwoot.label_posts == [(77, ["vip", "pre-stay"])]
    assert [
        (m["conversation_id"], m["content"], m["private"], m["content_attributes"]["sidecar_reply_key"])
        for m in chatwoot.messages
    ] == [(77, CREATED_NOTE, True, f"guesty:{RID}:created")]
    assert await query(
        ctx.db, "SELECT reply_key, kind, status, conversation_id, chatwoot_message_id, content FROM bot_replies"
    ) == [(f"guesty:{RID}:created", "note", "posted", 77, 9001, CREATED_NOTE)]
    # The property's listing knowledge was indexed on the way.
    assert await query(ctx.db, "SELECT DISTINCT source, property_code FROM vector_references") == [
        (f"guesty:listing:{LID}", LID)
    ]
    assert guesty["token"].call_count == 1


async def test_redelivered_booking_posts_nothing_twice(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    for _ in range(3):
        assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) is None
    assert len(chatwoot.contacts) == 1
    assert len(chatwoot.messages) == 1
    assert chatwoot.label_posts == [(77, ["pre-stay"])]
    assert await query(ctx.db, "SELECT count(*) FROM reservations") == [(1,)]
    assert await query(ctx.db, "SELECT count(*) FROM operational_events") == [(1,)]
    assert await query(ctx.db, "SELECT count(*), min(status) FROM bot_replies") == [(1, "posted")]
    assert guesty["listing"].call_count == 1 and guesty["token"].call_count == 1


async def test_cancellation_notes_records_history_and_drops_the_stage(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY)
    chatwoot.labels[77] = ["pre-stay", "vip"]
    assert await process_reservation(ctx, load("reservation.updated-canceled"), now=BEFORE_STAY) is None

    assert await query(ctx.db, "SELECT status, stay_stage, total_price, source_updated_at FROM reservations") == [
        ("canceled", None, pytest.approx(580), datetime(2026, 1, 21, 8, 3, 57, 944000, tzinfo=UTC))
    ]
    assert await query(
        ctx.db, "SELECT payload->>'from', payload->>'to' FROM operational_events WHERE source = 'internal' ORDER BY id"
    ) == [(None, "confirmed"), ("confirmed", "canceled")]
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE, CANCELED_NOTE]
    assert chatwoot.updates[-1]["custom_attributes"] == {**ATTRIBUTES, "reservation_status": "canceled"}
    assert chatwoot.label_posts[-1] == (77, ["vip"])
    keys = [k for (k,) in await query(ctx.db, "SELECT reply_key FROM bot_replies ORDER BY id")]
    assert keys[0] == f"guesty:{RID}:created" and keys[1].startswith(f"guesty:{RID}:canceled:")


async def test_older_event_arriving_after_a_newer_one_is_ignored(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    await process_reservation(ctx, load("reservation.updated-canceled"), now=BEFORE_STAY)
    assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) == "ignored"
    assert await query(ctx.db, "SELECT status FROM reservations") == [("canceled",)]
    assert [m["content"] for m in chatwoot.messages] == [CANCELED_NOTE]


async def test_date_and_guest_change_is_noted(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY)
    await process_reservation(ctx, load("reservation.updated-dates"), now=BEFORE_STAY)
    assert await query(ctx.db, "SELECT check_in_local, check_out_local, guests_count FROM reservations") == [
        (date(2026, 2, 14), date(2026, 2, 18), 3)
    ]
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE, CHANGED_NOTE]
    assert chatwoot.updates[-1]["custom_attributes"] == {
        **ATTRIBUTES,
        "check_in": "2026-02-14",
        "check_out": "2026-02-18",
        "guests_count": 3,
    }
    assert await query(ctx.db, "SELECT count(*) FROM operational_events") == [(1,)]  # status did not change


async def test_v2_event_with_only_ids_fetches_the_reservation(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    assert await process_reservation(ctx, load("reservation.created.v2"), now=BEFORE_STAY) is None
    assert guesty["reservation"].call_count == 1
    assert guesty["reservation"].calls.last.request.headers["authorization"] == "Bearer tok-1"
    assert await query(ctx.db, "SELECT status, guest_email, property_code, source_updated_at FROM reservations") == [
        ("confirmed", "oliver.bennett@example.co.uk", LID, datetime(2026, 1, 9, 11, 42, 16, 2000, tzinfo=UTC))
    ]
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE]

    canceled = load("reservation.updated-canceled")["reservation"]
    guesty["reservation"].mock(return_value=httpx.Response(200, json=canceled))
    assert await process_reservation(ctx, load("reservation.updated.v2"), now=BEFORE_STAY) is None
    assert await query(ctx.db, "SELECT status FROM reservations") == [("canceled",)]
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE, CANCELED_NOTE]
    assert guesty["token"].call_count == 1  # one token for every read


async def test_guesty_429_then_200_is_waited_out(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    guesty["reservation"].mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json=load("reservation.new")["reservation"]),
        ]
    )
    assert await process_reservation(ctx, load("reservation.created.v2"), now=BEFORE_STAY) is None
    assert guesty["reservation"].call_count == 2
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE]


async def test_long_guesty_rate_limit_defers_the_event(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    guesty["reservation"].mock(return_value=httpx.Response(429, headers={"Retry-After": "900"}))
    with pytest.raises(Defer) as caught:
        await process_reservation(ctx, load("reservation.created.v2"), now=BEFORE_STAY)
    assert caught.value.seconds == 900
    assert await query(ctx.db, "SELECT count(*) FROM reservations") == [(0,)]


async def test_vanished_reservation_is_ignored(ctx: JobContext, guesty: dict[str, respx.Route]) -> None:
    guesty["reservation"].mock(return_value=httpx.Response(404, json={"message": "Reservation not found"}))
    assert await process_reservation(ctx, load("reservation.updated.v2"), now=BEFORE_STAY) == "ignored"


async def test_without_a_conversation_attributes_are_set_and_the_note_skipped(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    chatwoot.conversation_for_new_contacts = None
    assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) is None
    assert chatwoot.updates == [{"contact_id": 501, "custom_attributes": ATTRIBUTES}]
    assert chatwoot.messages == [] and chatwoot.label_posts == []
    assert await query(ctx.db, "SELECT status, conversation_id FROM bot_replies") == [("skipped", None)]
    # A later conversation does not bring the old note back on redelivery.
    chatwoot.conversations[501] = [{"id": 80, "inbox_id": 1, "status": "open", "last_activity_at": 1767100000}]
    await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY)
    assert chatwoot.messages == []


@pytest.mark.parametrize("saved", [False, True], ids=["lost before saving", "saved, then a 500"])
async def test_failed_note_is_posted_once_when_the_event_is_retried(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route], saved: bool
) -> None:
    (chatwoot.saved_then_failed if saved else chatwoot.message_failures).append(httpx.Response(500, text="boom"))
    with pytest.raises(ChatwootRetryable):
        await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY)
    assert await query(ctx.db, "SELECT status, conversation_id FROM bot_replies") == [("unknown", 77)]  # a 500
    assert len(chatwoot.messages) == int(saved)
    with pytest.raises(Defer):  # read back only once a request still on its way has surely landed
        await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY)
    ctx.settings = ctx.settings.model_copy(update={"reply_settle_s": 0.0})
    assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) is None  # found, or posted
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE]
    assert await query(ctx.db, "SELECT status FROM bot_replies") == [("posted",)]


async def test_without_guesty_credentials_a_full_payload_still_mirrors(
    ctx: JobContext, chatwoot: FakeChatwoot, clean_db: str
) -> None:
    ctx.settings = settings_for(clean_db, GUESTY_CLIENT_ID="", GUESTY_CLIENT_SECRET="")
    ctx.extras.pop("guesty_client")
    assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) is None
    assert await query(ctx.db, "SELECT code, name, nickname, timezone, check_in_time FROM properties") == [
        (LID, PROPERTY, "LIS-Alfama-2B", "Europe/Lisbon", None)
    ]  # from the summary inside the reservation
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE]
    with pytest.raises(PermanentError, match="GUESTY_CLIENT_ID / GUESTY_CLIENT_SECRET are not set"):
        await process_reservation(ctx, load("reservation.updated.v2"), now=BEFORE_STAY)


async def test_without_chatwoot_only_the_mirror_is_written(ctx: JobContext, guesty: dict[str, respx.Route]) -> None:
    ctx.chatwoot = None
    assert await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY) is None
    assert await query(ctx.db, "SELECT status, chatwoot_contact_id FROM reservations") == [("confirmed", None)]
    assert await query(ctx.db, "SELECT count(*) FROM bot_replies") == [(0,)]


async def test_unreadable_event_fails_for_good(ctx: JobContext) -> None:
    with pytest.raises(PermanentError, match="without a reservation id"):
        await process_reservation(ctx, {"event": "reservation.updated.v2", "data": {}}, now=BEFORE_STAY)
    with pytest.raises(PermanentError, match="unreadable Guesty ReservationEvent"):
        await process_reservation(
            ctx, {"event": "reservation.new", "reservation": {"checkIn": "soon"}}, now=BEFORE_STAY
        )


async def test_handlers_map_runs_through_the_job_contract(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    event = StoredEvent(
        id=1,
        source="guesty",
        event_type="reservation.new",
        dedupe_key="guesty:msg_1",
        subject=f"reservation:{RID}",
        payload=load("reservation.new"),
        received_at=datetime.now(UTC),
        attempts=1,
    )
    assert await HANDLERS["reservation.new"](ctx, event) is None
    assert [m["content"] for m in chatwoot.messages] == [CREATED_NOTE]


# --------------------------------------------------------------------------- listings


async def test_listing_is_mirrored_and_indexed_with_access_sections_gated(ctx: JobContext) -> None:
    assert await process_listing(ctx, load("listing.new-access")) is None
    assert await query(
        ctx.db, "SELECT code, name, nickname, address, check_in_time, check_out_time FROM properties"
    ) == [
        (
            "65a1c0de4b7f2a0041d9e311",
            "Riverside studio in Ribeira",
            "POR-Ribeira-1A",
            "Cais da Ribeira 22, 4050-510 Porto, Portugal",
            "16:00",
            "11:00",
        )
    ]
    refs = await query(ctx.db, "SELECT heading, is_access, property_code FROM vector_references ORDER BY chunk_index")
    assert {(h, a) for h, a, _ in refs} == {
        ("Overview", False),
        ("Address", False),
        ("Neighbourhood", False),
        ("Check-in and check-out", False),
        ("Amenities", False),
        ("House rules", False),
        ("Parking", False),
        ("Wi-Fi", False),
        ("Wi-Fi network and password", True),
        ("Door and key-box codes", True),
    }
    assert {p for _, _, p in refs} == {"65a1c0de4b7f2a0041d9e311"}
    # The exact address is stored behind the private gate: only a guest with a booking there reads it.
    code = "65a1c0de4b7f2a0041d9e311"
    retriever = ctx.extras["retriever"]
    query_vector = retriever.embedder.embed_query("address")

    def headings(scope: Scope) -> set[str | None]:
        return {c.heading for c in retriever.store.query(query_vector, scope=scope, limit=20, prefetch=20)}

    public = headings(Scope(property_code=code))
    booked = headings(Scope(property_code=code, private_properties=frozenset({code})))
    assert "Address" not in public and "Neighbourhood" in public
    assert booked - public == {"Address"}


async def test_listing_update_reindexes_and_older_update_is_ignored(ctx: JobContext) -> None:
    newer = load("listing.updated")
    assert await process_listing(ctx, newer) is None
    before = await query(ctx.db, "SELECT point_id FROM vector_references ORDER BY point_id")
    older = copy.deepcopy(newer)
    older["listing"]["title"] = "Old title"
    older["listing"]["lastUpdatedAt"] = "2026-01-01T00:00:00.000Z"
    assert await process_listing(ctx, older) == "ignored"
    assert await query(ctx.db, "SELECT name FROM properties") == [(PROPERTY,)]
    changed = copy.deepcopy(newer)
    changed["listing"]["defaultCheckOutTime"] = "11:00"
    changed["listing"]["lastUpdatedAt"] = "2026-01-22T00:00:00.000Z"
    assert await process_listing(ctx, changed) is None
    assert await query(ctx.db, "SELECT check_out_time FROM properties") == [("11:00",)]
    after = await query(ctx.db, "SELECT point_id FROM vector_references ORDER BY point_id")
    assert len(after) == len(before) and after != before  # the changed section was replaced
    [(text,)] = await query(ctx.db, "SELECT heading FROM vector_references WHERE heading = 'Check-in and check-out'")
    assert text == "Check-in and check-out"


async def test_listing_takes_the_code_of_knowledge_named_after_its_nickname(ctx: JobContext) -> None:
    async with ctx.db.connection() as conn:
        await conn.execute(
            "INSERT INTO vector_references (point_id, collection, source, chunk_index, property_code, content_hash)"
            " VALUES (gen_random_uuid(), 'knowledge', 'lis-alfama-2b/en/guide.md', 0, 'lis-alfama-2b', 'h')"
        )
    await process_listing(ctx, load("listing.updated"))
    assert await query(ctx.db, "SELECT code, guesty_listing_id FROM properties") == [("lis-alfama-2b", LID)]
    assert await query(ctx.db, "SELECT DISTINCT property_code FROM vector_references WHERE source LIKE 'guesty:%'") == [
        ("lis-alfama-2b",)
    ]


async def test_listing_removal_deactivates_and_drops_only_its_knowledge(ctx: JobContext) -> None:
    await process_listing(ctx, load("listing.updated"))
    await process_listing(ctx, load("listing.new-access"))
    assert await process_listing_removed(ctx, load("listing.removed")) is None
    assert await query(ctx.db, "SELECT code, active FROM properties ORDER BY code") == [
        (LID, False),
        ("65a1c0de4b7f2a0041d9e311", True),
    ]
    assert await query(ctx.db, "SELECT DISTINCT source FROM vector_references") == [
        ("guesty:listing:65a1c0de4b7f2a0041d9e311",)
    ]
    retriever = ctx.extras["retriever"]
    assert set(retriever.store.sources().values()) == {"guesty:listing:65a1c0de4b7f2a0041d9e311"}
    assert await process_listing_removed(ctx, load("listing.removed")) is None  # idempotent


async def test_listing_event_without_the_listing_fetches_it(ctx: JobContext, guesty: dict[str, respx.Route]) -> None:
    assert await process_listing(ctx, {"event": "listing.updated", "listingId": LID}) is None
    assert guesty["listing"].call_count == 1
    assert await query(ctx.db, "SELECT code, name FROM properties") == [(LID, PROPERTY)]


# --------------------------------------------------------------------------- guests


async def test_guest_update_reaches_reservations_and_contact(
    ctx: JobContext, chatwoot: FakeChatwoot, guesty: dict[str, respx.Route]
) -> None:
    await process_reservation(ctx, load("reservation.new"), now=BEFORE_STAY)
    assert await process_guest(ctx, load("guest.updated"), now=BEFORE_STAY) is None
    assert await query(
        ctx.db, "SELECT guest_name, guest_email, guest_phone, chatwoot_contact_id FROM reservations"
    ) == [("Oliver J. Bennett", "oliver.bennett@example.co.uk", "+447700900123", 501)]
    assert len(chatwoot.contacts) == 1  # the same person: found through the cached email link
    assert (
        await process_guest(ctx, {"event": "guest.created", "guest": {"_id": "unknown-guest"}}, now=BEFORE_STAY)
        == "ignored"
    )


async def test_burst_of_100_v2_events_in_four_workers_needs_one_token(clean_db: str, router: respx.MockRouter) -> None:
    """Four worker processes (own pools, own clients, one database) handle 100 lean events at once."""
    template = load("reservation.new")["reservation"]
    tokens = router.post(f"{GUESTY_URL}/oauth2/token").mock(
        side_effect=[
            httpx.Response(200, json={"token_type": "Bearer", "expires_in": 86400, "access_token": f"tok-{i}"})
            for i in range(5)
        ]
    )
    reads = router.get(url__regex=rf"^{GUESTY_URL}/v1/reservations/burst-\d+$").mock(
        side_effect=lambda request: httpx.Response(
            200, json={**template, "_id": request.url.path.rsplit("/", 1)[1], "confirmationCode": None}
        )
    )
    pools = [await open_pool(clean_db, size=3) for _ in range(4)]
    http = httpx.AsyncClient()
    try:
        async with pools[0].connection() as conn:
            await conn.execute(
                "INSERT INTO properties (code, guesty_listing_id, name) VALUES (%s, %s, %s)", (LID, LID, PROPERTY)
            )
        workers = [
            JobContext(
                settings=settings_for(clean_db),
                db=p,
                http=http,
                redis=redis.Redis.from_url(REDIS_URL),
                chatwoot=None,
                extras={"guesty_client": guesty_client(http, p)},
            )
            for p in pools
        ]
        events = [
            {
                "event": "reservation.created.v2",
                "publishedAt": "2026-01-09T11:42:17.120Z",
                "data": {"reservationId": f"burst-{i}"},
            }
            for i in range(100)
        ]
        results = await asyncio.gather(
            *(process_reservation(workers[i % 4], e, now=BEFORE_STAY) for i, e in enumerate(events))
        )
        assert results == [None] * 100
        assert (tokens.call_count, reads.call_count) == (1, 100)
        assert await query(
            pools[0], "SELECT count(*), count(DISTINCT guesty_id), min(property_code) FROM reservations"
        ) == [(100, 100, LID)]
    finally:
        await http.aclose()
        for p in pools:
            await p.close()
