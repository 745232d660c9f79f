"""Pure Aircall logic: merge call events into one record, and turn the record into notes and follow-ups.

Nothing here does I/O, and every word posted comes from templates.py. handlers.py feeds it the stored
record and the parsed event, then performs the steps it returns through the Chatwoot client and the
bot_replies ledger.

Merging. Aircall delivers at least once and in any order, and each call event carries the whole call
"as it stood at `timestamp`". The record keeps the newest snapshot (by envelope timestamp, ties broken
by the event's place in a call's life) for fields that may change, and aggregates the rest so they only
move forward: status never goes back (initial < answered < done), the answer time is the earliest seen,
the duration the longest, and the missed-call reason, media links and transcripts stick once known.
The same events therefore give the same record whatever order they arrive in (given Aircall's complete
call objects; a field missing from a payload is taken as "no news", not as a change).

Notes. Each fact is posted once, under its own ledger key ("aircall:<call id>:<part>"): the outcome of
the call, its recording, its voicemail, each comment, each tag, each transfer, the AI transcript and the
AI summary. A note may carry a fact that has its own key (the outcome note includes the recording link
when it is already known); that key is then marked as posted too, so the link is never repeated.
When the outcome is posted: missed calls on `call.hungup` (so someone calls back at once), answered and
outbound calls on `call.ended` (final duration, usually the recording), voicemails on
`call.voicemail_left`; whichever comes first, rendered from the merged record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from integrations.aircall import templates as tpl
from integrations.aircall.models import (
    AircallCall,
    AircallComment,
    AircallSummary,
    AircallTranscription,
    AircallTransferTarget,
    AircallUser,
)
from integrations.chatwoot.contacts import display_phone, normalize_phone

# ------------------------------------------------------------------------------------------ events

# A call's events in the order they happen; used to order events stamped with the same second.
CALL_EVENTS: tuple[str, ...] = (
    "call.created",
    "call.ringing_on_agent",
    "call.agent_declined",
    "call.ivr_option_selected",
    "call.assigned",
    "call.answered",
    "call.hold",
    "call.unhold",
    "call.transferred",
    "call.external_transferred",
    "call.unsuccessful_transfer",
    "call.tagged",
    "call.untagged",
    "call.commented",
    "call.hungup",
    "call.voicemail_left",
    "call.ended",
    "call.comm_assets_generated",
    "call.archived",
)
AI_EVENTS: tuple[str, ...] = ("transcription.created", "summary.created")
API_SNAPSHOT = "api.call"  # a call read from the REST API (when an AI event arrives before the call)
EVENT_RANK = {name: rank for rank, name in enumerate(CALL_EVENTS)}
STATUS_RANK = {"initial": 0, "answered": 1, "done": 2}

PRESIGNED_FIELDS = ("recording", "recording_short_url", "voicemail", "voicemail_short_url")

Outcome = Literal["answered", "missed", "voicemail", "outbound_answered", "outbound_unanswered"]
OUTCOME_TEMPLATES: dict[str, str] = {
    "answered": tpl.ANSWERED,
    "outbound_answered": tpl.OUTBOUND_ANSWERED,
    "outbound_unanswered": tpl.OUTBOUND_UNANSWERED,
    "missed": tpl.MISSED,
    "voicemail": tpl.MISSED_WITH_VOICEMAIL,
}

# ------------------------------------------------------------------------------------------ record


@dataclass(frozen=True)
class CallState:
    """One row of call_records, as the merge sees it."""

    aircall_call_id: int
    direction: str | None = None
    status: str | None = None
    missed_call_reason: str | None = None
    caller_e164: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    agent_name: str | None = None
    recording_asset_url: str | None = None
    voicemail_asset_url: str | None = None
    voicemail_transcript: str | None = None
    tags: tuple[str, ...] = ()
    chatwoot_contact_id: int | None = None
    chatwoot_conversation_id: int | None = None
    last_event: str | None = None
    last_event_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    ai_transcript: str | None = None
    ai_summary: str | None = None

    @property
    def line_name(self) -> str | None:
        number = self.raw.get("number")
        name = number.get("name") if isinstance(number, dict) else None
        return name if isinstance(name, str) and name.strip() else None

    @property
    def caller(self) -> str:
        return display_phone(self.caller_e164) if self.caller_e164 else "an anonymous caller"

    @property
    def has_call(self) -> bool:
        """Whether any call event (or API snapshot) was merged, not just AI output."""
        return self.last_event is not None


@dataclass(frozen=True)
class CallSnapshot:
    """What one call event says about its call; `present` names the fields the payload carried."""

    aircall_call_id: int
    event: str
    at: datetime
    present: frozenset[str]
    direction: str | None = None
    status: str | None = None
    missed_call_reason: str | None = None
    caller_e164: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    agent_name: str | None = None
    recording_asset_url: str | None = None
    voicemail_asset_url: str | None = None
    tags: tuple[str, ...] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def snapshot(call: AircallCall, event: str, timestamp: int, data: dict[str, Any] | None = None) -> CallSnapshot:
    """The record fields one call event carries; `data` is the raw call object, kept (without its
    presigned media URLs) as the record's `raw`."""
    given = call.model_fields_set
    present = {
        name
        for name, source in (
            ("direction", "direction"),
            ("status", "status"),
            ("missed_call_reason", "missed_call_reason"),
            ("caller_e164", "raw_digits"),
            ("started_at", "started_at"),
            ("answered_at", "answered_at"),
            ("ended_at", "ended_at"),
            ("duration_s", "duration"),
            ("agent_name", "user"),
            ("tags", "tags"),
        )
        if source in given
    }
    recording, voicemail = media_assets(call)
    return CallSnapshot(
        aircall_call_id=call.id,
        event=event,
        at=from_unix(timestamp),
        present=frozenset(present),
        direction=call.direction,
        status=call.status,
        missed_call_reason=call.missed_call_reason,
        caller_e164=normalize_phone(call.raw_digits),
        started_at=_ts(call.started_at),
        answered_at=_ts(call.answered_at),
        ended_at=_ts(call.ended_at),
        duration_s=call.duration,
        agent_name=call.user.name if call.user else None,
        recording_asset_url=recording,
        voicemail_asset_url=voicemail,
        tags=tuple(t.name for t in call.tags if t.name) if call.tags is not None else None,
        raw=storable(data if data is not None else call.model_dump(mode="json", exclude_unset=True)),
    )


