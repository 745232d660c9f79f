"""Typed models of Chatwoot's Agent Bot webhook payloads: parse once at the edge, then use attributes.

Shapes follow /work/shared/reference/chatwoot.md §2 (4.15.1, with drift back to 4.10): every field
that some version or channel leaves out is Optional, unknown fields are ignored (the raw contact
inbox carries the widget's pubsub_token; we deliberately do not model it).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

SenderKind = Literal["contact", "user", "agent_bot", "captain_assistant", "unknown"]

MESSAGE_EVENTS = frozenset({"message_created", "message_updated"})
CONVERSATION_EVENTS = frozenset(
    {"conversation_opened", "conversation_resolved", "conversation_status_changed", "conversation_updated"}
)
WEBWIDGET_EVENTS = frozenset({"webwidget_triggered"})
EVENT_TYPES = MESSAGE_EVENTS | CONVERSATION_EVENTS | WEBWIDGET_EVENTS

# REST and conversation.messages[] use the enum integer; the top-level webhook field uses the name.
MESSAGE_TYPE_NAMES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}

# Widget direct uploads may arrive labelled `image` without a content type, so the file name decides.
AUDIO_EXTENSIONS = frozenset({"mp3", "m4a", "ogg", "oga", "opus", "wav", "webm", "aac", "amr", "mpga", "flac"})


class MalformedPayload(ValueError):
    """The body is not a Chatwoot webhook payload we can read (answer 400)."""


class UnknownEvent(ValueError):
    """A well-formed payload for an event we do not handle (acknowledge and ignore)."""

    def __init__(self, event: str | None) -> None:
        super().__init__(f"unsupported Chatwoot event {event!r}")
        self.event = event


def _none_to_dict(value: Any) -> Any:
    return {} if value is None else value


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


def _message_type_name(value: Any) -> Any:
    return MESSAGE_TYPE_NAMES.get(value, str(value)) if isinstance(value, int) else value


JsonObject = Annotated[dict[str, Any], BeforeValidator(_none_to_dict)]
MessageType = Annotated[str | None, BeforeValidator(_message_type_name)]
Timestamp = int | float | str | None  # Chatwoot mixes ISO strings, Unix ints and a float updated_at


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ref(_Model):
    """`{id, name}` as used for account and inbox."""

    id: int | None = None
    name: str | None = None


class Sender(_Model):
    """A message sender or conversation participant: contact, user, agent bot or Captain assistant.

    Contact#webhook_data has no `type`; the push form used in conversation.meta says "contact".
    """

    id: int | None = None
    name: str | None = None
    type: str | None = None
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    available_name: str | None = None
    thumbnail: str | None = None
    avatar_url: str | None = None
    blocked: bool | None = None
    custom_attributes: JsonObject = Field(default_factory=dict)
    additional_attributes: JsonObject = Field(default_factory=dict)

    @property
    def kind(self) -> SenderKind:
        """Who this is; a missing `type` means a contact (that is how Chatwoot serialises one)."""
        if self.type is None:
            return "contact"
        kind = self.type.lower()
        if kind in ("contact", "user", "agent_bot", "captain_assistant"):
            return kind  # type: ignore[return-value]
        return "unknown"


class Attachment(_Model):
    """One attachment; `content_type` only since 4.13, `extension` often null before."""

    id: int | None = None
    message_id: int | None = None
    file_type: str | None = None
    account_id: int | None = None
    extension: str | None = None
    content_type: str | None = None
    data_url: str | None = None
    thumb_url: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    transcribed_text: str | None = None
    fallback_title: str | None = None

    @property
    def file_extension(self) -> str | None:
        """`extension`, or the suffix of the file name in data_url (lower-case, no dot)."""
        if self.extension:
            return self.extension.lower().lstrip(".")
        if self.data_url:
            suffix = PurePosixPath(urlsplit(self.data_url).path).suffix
            return suffix[1:].lower() or None
        return None

    @property
    def is_audio(self) -> bool:
        """Audio by file_type, else by content type, else (no content type) by file extension."""
        if self.file_type == "audio":
            return True
        if self.content_type:
            return self.content_type.lower().startswith("audio/")
        return self.file_type != "video" and self.file_extension in AUDIO_EXTENSIONS


class ContactInbox(_Model):
    """The contact's link to the inbox (the raw row; pubsub_token intentionally not kept)."""

    id: int | None = None
    contact_id: int | None = None
    inbox_id: int | None = None
    source_id: str | None = None
    hmac_verified: bool | None = None


