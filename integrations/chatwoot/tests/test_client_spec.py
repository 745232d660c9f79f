"""The spec validator (integrations/chatwoot/tests/spec.py) accepts what Chatwoot accepts and rejects the rest.

These show it can fail: a validator that passes everything would make the client tests worthless.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from integrations.chatwoot.tests.spec import (
    BODY_GAPS,
    GAP_1_BOT_ACCESS,
    GAP_8_IGNORED_PATHS,
    assert_all_valid,
    operations,
    validate_request,
)

ROOT = "https://chat.acme.test/api/v1/accounts/1"
BOT = "bot-token"
USER = "user-token"


def req(
    method: str,
    path: str,
    *,
    token: str | None = USER,
    json: Any = None,
    params: Any = None,
    data: dict[str, str] | None = None,
    files: Any = None,
    content: bytes | None = None,
) -> httpx.Request:
    headers = {"api_access_token": token} if token else {}
    return httpx.Request(
        method, ROOT + path, headers=headers, json=json, params=params, data=data, files=files, content=content
    )


def rejected(request: httpx.Request, reason: str, *, bot_token: str | None = BOT) -> None:
    with pytest.raises(AssertionError, match=reason):
        validate_request(request, bot_token=bot_token)


def accepted(request: httpx.Request, *, bot_token: str | None = BOT) -> None:
    validate_request(request, bot_token=bot_token)


VOICE = [("attachments[]", ("r.ogg", b"OggS", "audio/ogg"))]


# ------------------------------------------------------------------------ paths and methods


def test_unknown_path_is_rejected() -> None:
    rejected(req("GET", "/conversations/57/transcript"), "no such path in Chatwoot's API spec")


def test_method_not_in_spec_is_rejected() -> None:
    rejected(req("DELETE", "/conversations/57/labels"), r"method not in the spec \(allowed: GET, POST\)")


def test_non_integer_path_parameter_is_rejected() -> None:
    rejected(req("POST", "/conversations/abc/messages", json={"content": "hi"}), "no such path")


def test_literal_path_wins_over_a_template() -> None:
    accepted(req("GET", "/contacts/search", params={"q": "jane"}))  # not /contacts/{id}


def test_path_without_the_api_prefix_is_not_a_real_endpoint() -> None:  # gap 8
    assert GAP_8_IGNORED_PATHS
    request = httpx.Request(
        "GET", "https://chat.acme.test/accounts/1/conversations/57/messages", headers={"api_access_token": USER}
    )
    rejected(request, "no such path")


def test_base_path_prefix_is_stripped() -> None:
    request = httpx.Request(
        "GET", "https://acme.test/cw/api/v1/accounts/1/conversations/57/labels", headers={"api_access_token": BOT}
    )
    validate_request(request, bot_token=BOT, base_path="/cw")
    with pytest.raises(AssertionError, match="does not start with /other"):
        validate_request(request, base_path="/other")


# --------------------------------------------------------------------------------- tokens


def test_missing_token_is_rejected() -> None:
    rejected(req("GET", "/conversations/57", token=None), "no api_access_token header")


def test_bot_token_on_user_only_endpoint_is_rejected() -> None:
    rejected(req("GET", "/contacts/search", token=BOT, params={"q": "jane"}), "refuses this endpoint to bot tokens")
    rejected(req("GET", "/conversations/57/messages", token=BOT), "refuses this endpoint to bot tokens")
    accepted(req("GET", "/conversations/57/messages", token=USER))


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/conversations/57"), ("GET", "/conversations/57/labels"), ("POST", "/conversations/57/labels")],
)
def test_gap_1_bot_token_may_read_conversation_and_labels(method: str, path: str) -> None:
    assert len(GAP_1_BOT_ACCESS) == 4
    json = {"labels": ["vip"]} if method == "POST" else None
    accepted(req(method, path, token=BOT, json=json))


# ------------------------------------------------------------------------------ JSON bodies


def test_message_type_banana_is_rejected() -> None:
    rejected(
        req(
            "POST",
            "/conversations/57/messages",
            token=BOT,
            json={"content": "hi", "message_type": "banana", "private": False},
        ),
        "message_type: 'banana' is not one of",
    )


def test_unknown_body_key_is_rejected() -> None:
    rejected(
        req("POST", "/conversations/57/messages", token=BOT, json={"content": "hi", "privat": True}),
        r"Additional properties are not allowed \('privat' was unexpected\)",
    )


def test_wrong_type_is_rejected() -> None:
    rejected(
        req("POST", "/conversations/57/messages", token=BOT, json={"content": "hi", "private": "no"}),
        "private: 'no' is not of type 'boolean'",
    )


def test_body_that_is_not_json_is_rejected() -> None:
    request = httpx.Request(
        "POST",
        ROOT + "/conversations/57/toggle_status",
        content=b"status=open",
        headers={"api_access_token": BOT, "content-type": "application/json"},
    )
    rejected(request, "body is not JSON")


def test_unsupported_content_type_is_rejected() -> None:
    request = httpx.Request(
        "POST",
        ROOT + "/conversations/57/toggle_status",
        content=b"status=open",
        headers={"api_access_token": BOT, "content-type": "application/x-www-form-urlencoded"},
    )
    rejected(request, "content type 'application/x-www-form-urlencoded' not accepted")


def test_body_on_a_get_is_rejected() -> None:
    rejected(req("GET", "/conversations/57", json={"x": 1}), "defines no request body")


def test_missing_required_body_is_rejected() -> None:
    rejected(req("POST", "/conversations/57/labels", token=BOT), "request body required")


def test_gap_6_message_without_content_and_with_echo_id_is_accepted() -> None:
    accepted(
        req(
            "POST",
            "/conversations/57/messages",
            token=BOT,
            json={"message_type": "outgoing", "content_attributes": {}, "echo_id": "e1"},
        )
    )
    accepted(
        req("POST", "/conversations/57/messages", token=BOT, json={"content": "Rate us", "content_type": "input_csat"})
    )


def test_gap_3_toggle_status_without_status_is_accepted_but_bad_status_is_not() -> None:
    accepted(req("POST", "/conversations/57/toggle_status", token=BOT, json={}))
    rejected(
        req("POST", "/conversations/57/toggle_status", token=BOT, json={"status": "closed"}),
        "status: 'closed' is not one of",
    )


def test_gap_4_priority_null_is_accepted_and_none_is_rejected() -> None:
    accepted(req("POST", "/conversations/57/toggle_priority", token=BOT, json={"priority": None}))
    rejected(
        req("POST", "/conversations/57/toggle_priority", token=BOT, json={"priority": "none"}),
        "priority: 'none' is not one of",
    )


def test_gap_9_create_contact_without_inbox_and_with_source_id() -> None:
    accepted(req("POST", "/contacts", json={"name": "Jane"}))
    accepted(req("POST", "/contacts", json={"name": "Jane", "inbox_id": 4, "source_id": "8f3c"}))
    rejected(
        req("POST", "/contacts", json={"name": "Jane", "inbox_id": "four"}), "inbox_id: 'four' is not of type 'number'"
    )


def test_gap_11_search_needs_a_non_blank_q_and_no_unknown_parameters() -> None:
    rejected(req("GET", "/contacts/search", params={"page": 1}), "required query parameter 'q' missing")
    rejected(req("GET", "/contacts/search", params={"q": "  "}), "query parameter q does not match")
    rejected(req("GET", "/contacts/search", params={"q": "jane", "per_page": 50}), "unknown query parameter")
    rejected(req("GET", "/contacts/search", params={"q": "jane", "page": "two"}), "query parameter page")


def test_gap_11_filter_conditions() -> None:
    condition = {"attribute_key": "email", "filter_operator": "equal_to", "values": ["a@b.test"]}
    accepted(req("POST", "/contacts/filter", json={"payload": [condition]}))
    accepted(req("POST", "/contacts/filter", json={"payload": [{**condition, "query_operator": None}]}))
    rejected(
        req("POST", "/contacts/filter", json={"payload": [{**condition, "filter_operator": "equals"}]}),
        "'equals' is not one of",
    )
    rejected(
        req("POST", "/contacts/filter", json={"payload": [{"attribute_key": "email", "values": ["x"]}]}),
        "'filter_operator' is a required property",
    )
    rejected(req("POST", "/contacts/filter", json={}), "'payload' is a required property")


def test_gap_12_conversation_without_source_id_needs_inbox_and_contact() -> None:
    accepted(req("POST", "/conversations", json={"inbox_id": 4, "contact_id": 813}))
    accepted(req("POST", "/conversations", json={"source_id": "8f3c", "inbox_id": 4}))
    rejected(req("POST", "/conversations", json={"inbox_id": 4}), "'contact_id' is a required property")


def test_every_body_gap_names_an_operation_that_exists() -> None:
    known = {(op.method, op.template) for op in operations()}
    for gap in BODY_GAPS:
        assert (gap.method, gap.template) in known, gap
    for method, template in GAP_1_BOT_ACCESS:
        assert (method, template) in known


# ------------------------------------------------------------------------- multipart bodies


def test_gap_7_multipart_with_voice_flag_is_accepted() -> None:
    accepted(
        req(
            "POST",
            "/conversations/57/messages",
            token=BOT,
            files=VOICE,
            data={"message_type": "outgoing", "private": "false", "is_voice_message": "true"},
        )
    )


def test_multipart_content_attributes_as_json_string_is_accepted() -> None:
    accepted(
        req(
            "POST",
            "/conversations/57/messages",
            token=BOT,
            files=VOICE,
            data={"content": "x", "content_attributes": '{"a": 1}'},
        )
    )


@pytest.mark.parametrize(
    ("data", "files", "reason"),
    [
        ({"message_type": "banana"}, VOICE, "message_type: 'banana' is not one of"),
        ({"is_voice_message": "yes"}, VOICE, "form field 'is_voice_message' = 'yes' does not fit"),
        ({"private": "0"}, VOICE, "form field 'private'"),
        ({"voice": "true"}, VOICE, "unknown form field 'voice'"),
        ({"attachments[]": "not-a-file"}, VOICE, "form field 'attachments\\[\\]' must be a file"),
        ({"content": "x"}, [("content", ("c.txt", b"x", "text/plain"))], "form field 'content' is a file"),
        ({}, [("attachment", ("r.ogg", b"OggS", "audio/ogg"))], "unknown form field 'attachment'"),
    ],
)
def test_bad_multipart_messages_are_rejected(data: dict[str, str], files: Any, reason: str) -> None:
    rejected(req("POST", "/conversations/57/messages", token=BOT, data=data, files=files), reason)


# ------------------------------------------------------------------------ assert_all_valid


async def test_assert_all_valid_checks_every_recorded_call() -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(ROOT + "/conversations/57/messages").respond(200, json={})
        router.get(ROOT + "/conversations/57/labels").respond(200, json={"payload": []})
        async with httpx.AsyncClient() as http:
            await http.get(ROOT + "/conversations/57/labels", headers={"api_access_token": BOT})
            await http.post(
                ROOT + "/conversations/57/messages",
                headers={"api_access_token": BOT},
                json={"content": "hi", "message_type": "banana"},
            )
        with pytest.raises(AssertionError, match="banana"):
            assert_all_valid(router, bot_token=BOT)


def test_assert_all_valid_fails_when_nothing_was_sent() -> None:
    with respx.mock() as router, pytest.raises(AssertionError, match="no request was recorded"):
        assert_all_valid(router)