def media_assets(call: AircallCall) -> tuple[str | None, str | None]:
    """The durable (recording, voicemail) page links of a call; never the presigned mp3 URLs.

    `asset` is https://assets.aircall.io/{recording|voicemail}/{id}. When it is missing but a presigned
    URL shows the media exists, the same durable link is built from the call id.
    """
    recording = voicemail = None
    if call.asset:
        if "/voicemail" in call.asset or (call.voicemail and not call.recording):
            voicemail = call.asset
        else:
            recording = call.asset
    if recording is None and call.recording:
        recording = f"https://assets.aircall.io/recording/{call.id}"
    if voicemail is None and call.voicemail:
        voicemail = f"https://assets.aircall.io/voicemail/{call.id}"
    return recording, voicemail


def storable(data: dict[str, Any]) -> dict[str, Any]:
    """A call payload without its expiring media URLs (and without a token, should one be there)."""
    return {k: v for k, v in data.items() if k not in PRESIGNED_FIELDS and k != "token"}


def merge(state: CallState | None, snap: CallSnapshot) -> CallState:
    """Fold one event into the record so that the result does not depend on arrival order."""
    old = state or CallState(aircall_call_id=snap.aircall_call_id)
    newer = old.last_event_at is None or _order(snap.event, snap.at) >= _order(old.last_event, old.last_event_at)

    def latest(name: str, *, fill: bool = False) -> Any:
        mine, theirs = getattr(old, name), getattr(snap, name)
        if name not in snap.present:
            return mine
        if newer or (fill and mine is None):
            return theirs
        return mine

    status = old.status
    if snap.status is not None and (
        status is None
        or STATUS_RANK.get(snap.status, -1) > STATUS_RANK.get(status, -1)
        or (newer and STATUS_RANK.get(snap.status, -1) == STATUS_RANK.get(status, -1))
    ):
        status = snap.status
    reason = old.missed_call_reason
    if snap.missed_call_reason is not None and (reason is None or newer):
        reason = snap.missed_call_reason
    tags = latest("tags")
    return replace(
        old,
        direction=latest("direction", fill=True),
        status=status,
        missed_call_reason=reason,
        caller_e164=latest("caller_e164", fill=True),
        started_at=latest("started_at", fill=True),
        answered_at=_least(old.answered_at, snap.answered_at),
        ended_at=latest("ended_at"),
        duration_s=_greatest(old.duration_s, snap.duration_s),
        agent_name=latest("agent_name"),
        recording_asset_url=old.recording_asset_url or snap.recording_asset_url,
        voicemail_asset_url=old.voicemail_asset_url or snap.voicemail_asset_url,
        tags=tags if tags is not None else (),
        last_event=snap.event if newer else old.last_event,
        last_event_at=snap.at if newer else old.last_event_at,
        raw=snap.raw if newer else old.raw,
    )