class ConversationMeta(_Model):
    """conversation.meta; `channel` only in REST responses (GET conversation), not in webhooks."""

    sender: Sender | None = None
    channel: str | None = None
    assignee: Sender | None = None
    assignee_type: str | None = None
    team: JsonObject | None = None
    hmac_verified: bool | None = None


class LastMessage(_Model):
    """An entry of conversation.messages[]: the latest public message, not necessarily this event's."""

    id: int | None = None
    content: str | None = None
    message_type: MessageType = None
    content_type: str | None = None
    private: bool | None = None
    created_at: Timestamp = None
    sender_type: str | None = None
    sender_id: int | None = None
    sender: Sender | None = None
    attachments: Annotated[list[Attachment], BeforeValidator(_none_to_list)] = Field(default_factory=list)


class Conversation(_Model):
    """Conversation#webhook_data. `id` is the display id, the one used in API URLs."""

    id: int
    status: str | None = None
    inbox_id: int | None = None
    channel: str | None = None
    can_reply: bool | None = None
    labels: Annotated[list[str], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    meta: ConversationMeta | None = None
    contact_inbox: ContactInbox | None = None
    messages: Annotated[list[LastMessage], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    custom_attributes: JsonObject = Field(default_factory=dict)
    additional_attributes: JsonObject = Field(default_factory=dict)
    priority: str | None = None
    snoozed_until: Timestamp = None
    unread_count: int | None = None
    waiting_since: Timestamp = None
    first_reply_created_at: Timestamp = None
    agent_last_seen_at: Timestamp = None
    contact_last_seen_at: Timestamp = None
    last_activity_at: Timestamp = None
    timestamp: Timestamp = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    account: Ref | None = None  # 4.15+

    @property
    def assignee_type(self) -> str | None:
        return self.meta.assignee_type if self.meta else None

    @property
    def contact_id(self) -> int | None:
        """The conversation's contact (meta.sender), else the contact inbox's contact."""
        if self.meta and self.meta.sender and self.meta.sender.id is not None:
            return self.meta.sender.id
        return self.contact_inbox.contact_id if self.contact_inbox else None


class MessageEvent(_Model):
    """message_created / message_updated (Message#webhook_data + event)."""

    event: Literal["message_created", "message_updated"]
    id: int
    content: str | None = None
    message_type: MessageType = None
    content_type: str | None = None
    content_attributes: JsonObject = Field(default_factory=dict)
    additional_attributes: JsonObject = Field(default_factory=dict)
    private: bool | None = None
    source_id: str | None = None
    created_at: Timestamp = None
    sender: Sender | None = None
    conversation: Conversation
    inbox: Ref | None = None
    account: Ref | None = None
    attachments: Annotated[list[Attachment], BeforeValidator(_none_to_list)] = Field(default_factory=list)

    @property
    def conversation_id(self) -> int:
        """Display id of the conversation (for API URLs)."""
        return self.conversation.id

    @property
    def sender_kind(self) -> SenderKind:
        """The sender's kind; "unknown" when the message has no sender."""
        return self.sender.kind if self.sender else "unknown"

    @property
    def is_from_contact(self) -> bool:
        """An incoming message not sent by a user or bot (incoming messages are the contact's)."""
        return self.message_type == "incoming" and self.sender_kind not in ("user", "agent_bot", "captain_assistant")

    @property
    def is_private(self) -> bool:
        return self.private is True

    @property
    def contact_id(self) -> int | None:
        """The conversation's contact: the sender when it is one, else from the conversation."""
        if self.sender and self.sender.kind == "contact" and self.sender.id is not None:
            return self.sender.id
        return self.conversation.contact_id

    @property
    def inbox_id(self) -> int | None:
        return (
            self.conversation.inbox_id
            if self.conversation.inbox_id is not None
            else (self.inbox.id if self.inbox else None)
        )

    @property
    def text(self) -> str:
        """The content as plain text: HTML (sent by Chatwoot 4.9–4.12.0 for widget/email) is stripped,
        line breaks kept."""
        return html_to_text(self.content) if self.content else ""

    @property
    def audio_attachments(self) -> list[Attachment]:
        return [attachment for attachment in self.attachments if attachment.is_audio]


class ChangedValue(_Model):
    previous_value: Any = None
    current_value: Any = None


class ConversationEvent(Conversation):
    """conversation_opened / resolved / status_changed / updated (Conversation#webhook_data + event).

    `changed_attributes` is a list of {attribute: {previous_value, current_value}}; expect null on
    status events (reference §2.4) and compare with stored state instead.
    """

    event: Literal[
        "conversation_opened", "conversation_resolved", "conversation_status_changed", "conversation_updated"
    ]
    changed_attributes: list[dict[str, ChangedValue]] | None = None

    @property
    def conversation_id(self) -> int:
        return self.id

    def changed(self, attribute: str) -> ChangedValue | None:
        """The change of one attribute (e.g. "label_list", "status"), if reported."""
        for change in self.changed_attributes or []:
            if attribute in change:
                return change[attribute]
        return None


class EventInfo(_Model):
    referer: str | None = None
    widget_language: str | None = None
    browser_language: str | None = None
    initiated_at: JsonObject | None = None
    browser: JsonObject | None = None


class WebwidgetTriggered(_Model):
    """webwidget_triggered: the visitor opened the widget (ContactInbox#webhook_data + event_info)."""

    event: Literal["webwidget_triggered"]
    id: int | None = None  # the contact inbox id
    contact: Sender | None = None
    inbox: Ref | None = None
    account: Ref | None = None
    current_conversation: Conversation | None = None
    source_id: str | None = None
    event_info: EventInfo | None = None

    @property
    def contact_id(self) -> int | None:
        return self.contact.id if self.contact else None


Event = MessageEvent | ConversationEvent | WebwidgetTriggered


def parse_event(payload: Any) -> Event:
    """Turn a decoded agent-bot delivery into its model.

    Raises UnknownEvent for events we do not handle and MalformedPayload for anything unreadable;
    the message names the bad fields but never echoes values (payloads hold contact data and tokens).
    """
    if not isinstance(payload, dict):
        raise MalformedPayload(f"expected a JSON object, got {type(payload).__name__}")
    event = payload.get("event")
    if not isinstance(event, str):
        raise MalformedPayload("payload has no 'event' string")
    model: type[Event]
    if event in MESSAGE_EVENTS:
        model = MessageEvent
    elif event in CONVERSATION_EVENTS:
        model = ConversationEvent
    elif event in WEBWIDGET_EVENTS:
        model = WebwidgetTriggered
    else:
        raise UnknownEvent(event)
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise MalformedPayload(f"malformed {event} payload: {problems}") from None


# ------------------------------------------------------------------------------- HTML content

_HTML_TAG = re.compile(
    r"</?(p|br|div|span|strong|b|em|i|u|s|a|ul|ol|li|h[1-6]|blockquote|pre|code|table"
    r"|tr|td|th|img|hr)\b[^>]*>",
    re.IGNORECASE,
)
_BLOCK_TAGS = frozenset(
    {"p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"}
)
_LINE_TAGS = frozenset({"br", "li", "tr"})
_SKIP_TAGS = frozenset({"script", "style", "head", "title"})


def looks_like_html(text: str) -> bool:
    """True when the text contains common HTML tags (not just a stray '<' in a guest's message)."""
    return bool(_HTML_TAG.search(text))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "pre":
            self._pre += 1
            self.parts.append("\n\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS:
            self.parts.append("\n- " if tag == "li" else "\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINE_TAGS or tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self.parts.append("\n\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        # Outside <pre>, source newlines are just spaces in HTML; breaks come from tags.
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(content: str) -> str:
    """Plain text from message content: unchanged unless it looks like HTML, else tags stripped,
    entities decoded, <br>/<li> as line breaks and paragraphs separated by a blank line."""
    if not looks_like_html(content):
        return content
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
