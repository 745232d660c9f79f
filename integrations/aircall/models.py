"""Typed Aircall payloads: the webhook envelope, the call object, and the AI (transcript, summary) data.

Parse at the edge, then never index raw dicts. Every field Aircall may leave out or null is Optional,
and unknown fields are ignored, since payloads vary by account, plan and API version.
Facts: /work/shared/reference/externals.md §1 (field list of the call object, AI events).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AircallUser(_Model):
    """An Aircall agent (`user`, `assigned_to`, `transferred_by`, `transferred_to`, comment authors)."""

    id: int | str | None = None
    name: str | None = None
    email: str | None = None


class AircallTransferTarget(_Model):
    """Whoever a call was transferred to: a user, a team, or (external transfers) a phone number."""

    id: int | str | None = None
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    digits: str | None = None


class AircallNumber(_Model):
    """The Aircall line the call went through."""

    id: int | None = None
    name: str | None = None
    digits: str | None = None
    e164_digits: str | None = None
    country: str | None = None
    time_zone: str | None = None


class AircallValue(_Model):
    """One phone number or email of an Aircall contact."""

    id: int | None = None
    label: str | None = None
    value: str | None = None


class AircallContact(_Model):
    """The caller as known in Aircall's own address book (null for unknown callers)."""

    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    phone_numbers: list[AircallValue] = Field(default_factory=list)
    emails: list[AircallValue] = Field(default_factory=list)

    @property
    def full_name(self) -> str | None:
        name = " ".join(p.strip() for p in (self.first_name, self.last_name) if p and p.strip())
        return name or None

    @property
    def email(self) -> str | None:
        return next((e.value for e in self.emails if e.value), None)


class AircallTag(_Model):
    id: int | None = None
    name: str | None = None


class AircallComment(_Model):
    id: int | None = None
    content: str | None = None
    posted_at: int | str | None = None  # one source types it as UNIX seconds, another as a string
    posted_by: AircallUser | None = None


class AircallCall(_Model):
    """The call object of call.* webhooks (`data`) and of GET /v1/calls/{id} (`call`)."""

    id: int
    direction: str | None = None  # inbound | outbound
    status: str | None = None  # initial | answered | done
    missed_call_reason: str | None = None
    started_at: int | None = None
    answered_at: int | None = None
    ended_at: int | None = None
    duration: int | None = None
    raw_digits: str | None = None  # international format, or the literal "anonymous"
    asset: str | None = None  # durable https://assets.aircall.io/{recording|voicemail}/{id}
    recording: str | None = None  # presigned, expires within the hour: never stored
    voicemail: str | None = None  # presigned, expires within the hour: never stored
    archived: bool | None = None
    hangup_cause: str | None = None
    user: AircallUser | None = None
    assigned_to: AircallUser | None = None
    transferred_by: AircallUser | None = None
    transferred_to: AircallTransferTarget | None = None
    contact: AircallContact | None = None
    number: AircallNumber | None = None
    tags: list[AircallTag] | None = None
    comments: list[AircallComment] | None = None


class AircallUtterance(_Model):
    participant_type: str | None = None  # external | internal | ai_voice_agent
    user_id: int | str | None = None
    text: str | None = None
    start_time: float | None = None
    end_time: float | None = None


class AircallTranscriptContent(_Model):
    language: str | None = None
    utterances: list[AircallUtterance] = Field(default_factory=list)


class AircallTranscription(_Model):
    """`data` of transcription.created, or `transcription` of GET /v1/calls/{id}/transcription.

    Webhook deliveries may carry only the ids; the content is then read from the API.
    """

    id: int | None = None
    call_id: int | None = None
    call: dict[str, Any] | None = None
    content: AircallTranscriptContent | None = None


class AircallSummary(_Model):
    """`data` of summary.created, or `summary` of GET /v1/calls/{id}/summary."""

    id: int | None = None
    call_id: int | None = None
    call: dict[str, Any] | None = None
    content: str | None = None


class AircallWebhook(_Model):
    """The five-key envelope of every Aircall webhook (the route drops `token` before storing it)."""

    resource: str | None = None
    event: str
    timestamp: int
    token: str | None = None
    data: dict[str, Any]