def outcome(state: CallState) -> Outcome | None:
    """How the call went, once it is over (None while it is still going on)."""
    if state.status != "done" and state.ended_at is None and state.voicemail_asset_url is None:
        return None
    if state.direction == "outbound":
        return "outbound_answered" if state.answered_at else "outbound_unanswered"
    if state.voicemail_asset_url:
        return "voicemail"
    return "answered" if state.answered_at else "missed"


def talk_seconds(state: CallState) -> int | None:
    """Time spent talking: answer to hang-up (Aircall's `duration` includes the ringing)."""
    if state.answered_at and state.ended_at:
        return max(int((state.ended_at - state.answered_at).total_seconds()), 0)
    return state.duration_s


# ------------------------------------------------------------------------------------------- steps


def reply_key(call_id: int, *parts: object) -> str:
    """Ledger key of one fact about a call: "aircall:2187340091:comment:7781200"."""
    return ":".join(["aircall", str(call_id), *(str(p) for p in parts)])


@dataclass(frozen=True)
class NoteStep:
    """A private note. `extras` are lines carrying facts with their own keys, added while not yet posted."""

    key: str
    text: str
    extras: tuple[tuple[str, str], ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *(k for k, _ in self.extras))

    def render(self, open_keys: set[str] | frozenset[str]) -> tuple[str, tuple[str, ...]] | None:
        """(content, keys it covers) given the keys not posted yet; None when the note was posted."""
        if self.key not in open_keys:
            return None
        extras = [(k, line) for k, line in self.extras if k in open_keys]
        return "\n".join([self.text, *(line for _, line in extras)]), (self.key, *(k for k, _ in extras))


@dataclass(frozen=True)
class FollowUpPart:
    key: str
    labels: tuple[str, ...]
    priority: str | None = None


@dataclass(frozen=True)
class FollowUpStep:
    """Make sure someone calls back: open the conversation, label it, raise its priority."""

    parts: tuple[FollowUpPart, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parts)

    def render(
        self, open_keys: set[str] | frozenset[str]
    ) -> tuple[tuple[str, ...], str | None, tuple[str, ...]] | None:
        """(labels, priority, keys covered) for the parts not done yet; None when all are done."""
        todo = [p for p in self.parts if p.key in open_keys]
        if not todo:
            return None
        labels = tuple(dict.fromkeys(label for p in todo for label in p.labels))
        priority = next((p.priority for p in todo if p.priority), None)
        return labels, priority, tuple(p.key for p in todo)


@dataclass(frozen=True)
class ContactStep:
    """Record the call on the contact (custom attributes; Chatwoot merges them)."""

    key: str
    custom_attributes: dict[str, str]

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,)


Step = NoteStep | FollowUpStep | ContactStep


