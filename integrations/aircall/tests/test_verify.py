"""Token check and ledger keys of Aircall deliveries (signing.md §1 worked example)."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.aircall.tests.conftest import payload
from integrations.aircall.verify import AircallVerificationError, call_id, dedupe_key, subject, verify_token

TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"


def test_matching_token_is_accepted() -> None:
    verify_token({"token": TOKEN, "event": "call.created", "data": {}}, TOKEN)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"token": TOKEN[:-1] + "7"}, "wrong token"),
        ({"token": ""}, "missing 'token'"),
        ({}, "missing 'token'"),
        ({"token": 12345}, "missing 'token'"),
        ({"token": "jeton-é"}, "wrong token"),  # non-ASCII must not crash compare_digest
    ],
)
def test_bad_tokens_are_refused_with_a_reason(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(AircallVerificationError, match=reason):
        verify_token(body, TOKEN)


def test_unset_expected_token_names_the_variable() -> None:
    with pytest.raises(AircallVerificationError, match="AIRCALL_WEBHOOK_TOKEN"):
        verify_token({"token": TOKEN}, "")


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("call.created", "aircall:call.created:2187340091"),
        ("call.ended", "aircall:call.ended:2187340091"),
        ("call.voicemail_left", "aircall:call.voicemail_left:2187411752"),
        ("call.comm_assets_generated", "aircall:call.comm_assets_generated:2187340091"),
        ("call.tagged", "aircall:call.tagged:2187340091:1767958690"),
        ("call.commented", "aircall:call.commented:2187340091:1767958725"),
        ("call.transferred", "aircall:call.transferred:2187342210:1767961032"),
        ("transcription.created", "aircall:transcription.created:2187340091"),
        ("summary.created", "aircall:summary.created:2187340091"),
    ],
)
def test_dedupe_keys(fixture: str, key: str) -> None:
    assert dedupe_key(payload(fixture)) == key


def test_repeatable_events_differ_by_timestamp_and_retries_do_not() -> None:
    first, second = payload("call.tagged"), payload("call.tagged")
    second["timestamp"] += 30
    assert dedupe_key(first) != dedupe_key(second)
    assert dedupe_key(first) == dedupe_key(payload("call.tagged"))


def test_other_resources_and_id_less_payloads_still_get_a_stable_key() -> None:
    user = {"resource": "user", "event": "user.connected.v2", "timestamp": 1, "data": {"id": 77}}
    assert dedupe_key(user) == "aircall:user.connected.v2:77"
    odd = {"event": "call.created", "timestamp": 1, "data": {"direction": "inbound"}, "token": "x"}
    same_without_token = {k: v for k, v in odd.items() if k != "token"}
    assert dedupe_key(odd).startswith("aircall:call.created:sha256:")
    assert dedupe_key(odd) == dedupe_key(same_without_token)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("call.ended", "call:2187340091"),
        ("call.hungup-missed", "call:2187355604"),
        ("transcription.created", "call:2187340091"),
        ("summary.created", "call:2187340091"),
    ],
)
def test_subject_is_the_call(fixture: str, expected: str) -> None:
    assert subject(payload(fixture)) == expected


def test_subject_and_call_id_without_a_call() -> None:
    assert subject({"event": "user.created.v2", "resource": "user", "data": {"id": 5}}) is None
    assert call_id({"event": "call.created", "data": "oops"}) is None
    assert call_id({"event": "call.created", "data": {"id": True}}) is None
