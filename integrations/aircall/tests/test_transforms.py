"""Pure transforms: one line per event (this payload gives exactly these notes), and the merge's order-independence."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.aircall import templates as tpl
from integrations.aircall import transforms as t
from integrations.aircall.models import AircallCall, AircallTranscription
from integrations.aircall.tests.conftest import payload

REC = "https://assets.aircall.io/recording/2187340091"
VM = "https://assets.aircall.io/voicemail/2187411752"


def snap(body: dict[str, Any]) -> t.CallSnapshot:
    return t.snapshot(AircallCall.model_validate(body["data"]), body["event"], body["timestamp"], body["data"])


def fold(snaps: tuple[t.CallSnapshot, ...] | list[t.CallSnapshot]) -> t.CallState:
    state = None
    for one in snaps:
        state = t.merge(state, one)
    assert state is not None
    return state


def state_of(*bodies: dict[str, Any]) -> t.CallState:
    return fold([snap(body) for body in bodies])


def effects(body: dict[str, Any], state: t.CallState | None = None, posted: set[str] | None = None) -> list[Any]:
    """What the event does, simulating the ledger: notes as text, follow-ups and contact updates as tuples."""
    state = state or state_of(body)
    steps = t.plan_call_event(body["event"], state, AircallCall.model_validate(body["data"]), body["timestamp"])
    done = set(posted or ())
    out: list[Any] = []
    for step in steps:
        open_keys = set(step.keys) - done
        if isinstance(step, t.NoteStep):
            note = step.render(open_keys)
            if note:
                out.append(note[0])
                done.update(note[1])
        elif isinstance(step, t.FollowUpStep):
            todo = step.render(open_keys)
            if todo:
                out.append(("follow-up", todo[0], todo[1]))
                done.update(todo[2])
        elif step.key in open_keys:
            out.append(("contact", step.custom_attributes))
            done.add(step.key)
    return out


# ----------------------------------------------------------------------------- one line per event

EXPECTED: list[tuple[str, list[Any]]] = [
    ("call.created", []),
    ("call.answered", []),
    ("call.hungup", []),  # answered: the outcome waits for call.ended's final data
    (
        "call.ended",
        [
            "📞 Inbound call from +44 7700 900123 on Guest line - Lisbon, answered by Marta Silva. Talked 6 min 54 s.\n"
            f"🎧 Recording (in Aircall): {REC}",
            "💬 Aircall comment by Marta Silva: Guest arriving late (23:00); sent self check-in code.",
            "🏷 Aircall tag added: check-in",
            ("contact", {"last_call_at": "2026-01-09T11:30:11Z", "last_call_outcome": "answered"}),
        ],
    ),
    ("call.tagged", ["🏷 Aircall tag added: check-in", "🏷 Aircall tag added: late-arrival"]),
    (
        "call.commented",
        [
            "💬 Aircall comment by Marta Silva: Guest arriving late (23:00); sent self check-in code.",
            "💬 Aircall comment by Marta Silva: Called back to confirm parking at the building.",
        ],
    ),
    ("call.comm_assets_generated", [f"🎧 Recording of the call with +44 7700 900123 (in Aircall): {REC}"]),
    (
        "call.voicemail_left",
        [
            "📵 Missed call from +33 6 12 34 56 78 on Guest line - Lisbon: called outside opening hours. "
            f"A voicemail was left; please call back.\n🎙 Voicemail (in Aircall): {VM}",
            ("follow-up", ("missed-call", "voicemail"), "high"),
            ("contact", {"last_call_at": "2026-01-09T20:24:30Z", "last_call_outcome": "voicemail"}),
        ],
    ),
    (
        "call.hungup-missed-known",
        [
            "📵 Missed call from +49 30 901820 on Guest line - Lisbon: no agent was available. Please call back.",
            ("follow-up", ("missed-call",), None),
            ("contact", {"last_call_at": "2026-01-09T14:50:05Z", "last_call_outcome": "missed"}),
        ],
    ),
    ("call.transferred", ["↪️ Call transferred by Marta Silva to João Costa."]),
    (
        "call.ended-outbound",
        [
            "📞 Outbound call to +1 415-555-0134 from Guest line - Lisbon by Marta Silva. Talked 4 min 6 s.\n"
            "🎧 Recording (in Aircall): https://assets.aircall.io/recording/2187370555",
            ("contact", {"last_call_at": "2026-01-09T16:11:40Z", "last_call_outcome": "outbound_answered"}),
        ],
    ),
]


@pytest.mark.parametrize(("fixture", "expected"), EXPECTED, ids=[name for name, _ in EXPECTED])
def test_each_event_gives_exactly_these_notes(fixture: str, expected: list[Any]) -> None:
    assert effects(payload(fixture)) == expected


def test_anonymous_missed_call_is_planned_but_has_no_caller() -> None:
    state = state_of(payload("call.hungup-missed"))
    assert state.caller_e164 is None and t.outcome(state) == "missed"
    assert effects(payload("call.hungup-missed"))[0] == (
        "📵 Missed call from an anonymous caller on Guest line - Lisbon: no agent answered. Please call back."
    )


def test_voicemail_after_missed_call_note_gets_its_own_note_with_transcript() -> None:
    hungup = payload("call.voicemail_left")
    hungup.update(event="call.hungup", timestamp=1767990332)
    hungup["data"].update(asset=None, voicemail=None)
    voicemail = payload("call.voicemail_left")
    state = replace(state_of(hungup, voicemail), voicemail_transcript="Bonjour, j'arrive demain à 22h.")
    already = {
        t.reply_key(2187411752, "outcome"),
        t.reply_key(2187411752, "follow-up", "missed"),
        t.reply_key(2187411752, "contact", "missed"),
    }
    assert effects(voicemail, state, already) == [
        f"🎙 +33 6 12 34 56 78 left a voicemail (in Aircall): {VM}\nTranscript: “Bonjour, j'arrive demain à 22h.”",
        ("follow-up", ("voicemail",), "high"),
        ("contact", {"last_call_at": "2026-01-09T20:24:30Z", "last_call_outcome": "voicemail"}),
    ]


def test_outcome_note_leaves_out_a_recording_already_posted() -> None:
    posted = {t.reply_key(2187340091, "recording")}
    assert effects(payload("call.ended"), posted=posted)[0] == (
        "📞 Inbound call from +44 7700 900123 on Guest line - Lisbon, answered by Marta Silva. Talked 6 min 54 s."
    )


@pytest.mark.parametrize(
    ("event", "changes", "text"),
    [
        (
            "call.external_transferred",
            {"transferred_to": {"phone_number": "+33612345678"}},
            "↪️ Call transferred by Marta Silva to an external number (+33 6 12 34 56 78).",
        ),
        (
            "call.external_transferred",
            {"transferred_to": None},
            "↪️ Call transferred by Marta Silva to an external number.",
        ),
        ("call.unsuccessful_transfer", {}, "↪️ Transfer by Marta Silva to João Costa did not go through."),
        (
            "call.transferred",
            {"transferred_by": None, "transferred_to": {"id": 31044, "name": "Guest support"}},
            "↪️ Call transferred to Guest support.",
        ),
    ],
)
def test_transfer_variants(event: str, changes: dict[str, Any], text: str) -> None:
    body = payload("call.transferred", **changes)
    body["event"] = event
    assert effects(body) == [text]


def test_outbound_not_answered() -> None:
    body = payload("call.ended-outbound", answered_at=None, asset=None, recording=None)
    assert effects(body)[0] == (
        "📞 Outbound call to +1 415-555-0134 from Guest line - Lisbon by Marta Silva: not answered."
    )


def test_comment_without_author_and_tag_without_name() -> None:
    comment = {"id": 5, "content": " Call back after 6pm ", "posted_at": "2026-01-09"}
    body = payload("call.commented", comments=[comment], tags=[{"id": 9, "name": None}])
    assert effects(body) == ["💬 Aircall comment: Call back after 6pm"]


# ------------------------------------------------------------------------------------------ merge

ANSWERED_CALL = [
    "call.created",
    "call.answered",
    "call.hungup",
    "call.ended",
    "call.tagged",
    "call.commented",
    "call.comm_assets_generated",
]


def _expected_answered() -> t.CallState:
    return t.CallState(
        aircall_call_id=2187340091,
        direction="inbound",
        status="done",
        missed_call_reason=None,
        caller_e164="+447700900123",
        started_at=_at(1767958211),
        answered_at=_at(1767958226),
        ended_at=_at(1767958640),
        duration_s=429,
        agent_name="Marta Silva",
        recording_asset_url=REC,
        tags=("check-in", "late-arrival"),
        last_event="call.comm_assets_generated",
        last_event_at=_at(1767958760),
    )


def test_answered_call_merges_to_the_same_record_in_every_order() -> None:
    snaps = [snap(payload(name)) for name in ANSWERED_CALL]
    expected = _expected_answered()
    seen = set()
    for order in itertools.permutations(snaps):  # 5040 orders
        state = fold(order)
        assert state == expected
        seen.add(repr(state.raw))
    assert len(seen) == 1  # raw is the newest snapshot whatever the order


def test_voicemail_call_merges_to_the_same_record_in_every_order() -> None:
    created = payload("call.created", id=2187411752, raw_digits="+33 6 12 34 56 78", started_at=1767990270)
    created["timestamp"] = 1767990271
    hungup = payload("call.voicemail_left", asset=None, voicemail=None)
    hungup.update(event="call.hungup", timestamp=1767990332)
    voicemail = payload("call.voicemail_left")
    ended = payload("call.voicemail_left")
    ended.update(event="call.ended", timestamp=1767990362)
    for order in itertools.permutations([snap(b) for b in (created, hungup, voicemail, ended)]):
        state = fold(order)
        assert (
            state.status,
            state.missed_call_reason,
            state.voicemail_asset_url,
            state.recording_asset_url,
            state.answered_at,
            state.duration_s,
            state.last_event,
            t.outcome(state),
        ) == ("done", "out_of_opening_hours", VM, None, None, 61, "call.ended", "voicemail")


def test_same_second_events_are_ordered_by_the_call_life_cycle() -> None:
    hungup, ended = payload("call.hungup"), payload("call.ended")
    hungup["timestamp"] = ended["timestamp"]
    assert state_of(hungup, ended).last_event == state_of(ended, hungup).last_event == "call.ended"
    assert state_of(ended, hungup).tags == ("check-in",)


def test_status_and_answer_never_go_back() -> None:
    older = payload("call.answered")
    older["timestamp"] = 1767958999  # a late, stale-looking snapshot stamped after the end
    older["data"].update(status="initial", answered_at=1767958230, duration=3)
    state = state_of(payload("call.ended"), older)
    assert (state.status, state.answered_at, state.duration_s) == ("done", _at(1767958226), 429)


def test_presigned_media_urls_are_never_kept() -> None:
    state = state_of(payload("call.ended"))
    assert state.recording_asset_url == REC
    assert not set(t.PRESIGNED_FIELDS) & set(state.raw)
    assert "X-Amz" not in repr(state)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"asset": REC}, (REC, None)),
        ({"asset": VM}, (None, VM)),
        ({"asset": None, "recording": "https://s3/rec.mp3?sig"}, ("https://assets.aircall.io/recording/1", None)),
        ({"asset": None, "voicemail": "https://s3/vm.mp3?sig"}, (None, "https://assets.aircall.io/voicemail/1")),
        (
            {"asset": "https://assets.aircall.io/x/1", "voicemail": "https://s3/vm.mp3"},
            (None, "https://assets.aircall.io/x/1"),
        ),
        ({}, (None, None)),
    ],
)
def test_media_assets(fields: dict[str, Any], expected: tuple[str | None, str | None]) -> None:
    assert t.media_assets(AircallCall(id=1, **fields)) == expected


# ---------------------------------------------------------------------------------------- wording


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("out_of_opening_hours", "called outside opening hours"),
        ("short_abandoned", "the caller hung up within a few seconds"),
        ("abandoned_in_ivr", "the caller hung up in the phone menu"),
        ("abandoned_in_classic", "the caller hung up while it was ringing"),
        ("no_available_agent", "no agent was available"),
        ("agents_did_not_answer", "no agent answered"),
        ("brand_new_reason", "brand new reason"),
        (None, "not answered"),
    ],
)
def test_missed_reason_in_plain_words(reason: str | None, words: str) -> None:
    assert tpl.missed_reason(reason) == words


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (414, "6 min 54 s"),
        (3600, "1 h"),
        (3725, "1 h 2 min"),
        (None, "an unknown time"),
    ],
)
def test_format_duration(seconds: int | None, text: str) -> None:
    assert tpl.format_duration(seconds) == text


def test_transcript_joins_turns_and_names_speakers() -> None:
    data = AircallTranscription.model_validate(payload("transcription.created")["data"])
    assert t.transcript_text(data, "Marta Silva") == (
        "Marta Silva: Good morning, Lisbon guest line, Marta speaking.\n"
        "Guest: Hi, it's Oliver Bennett, booking HM4KQZ8X2T. Our flight is delayed, we'll land around ten.\n"
        "Marta Silva: No problem, I'll send you the self check-in code by message."
    )
    assert t.transcript_text(data, None).startswith("Agent: Good morning")  # type: ignore[union-attr]
    assert t.transcript_text(AircallTranscription(call_id=1), None) is None


def test_long_transcripts_are_truncated() -> None:
    data = AircallTranscription.model_validate(
        {"call_id": 1, "content": {"utterances": [{"participant_type": "external", "text": "x" * 30_000}]}}
    )
    text = t.transcript_text(data, None)
    assert text is not None and text.endswith(tpl.TRUNCATED) and len(text) < tpl.MAX_TRANSCRIPT_CHARS + 100


@pytest.mark.parametrize(
    ("data", "call_id"),
    [
        ({"call_id": 2187340091}, 2187340091),
        ({"call_id": "2187340091"}, 2187340091),
        ({"call": {"id": 42}}, 42),
        ({"id": 5}, None),
        ({"call_id": None}, None),
    ],
)
def test_ai_call_id(data: dict[str, Any], call_id: int | None) -> None:
    assert t.ai_call_id(data) == call_id


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