def plan_call_event(event: str, state: CallState, call: AircallCall, timestamp: int) -> list[Step]:
    """The notes and follow-ups a call event calls for, rendered from the merged record."""
    cid = state.aircall_call_id
    result = outcome(state)
    steps: list[Step] = []
    posts_outcome = result is not None and _posts_outcome(event, result)
    if result is not None and posts_outcome:
        steps.append(outcome_note(state, result))
    if event in ("call.ended", "call.comm_assets_generated", "call.voicemail_left"):
        if state.recording_asset_url:
            steps.append(
                NoteStep(
                    reply_key(cid, "recording"),
                    tpl.RECORDING_NOTE.format(caller=state.caller, url=state.recording_asset_url),
                )
            )
        if state.voicemail_asset_url:
            steps.append(NoteStep(reply_key(cid, "voicemail"), _voicemail_text(state, standalone=True)))
    if event in ("call.ended", "call.commented"):
        steps.extend(comment_note(cid, c) for c in call.comments or [] if c.id is not None and c.content)
    if event in ("call.ended", "call.tagged"):
        steps.extend(
            NoteStep(reply_key(cid, "tag", t.id), tpl.TAG_NOTE.format(tag=t.name))
            for t in call.tags or []
            if t.id is not None and t.name
        )
    if event in ("call.transferred", "call.external_transferred", "call.unsuccessful_transfer"):
        steps.append(NoteStep(reply_key(cid, event, timestamp), transfer_text(event, call)))
    if result in ("missed", "voicemail") and event in (
        "call.hungup",
        "call.voicemail_left",
        "call.ended",
        "call.comm_assets_generated",
    ):
        steps.append(follow_up(state, result))
    if result is not None and posts_outcome:
        steps.append(contact_step(state, result))
    return steps


def _posts_outcome(event: str, result: Outcome) -> bool:
    if event == "call.ended":
        return True
    if event == "call.hungup":
        return result in ("missed", "voicemail")
    return event == "call.voicemail_left"


def outcome_note(state: CallState, result: Outcome) -> NoteStep:
    """The note saying how the call went, with the recording or voicemail when already known."""
    cid = state.aircall_call_id
    line = tpl.LINE.format(line=state.line_name) if state.line_name else ""
    line_from = tpl.LINE_FROM.format(line=state.line_name) if state.line_name else ""
    agent = state.agent_name or tpl.UNKNOWN_AGENT
    talk = tpl.format_duration(talk_seconds(state))
    reason = tpl.missed_reason(state.missed_call_reason)
    text = OUTCOME_TEMPLATES[result].format(
        caller=state.caller, line=line, line_from=line_from, agent=agent, talk=talk, reason=reason
    )
    extras: list[tuple[str, str]] = []
    if state.recording_asset_url and result != "voicemail":
        extras.append((reply_key(cid, "recording"), tpl.RECORDING_PART.format(url=state.recording_asset_url)))
    if state.voicemail_asset_url:
        extras.append((reply_key(cid, "voicemail"), _voicemail_text(state, standalone=False)))
    return NoteStep(reply_key(cid, "outcome"), text, tuple(extras))


def _voicemail_text(state: CallState, *, standalone: bool) -> str:
    url = state.voicemail_asset_url or ""
    text = tpl.VOICEMAIL_NOTE.format(caller=state.caller, url=url) if standalone else tpl.VOICEMAIL_PART.format(url=url)
    if state.voicemail_transcript:
        text += "\n" + tpl.TRANSCRIPT_PART.format(text=state.voicemail_transcript.strip())
    return text


def comment_note(call_id: int, comment: AircallComment) -> NoteStep:
    author = comment.posted_by.name if comment.posted_by and comment.posted_by.name else None
    content = (comment.content or "").strip()
    text = (
        tpl.COMMENT_NOTE.format(author=author, content=content)
        if author
        else tpl.COMMENT_NOTE_ANONYMOUS.format(content=content)
    )
    return NoteStep(reply_key(call_id, "comment", comment.id), text)


def transfer_text(event: str, call: AircallCall) -> str:
    by = f" by {_person(call.transferred_by)}" if _person(call.transferred_by) else ""
    target = _target(call.transferred_to)
    if event == "call.external_transferred":
        return tpl.EXTERNAL_TRANSFERRED.format(by=by, to=f" ({target})" if target else "")
    to = f" to {target}" if target else ""
    if event == "call.unsuccessful_transfer":
        return tpl.TRANSFER_FAILED.format(by=by, to=to)
    return tpl.TRANSFERRED.format(by=by, to=to)


