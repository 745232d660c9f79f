"""Agent Bot webhook payloads parse into the models, across versions and channels."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from integrations.chatwoot.models import (
    Attachment,
    ConversationEvent,
    MalformedPayload,
    MessageEvent,
    UnknownEvent,
    WebwidgetTriggered,
    html_to_text,
    parse_event,
)

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_FIXTURES = Path(os.environ.get("SIDECAR_SHARED", Path(__file__).resolve().parents[4] / "shared")) / (
    "fixtures/chatwoot"
)
WEBHOOK_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("api_response"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def message(name: str = "message_created.incoming_audio_webwidget.json", **changes: Any) -> MessageEvent:
    payload = load(name)
    payload.update(changes)
    event = parse_event(payload)
    assert isinstance(event, MessageEvent)
    return event


# ------------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_every_webhook_fixture_parses_into_the_model_for_its_event(name: str) -> None:
    payload = load(name)
    expected = {"message": MessageEvent, "conversation": ConversationEvent, "webwidget": WebwidgetTriggered}
    event = parse_event(payload)
    assert type(event) is expected[name.split("_")[0]]
    assert event.event == payload["event"] == name.split(".")[0]


def test_local_fixture_copies_match_the_shared_ones() -> None:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("shared fixtures not present")
    for path in FIXTURES.glob("*.json"):
        assert json.loads(path.read_text()) == json.loads((SHARED_FIXTURES / path.name).read_text()), path.name


def test_shared_fixtures_that_are_not_deliveries_are_refused_as_malformed() -> None:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("shared fixtures not present")
    names = sorted(p.name for p in SHARED_FIXTURES.glob("*.json"))
    not_events = [n for n in names if n.startswith(("http_request", "api_response"))]
    assert not_events == ["api_response.create_message.json", "http_request.agent_bot_delivery.json"]
    for name in not_events:
        with pytest.raises(MalformedPayload, match="no 'event'"):
            parse_event(json.loads((SHARED_FIXTURES / name).read_text()))
    assert sorted(set(names) - set(not_events)) == WEBHOOK_FIXTURES


# ---------------------------------------------------------------------------------- messages


def test_incoming_widget_voice_note_is_from_the_contact_with_one_audio_attachment() -> None:
    event = message()
    assert event.event == "message_created"
    assert event.id == 9120
    assert event.message_type == "incoming"
    assert event.is_from_contact is True
    assert event.is_private is False
    assert event.sender_kind == "contact"
    assert event.conversation_id == 57
    assert event.contact_id == 812
    assert event.inbox_id == 3
    assert event.text == ""
    assert event.content_attributes == {"in_reply_to": None}
    assert event.conversation.status == "pending"
    assert event.conversation.channel == "Channel::WebWidget"
    assert event.conversation.contact_inbox is not None
    assert event.conversation.contact_inbox.source_id == "6b1f0d2e-5a8c-4f7e-9d41-2c3b8a7e9f10"
    assert event.conversation.meta is not None and event.conversation.meta.sender is not None
    assert event.conversation.meta.sender.kind == "contact"
    assert event.account is not None and event.account.name == "Acme Support"
    [audio] = event.audio_attachments
    assert (audio.id, audio.file_type, audio.content_type, audio.file_extension, audio.file_size) == (
        3310,
        "audio",
        "audio/mpeg",
        "mp3",
        48213,
    )
    assert audio.data_url is not None and audio.data_url.endswith("/voice-note.mp3?disposition=inline")


def test_pubsub_token_of_the_contact_inbox_is_not_kept() -> None:
    event = message()
    assert "Xk3pQ9mW2vR7tY5nB8cJ4hLd" not in event.model_dump_json()


def test_transcribed_update_carries_the_transcript_on_the_attachment() -> None:
    event = message("message_updated.audio_transcribed.json")
    assert event.event == "message_updated"
    assert [a.transcribed_text for a in event.audio_attachments] == [
        "Hallo, ich möchte unser Abo auf den Team-Tarif upgraden. Geht das heute noch?"
    ]


def test_bot_echo_is_outgoing_from_the_agent_bot() -> None:
    event = message("message_created.agent_bot_reply.json")
    assert (event.message_type, event.sender_kind, event.is_from_contact) == ("outgoing", "agent_bot", False)
    assert event.contact_id == 812  # the guest, from conversation.meta.sender
    assert event.text.startswith("Danke für die Sprachnachricht!")


def test_agent_reply_is_from_a_user_in_an_open_assigned_conversation() -> None:
    event = message("message_created.agent_reply.json")
    assert (event.sender_kind, event.is_from_contact, event.is_private) == ("user", False, False)
    assert event.conversation.status == "open"
    assert event.conversation.assignee_type == "User"
    assert event.conversation.meta is not None and event.conversation.meta.assignee is not None
    assert event.conversation.meta.assignee.kind == "user"


def test_private_note_text_is_top_level_content_not_the_last_public_message() -> None:
    event = message("message_created.private_note.json")
    assert event.is_private is True
    assert event.text == "Kunde will Team-Tarif. Vorher Rechnung INV-2291 prüfen (offener Betrag)."
    assert [m.id for m in event.conversation.messages] == [9121]  # the previous public message
    assert event.conversation.messages[0].message_type == "outgoing"  # integer 1 in the payload


def test_html_content_from_chatwoot_4_10_is_turned_into_plain_text_with_line_breaks() -> None:
    html = "<p>Hallo,<br>\nich habe eine Frage &amp; eine Bitte.</p>\n<p>Wann ist <strong>Check-in</strong>?</p>\n"
    event = message(content=html)
    assert event.content == html
    assert event.text == "Hallo,\nich habe eine Frage & eine Bitte.\n\nWann ist Check-in?"


def test_html_lists_become_dashed_lines() -> None:
    assert html_to_text("<p>Bitte:</p>\n<ul>\n<li>Handtücher</li>\n<li>Föhn</li>\n</ul>\n") == (
        "Bitte:\n\n- Handtücher\n- Föhn"
    )


@pytest.mark.parametrize(
    "content",
    [
        "Ich <3 eure Wohnung",
        "Preis < 100 € und > 50 €?",
        "**fett**\nzweite Zeile",
        "Tag <name> ersetzen",
    ],
)
def test_plain_text_and_markdown_are_left_alone(content: str) -> None:
    assert message(content=content).text == content


def test_sender_null_is_unknown_kind_and_contact_comes_from_the_conversation() -> None:
    event = message("message_created.agent_reply.json", sender=None)
    assert event.sender is None
    assert event.sender_kind == "unknown"
    assert event.is_from_contact is False  # outgoing
    assert event.contact_id == 812


def test_integer_message_type_is_read_as_its_name() -> None:
    assert message(message_type=0).message_type == "incoming"
    assert message(message_type=3).message_type == "template"


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ({"id": 9, "name": "Captain", "type": "captain_assistant"}, "captain_assistant"),
        ({"id": 2, "name": "Ada", "type": "agent_bot"}, "agent_bot"),
        ({"id": 5, "name": "Maria", "type": "user"}, "user"),
        ({"id": 812, "name": "Guest", "type": "contact"}, "contact"),
        ({"id": 812, "name": "Guest"}, "contact"),
        ({"id": 1, "type": "platform_app"}, "unknown"),
    ],
)
def test_sender_kind(sender: dict[str, Any], kind: str) -> None:
    event = message(sender=sender)
    assert event.sender_kind == kind
    assert event.is_from_contact is (kind in ("contact", "unknown"))


def test_minimal_message_with_only_required_fields_gets_empty_defaults() -> None:
    event = parse_event({"event": "message_created", "id": 1, "conversation": {"id": 2}})
    assert isinstance(event, MessageEvent)
    assert (event.content, event.message_type, event.private, event.sender, event.inbox) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert (event.text, event.attachments, event.audio_attachments, event.content_attributes) == ("", [], [], {})
    assert (event.conversation_id, event.contact_id, event.inbox_id, event.is_from_contact) == (2, None, None, False)
    assert event.conversation.labels == [] and event.conversation.meta is None


def test_nulls_in_list_and_object_fields_become_empty() -> None:
    payload = load("message_created.incoming_audio_webwidget.json")
    payload.update(attachments=None, content_attributes=None)
    payload["conversation"].update(labels=None, custom_attributes=None, messages=None)
    event = parse_event(payload)
    assert isinstance(event, MessageEvent)
    assert (event.attachments, event.content_attributes) == ([], {})
    assert (event.conversation.labels, event.conversation.custom_attributes, event.conversation.messages) == (
        [],
        {},
        [],
    )


def test_4_10_payload_without_attachment_content_type_or_extension_or_account() -> None:
    payload = load("message_created.incoming_audio_webwidget.json")
    for attachment in payload["attachments"]:
        del attachment["content_type"]
        attachment["extension"] = None
    del payload["conversation"]["account"]
    event = parse_event(payload)
    assert isinstance(event, MessageEvent)
    assert event.conversation.account is None
    assert [a.file_extension for a in event.audio_attachments] == ["mp3"]


@pytest.mark.parametrize(
    ("attachment", "is_audio"),
    [
        ({"file_type": "audio"}, True),
        ({"file_type": "image", "content_type": "audio/mp4", "extension": "m4a"}, True),  # widget direct upload
        ({"file_type": "image", "data_url": "https://c.test/rails/active_storage/blobs/redirect/x/memo.M4A"}, True),
        ({"file_type": "image", "extension": "opus"}, True),
        ({"file_type": "file", "extension": "oga"}, True),
        ({"file_type": "image", "content_type": "image/png", "extension": "png"}, False),
        ({"file_type": "image", "content_type": "image/webp", "extension": "ogg"}, False),  # content type wins
        ({"file_type": "video", "extension": "webm"}, False),
        ({"file_type": "file", "content_type": "application/pdf", "extension": "pdf"}, False),
        ({"file_type": "location"}, False),
    ],
)
def test_audio_attachment_detection(attachment: dict[str, Any], is_audio: bool) -> None:
    assert Attachment.model_validate({"id": 1, **attachment}).is_audio is is_audio


# ----------------------------------------------------------------------------- conversations


def test_conversation_resolved() -> None:
    event = parse_event(load("conversation_resolved.json"))
    assert isinstance(event, ConversationEvent)
    assert (event.event, event.conversation_id, event.status, event.inbox_id) == (
        "conversation_resolved",
        57,
        "resolved",
        3,
    )
    assert (event.labels, event.custom_attributes, event.contact_id) == (["upgrade"], {"plan_requested": "team"}, 812)
    assert event.changed_attributes is None


def test_status_changed_has_null_changed_attributes() -> None:
    event = parse_event(load("conversation_status_changed.resolved.json"))
    assert isinstance(event, ConversationEvent)
    assert (event.event, event.status, event.changed_attributes) == ("conversation_status_changed", "resolved", None)
    assert event.changed("status") is None


def test_conversation_updated_reports_the_label_change() -> None:
    event = parse_event(load("conversation_updated.label_added.json"))
    assert isinstance(event, ConversationEvent)
    change = event.changed("label_list")
    assert change is not None
    assert (change.previous_value, change.current_value) == ([], ["upgrade"])
    assert event.changed("status") is None
    assert event.assignee_type == "User"


def test_conversation_opened_with_only_an_id() -> None:
    event = parse_event({"event": "conversation_opened", "id": 12})
    assert isinstance(event, ConversationEvent)
    assert (event.conversation_id, event.status, event.contact_id, event.labels) == (12, None, None, [])


# ------------------------------------------------------------------------------ web widget


def test_webwidget_triggered() -> None:
    event = parse_event(load("webwidget_triggered.json"))
    assert isinstance(event, WebwidgetTriggered)
    assert (event.id, event.contact_id, event.source_id) == (905, 812, "6b1f0d2e-5a8c-4f7e-9d41-2c3b8a7e9f10")
    assert event.current_conversation is None
    assert event.inbox is not None and event.inbox.id == 3
    assert event.event_info is not None
    assert (event.event_info.referer, event.event_info.widget_language) == ("https://www.acme.example/pricing", "de")


def test_webwidget_triggered_with_a_current_conversation() -> None:
    payload = load("webwidget_triggered.json")
    payload["current_conversation"] = load("conversation_resolved.json")
    event = parse_event(payload)
    assert isinstance(event, WebwidgetTriggered)
    assert event.current_conversation is not None and event.current_conversation.id == 57


# ---------------------------------------------------------------------------------- failures


def test_unknown_event_is_reported_separately_from_malformed_payloads() -> None:
    with pytest.raises(UnknownEvent) as raised:
        parse_event({"event": "conversation_typing_on", "conversation": {"id": 1}})
    assert raised.value.event == "conversation_typing_on"
    assert not isinstance(raised.value, MalformedPayload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([{"event": "message_created"}], "expected a JSON object, got list"),
        ({"id": 1}, "no 'event'"),
        ({"event": 5}, "no 'event'"),
        ({"event": "message_created", "id": 1}, "conversation: Field required"),
        ({"event": "message_created", "id": "x", "conversation": {"id": 1}}, "^malformed message_created payload: id:"),
        (
            {"event": "message_created", "id": 1, "conversation": {"id": 1}, "attachments": {"id": 1}},
            "attachments: Input should be a valid list",
        ),
    ],
)
def test_malformed_payloads_are_refused_with_the_field_named(payload: Any, reason: str) -> None:
    with pytest.raises(MalformedPayload, match=reason):
        parse_event(payload)


def test_malformed_payload_error_does_not_echo_values() -> None:
    payload = copy.deepcopy(load("message_created.incoming_audio_webwidget.json"))
    payload["conversation"]["id"] = "secret-guest-token-77"
    with pytest.raises(MalformedPayload) as raised:
        parse_event(payload)
    assert "conversation.id" in str(raised.value)
    assert "secret-guest-token-77" not in str(raised.value)
