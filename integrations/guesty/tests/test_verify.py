"""Svix signatures (fresh, stale, forged, rotated, white-labelled) and ledger subjects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from svix.webhooks import Webhook

from integrations.guesty import verify as guesty_verify
from integrations.guesty.handlers import HANDLERS
from integrations.guesty.tests.conftest import load
from integrations.guesty.verify import SUPPORTED_EVENTS, GuestyVerificationError, subject, verify

# The worked example of /work/shared/reference/signing.md.
SECRET = "whsec_c2lkZWNhci1leGFtcGxlLXNpZ25pbmcta2V5LTAwMDE="
MSG_ID = "msg_2xYzExampleGuesty0001"
BODY = b'{"event":"reservation.updated","reservation":{"_id":"6770f1a2b3c4d5e6f7a8b9c0","status":"canceled"}}'


def signed(body: bytes, *, at: datetime | None = None, prefix: str = "svix", secret: str = SECRET) -> dict[str, str]:
    when = at or datetime.now(UTC)
    signature = Webhook(secret).sign(MSG_ID, when, body.decode())
    return {f"{prefix}-id": MSG_ID, f"{prefix}-timestamp": str(int(when.timestamp())), f"{prefix}-signature": signature}


def test_reference_example_signature_is_reproduced() -> None:
    at = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert signed(BODY, at=at)["svix-signature"] == "v1,iK2/vpT+PoZyvNmgYk7RgGixr6yn1UUGZ1YQT72do7s="


def test_fresh_signature_gives_the_dedupe_key() -> None:
    assert verify(BODY, signed(BODY), SECRET) == f"guesty:{MSG_ID}"


def test_white_labelled_webhook_headers_are_accepted() -> None:
    headers = {k.title(): v for k, v in signed(BODY, prefix="webhook").items()}  # case does not matter
    assert verify(BODY, headers, SECRET) == f"guesty:{MSG_ID}"


def test_rotated_secret_list_verifies_when_one_entry_matches() -> None:
    headers = signed(BODY)
    headers["svix-signature"] = "v1,AAAA " + headers["svix-signature"]
    assert verify(BODY, headers, SECRET) == f"guesty:{MSG_ID}"


def test_the_reference_timestamp_is_stale_now() -> None:
    headers = signed(BODY, at=datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    with pytest.raises(GuestyVerificationError, match=r"^stale timestamp: message timestamp too old"):
        verify(BODY, headers, SECRET)


def test_future_timestamp_is_stale_too() -> None:
    headers = signed(BODY, at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(GuestyVerificationError, match=r"^stale timestamp: message timestamp too new"):
        verify(BODY, headers, SECRET)


def test_changed_body_is_a_bad_signature() -> None:
    headers = signed(BODY)
    with pytest.raises(GuestyVerificationError, match=r"^bad signature: no matching v1 signature"):
        verify(BODY + b" ", headers, SECRET)


def test_other_secret_is_a_bad_signature() -> None:
    headers = signed(BODY, secret="whsec_" + "b3RoZXItc2VjcmV0LWZvci10ZXN0cy0wMDAwMDAwMDA=")
    with pytest.raises(GuestyVerificationError, match=r"^bad signature"):
        verify(BODY, headers, SECRET)


@pytest.mark.parametrize("garbage", ["v1", "v1,not base64!!", "nonsense"])
def test_malformed_signature_header_is_refused(garbage: str) -> None:
    headers = {**signed(BODY), "svix-signature": garbage}
    with pytest.raises(GuestyVerificationError, match=r"^bad signature"):
        verify(BODY, headers, SECRET)


def test_missing_headers_are_named() -> None:
    headers = signed(BODY)
    del headers["svix-signature"]
    with pytest.raises(GuestyVerificationError, match=r"^missing Svix headers: svix-signature$"):
        verify(BODY, headers, SECRET)
    with pytest.raises(GuestyVerificationError, match=r"svix-id, svix-timestamp, svix-signature"):
        verify(BODY, {}, SECRET)


def test_garbled_timestamp_is_refused() -> None:
    headers = {**signed(BODY), "svix-timestamp": "yesterday"}
    with pytest.raises(GuestyVerificationError, match=r"^malformed svix-timestamp header"):
        verify(BODY, headers, SECRET)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("reservation.new", "reservation:6941c3a7e2b1f40012d8a5c3"),
        ("reservation.updated-canceled", "reservation:6941c3a7e2b1f40012d8a5c3"),
        ("reservation.created.v2", "reservation:6941c3a7e2b1f40012d8a5c3"),
        ("reservation.updated.v2", "reservation:6941c3a7e2b1f40012d8a5c3"),
        ("listing.updated", "listing:64f0b21c9d3e7a0035c1e982"),
        ("listing.removed", "listing:64f0b21c9d3e7a0035c1e982"),
        ("guest.updated", "guest:6941c3a6e2b1f40012d8a5b9"),
    ],
)
def test_subject_names_what_the_event_is_about(fixture: str, expected: str) -> None:
    assert subject(load(fixture)) == expected


def test_subject_is_none_for_unknown_or_unreadable_events() -> None:
    assert subject({"event": "payments.received", "payment": {"_id": "p1"}}) is None
    assert subject({"event": "reservation.new", "reservation": "not an object"}) is None
    assert subject({"event": "reservation.updated.v2", "data": {}}) is None
    assert subject({"no": "event"}) is None


def test_supported_events_are_exactly_the_handled_ones() -> None:
    assert set(HANDLERS) == SUPPORTED_EVENTS
    assert guesty_verify.SUPPORTED_EVENTS is SUPPORTED_EVENTS
    assert {
        "reservation.new",
        "reservation.updated",
        "reservation.created.v2",
        "reservation.updated.v2",
        "listing.new",
        "listing.updated",
        "listing.removed",
        "guest.created",
        "guest.updated",
    } <= SUPPORTED_EVENTS


def test_fixture_bodies_verify_as_raw_bytes() -> None:
    raw = json.dumps(load("listing.updated")).encode()
    assert verify(raw, signed(raw), SECRET) == f"guesty:{MSG_ID}"