def follow_up(state: CallState, result: Outcome) -> FollowUpStep:
    cid = state.aircall_call_id
    parts = [FollowUpPart(reply_key(cid, "follow-up", "missed"), (tpl.MISSED_LABEL,))]
    if result == "voicemail":
        parts.append(
            FollowUpPart(reply_key(cid, "follow-up", "voicemail"), (tpl.VOICEMAIL_LABEL,), tpl.VOICEMAIL_PRIORITY)
        )
    return FollowUpStep(tuple(parts))


def contact_step(state: CallState, result: Outcome) -> ContactStep:
    when = state.started_at or state.ended_at or state.last_event_at
    attributes: dict[str, str] = {}
    if when is not None:
        attributes["last_call_at"] = iso(when)
    attributes["last_call_outcome"] = result
    return ContactStep(reply_key(state.aircall_call_id, "contact", result), attributes)


def plan_transcription(state: CallState) -> list[Step]:
    if not state.ai_transcript:
        return []
    return [
        NoteStep(
            reply_key(state.aircall_call_id, "ai-transcript"),
            tpl.AI_TRANSCRIPT_NOTE.format(caller=state.caller, transcript=state.ai_transcript),
        )
    ]


def plan_summary(state: CallState) -> list[Step]:
    if not state.ai_summary:
        return []
    return [
        NoteStep(
            reply_key(state.aircall_call_id, "ai-summary"),
            tpl.AI_SUMMARY_NOTE.format(caller=state.caller, summary=state.ai_summary),
        )
    ]


def transcript_text(transcription: AircallTranscription, agent_name: str | None) -> str | None:
    """Speaker-labelled lines, consecutive turns of one speaker joined; None when there is no text."""
    if transcription.content is None:
        return None
    lines: list[tuple[str, str]] = []
    for turn in transcription.content.utterances:
        text = (turn.text or "").strip()
        if not text:
            continue
        speaker = {"external": tpl.GUEST_SPEAKER, "ai_voice_agent": tpl.AI_AGENT_SPEAKER}.get(
            turn.participant_type or "", agent_name or tpl.AGENT_SPEAKER
        )
        if lines and lines[-1][0] == speaker:
            lines[-1] = (speaker, f"{lines[-1][1]} {text}")
        else:
            lines.append((speaker, text))
    if not lines:
        return None
    joined = "\n".join(f"{speaker}: {text}" for speaker, text in lines)
    if len(joined) > tpl.MAX_TRANSCRIPT_CHARS:
        joined = joined[: tpl.MAX_TRANSCRIPT_CHARS].rstrip() + tpl.TRUNCATED
    return joined


def summary_text(summary: AircallSummary) -> str | None:
    text = (summary.content or "").strip()
    return text or None


def ai_call_id(data: dict[str, Any]) -> int | None:
    """The call an AI payload is about: `call_id`, else `call.id`."""
    for value in (
        data.get("call_id"),
        (data.get("call") or {}).get("id") if isinstance(data.get("call"), dict) else None,
    ):
        if isinstance(value, int | str) and str(value).isdigit():
            return int(value)
    return None


# ----------------------------------------------------------------------------------------- helpers


def from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(seconds: int | None) -> datetime | None:
    return from_unix(seconds) if seconds else None


def _order(event: str | None, at: datetime | None) -> tuple[datetime, int]:
    return (at or datetime.min.replace(tzinfo=UTC), EVENT_RANK.get(event or "", -1))


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _greatest(a: int | None, b: int | None) -> int | None:
    return max((x for x in (a, b) if x is not None), default=None)


def _person(user: AircallUser | None) -> str | None:
    return user.name if user and user.name else None


def _target(target: AircallTransferTarget | None) -> str | None:
    if target is None:
        return None
    if target.name:
        return target.name
    number = target.phone_number or target.digits
    return display_phone(normalize_phone(number) or number) if number else None
