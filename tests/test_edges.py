"""Clean edges: whatever a sender puts in a request, the webhook routes answer 2xx or a 4xx with a reason,
never a 5xx (which tells Chatwoot, Aircall and Svix to retry something that can never succeed).

The named cases pin the reasons; the property tests throw a few hundred generated bodies and headers,
signed and unsigned, at each route.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bot.service.app import create_app
from integrations.chatwoot.verify import sign
from tests.conftest import load_fixture, make_settings

CHATWOOT_SECRET = "bot-secret-for-tests"
AIRCALL_TOKEN = "4f6c2a9e81d34b7a9c05e2d1b8a7f310"
GUESTY_SECRET = "whsec_c2lkZWNhci1leGFtcGxlLXNpZ25pbmcta2V5LTAwMDE="
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The app under test runs in TestClient's thread while Hypothesis draws the next body; when its connection
# pool opens a connection it draws an expiry jitter from the global `random` (psycopg_pool), which Hypothesis
# reports as a strategy using `random`. Our strategies do not.
POOL_JITTER = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


@pytest.fixture
def client(clean_db: str, queue_name: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(clean_db, queue_name)), raise_server_exceptions=False) as c:
        yield c


def chatwoot_headers(body: bytes, *, delivery: bytes = b"d-1") -> dict[str, bytes]:
    ts = int(time.time())
    return {
        "x-chatwoot-timestamp": str(ts).encode(),
        "x-chatwoot-signature": sign(body, CHATWOOT_SECRET, ts).encode(),
        "x-chatwoot-delivery": delivery,
        "content-type": b"application/json",
    }


def guesty_headers(body: bytes, *, msg_id: bytes = b"msg_1") -> dict[str, bytes]:
    """Svix's signature, computed by hand so bodies that are not UTF-8 can be signed too."""
    ts = str(int(time.time())).encode()
    key = base64.b64decode(GUESTY_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, msg_id + b"." + ts + b"." + body, hashlib.sha256).digest()
    return {"svix-id": msg_id, "svix-timestamp": ts, "svix-signature": b"v1," + base64.b64encode(digest)}


def refused(resp: Any, status: int, reason: str) -> None:
    assert resp.status_code == status, resp.text
    assert reason in resp.json()["error"]


# ------------------------------------------------------------------------------------------- named cases


def test_deeply_nested_json_to_aircall_is_400_before_the_token_check(client: TestClient) -> None:
    refused(client.post("/webhooks/aircall", content=b"[" * 100_000 + b"]" * 100_000), 400, "nested deeper")


def test_json_nested_past_64_levels_is_refused_even_when_python_could_parse_it(client: TestClient) -> None:
    payload: Any = {"event": "message_created", "id": 1}
    for _ in range(70):
        payload = {"x": payload}
    body = json.dumps(payload).encode()
    refused(
        client.post("/webhooks/chatwoot", content=body, headers=chatwoot_headers(body)),
        400,
        "nested deeper than 64 levels",
    )


def test_non_ascii_chatwoot_signature_is_401_not_a_type_error(client: TestClient) -> None:
    body = json.dumps(load_fixture("chatwoot/message_created.agent_reply.json")).encode()
    headers = dict(chatwoot_headers(body), **{"x-chatwoot-signature": "sha256=é".encode("latin-1")})
    refused(client.post("/webhooks/chatwoot", content=body, headers=headers), 401, "signature does not match")


def test_chatwoot_timestamp_in_other_digits_is_not_a_unix_time(client: TestClient) -> None:
    body = b'{"event": "message_created"}'
    headers = dict(chatwoot_headers(body), **{"x-chatwoot-timestamp": " 17"})
    refused(client.post("/webhooks/chatwoot", content=body, headers=headers), 401, "not a unix time")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"\xff\xfe\xfd", "not valid UTF-8"),
        (b"[1, 2]", "must be an object, not an array"),
        (b'"message_created"', "must be an object, not a string"),
        (b'{"event": "message_created", "id": NaN}', "NaN is not JSON"),
        (b'{"event": "message_created", "id": 1e999}', "out of range"),
        (b'{"event": "message_created", "content": "a\\u0000b"}', "NUL"),
        (b'{"event": "message_created", "content": "\\ud800"}', "unpaired surrogates"),
        (b'{"event": "message_created", "id": ' + b"9" * 5000 + b"}", "malformed JSON"),
        (b'{"event": 7, "id": 1}', "'event' must be a string"),
        (b'{"id": 1}', "missing 'event'"),
        (b'{"event": "message_created", "id": "12"}', "'id' must be an integer id"),
        (b'{"event": "message_created", "id": 1.5}', "'id' must be an integer id"),
        (b'{"event": "message_created", "id": true}', "'id' must be an integer id"),
        (b'{"event": "message_created", "id": 9223372036854775808}', "'id' must be an integer id"),
        (b'{"event": "message_created", "id": 1, "conversation": [57]}', "'conversation' must be an object"),
        (b'{"event": "message_created", "id": 1, "conversation": {"id": "57"}}', "'conversation.id' must be"),
        (b'{"event": "' + b"x" * 200 + b'", "id": 1}', "1 to 128 characters"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_signed_but_malformed_chatwoot_delivery_is_400_with_a_reason(
    client: TestClient, body: bytes, reason: str
) -> None:
    refused(client.post("/webhooks/chatwoot", content=body, headers=chatwoot_headers(body)), 400, reason)


def test_an_absurd_content_length_is_413_not_a_value_error(client: TestClient) -> None:
    resp = client.post("/webhooks/aircall", content=b"{}", headers={"content-length": "9" * 5000})
    refused(resp, 413, "body larger than 1000000 bytes")


def test_huge_chatwoot_delivery_id_is_400_not_an_index_error(client: TestClient) -> None:
    body = b'{"event": "conversation_resolved", "id": 5}'
    resp = client.post("/webhooks/chatwoot", content=body, headers=chatwoot_headers(body, delivery=b"d" * 8000))
    refused(resp, 400, "delivery's id is longer than 512 characters")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event": ["call.ended"]}, "'event' must be a string"),
        ({"data": [1]}, "'data' must be an object"),
        ({"data": None}, "missing 'data'"),
        ({"timestamp": "yesterday"}, "'timestamp' must be unix seconds"),
        ({"resource": 3}, "'resource' must be a string"),
        ({"data": {"id": 1.5}}, "'data.id' must be the call's integer id"),
        ({"data": {"id": "abc"}}, "'data.id' must be the call's integer id"),
        ({"data": {"id": 2**64}}, "'data.id' must be the call's integer id"),
        ({"event": "user.created", "resource": "user", "data": {"id": {"x": 1}}}, "'data.id' must be an integer or"),
        (
            {"event": "transcription.created", "resource": "conversation_intelligence", "data": {"call_id": "12a"}},
            "'data.call_id' must be an integer id",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_authentic_but_malformed_aircall_delivery_is_400_with_a_reason(
    client: TestClient, change: dict[str, Any], reason: str
) -> None:
    payload = dict(load_fixture("aircall/call.ended.json"), **change)
    refused(client.post("/webhooks/aircall", json=payload), 400, reason)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "must be an object"),
        (b'{"event": {"a": 1}}', "'event' must be a string"),
        (b"{}", "missing 'event'"),
        (b"\xc3\x28", "not valid UTF-8"),
    ],
)
def test_signed_but_malformed_guesty_delivery_is_400_with_a_reason(
    client: TestClient, body: bytes, reason: str
) -> None:
    refused(client.post("/webhooks/guesty", content=body, headers=guesty_headers(body)), 400, reason)


# ------------------------------------------------------------------------------------------- generated input

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "\x00", "é", "💬", "9" * 30, "message_created", "call.ended"])
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=10,
)
special_bodies = st.sampled_from(
    [
        b"",
        b" ",
        b"null",
        b"NaN",
        b"-Infinity",
        b'{"a": 1e999}',
        b'{"a": "\\u0000"}',
        b'{"a": "\\udfff"}',
        b"\xff\xfe{\x00}\x00",
        b"\xef\xbb\xbf{}",
        b'{"a": 1',
        b"{" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b"[" * 50_000 + b"]" * 50_000,
        b'{"event": "' + b"e" * 2000 + b'"}',
        b'{"id": ' + b"1" * 4400 + b"}",
    ]
)
header_text = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F)) | st.sampled_from(
    [b"", b"sha256=", "é".encode("latin-1"), b"9" * 5000, b"-1", b"1e10", b"v1,", b"v1,@@@"]
)


def mutated(fixture: str, keys: list[str]) -> st.SearchStrategy[bytes]:
    """The fixture with one field (top level or one level down) replaced by any JSON value, or dropped."""
    base = load_fixture(fixture)

    def apply(key: str, value: Any, drop: bool) -> bytes:
        payload = copy.deepcopy(base)
        outer, _, inner = key.partition(".")
        target = payload.setdefault(outer, {}) if inner else payload
        if inner and not isinstance(target, dict):
            return json.dumps(payload).encode()
        name = inner or outer
        if drop:
            target.pop(name, None)
        else:
            target[name] = value
        return json.dumps(payload).encode()

    return st.builds(apply, st.sampled_from(keys), json_values, st.booleans())


def bodies(fixture: str, keys: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        json_values.map(lambda v: json.dumps(v).encode()),
        special_bodies,
        mutated(fixture, keys),
    )


def assert_clean(resp: Any) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert resp.json()["error"]


@POOL_JITTER
@PROPERTY
@given(
    body=bodies(
        "chatwoot/message_created.incoming_audio_webwidget.json",
        ["event", "id", "conversation", "conversation.id", "sender", "attachments", "message_type"],
    ),
    signed=st.booleans(),
    headers=st.dictionaries(
        st.sampled_from(["x-chatwoot-signature", "x-chatwoot-timestamp", "x-chatwoot-delivery"]), header_text
    ),
    token=st.sampled_from(["", "/url-token", "/%C3%A9", "/%ED%A0%80"]),
)
def test_chatwoot_route_never_answers_5xx(
    client: TestClient, body: bytes, signed: bool, headers: dict[str, bytes], token: str
) -> None:
    sent = chatwoot_headers(body, delivery=headers.get("x-chatwoot-delivery", b"d-1")) if signed else headers
    assert_clean(client.post(f"/webhooks/chatwoot{token}", content=body, headers=sent))


@POOL_JITTER
@PROPERTY
@given(
    body=bodies(
        "aircall/call.ended.json",
        ["event", "data", "data.id", "timestamp", "resource", "token", "data.call_id", "data.user"],
    )
)
def test_aircall_route_never_answers_5xx(client: TestClient, body: bytes) -> None:
    assert_clean(client.post("/webhooks/aircall", content=body))


@POOL_JITTER
@PROPERTY
@given(
    body=bodies(
        "guesty/reservation.updated-canceled.json",
        ["event", "reservation", "reservation._id", "reservation.status", "reservation.listingId"],
    ),
    signed=st.booleans(),
    msg_id=header_text,
    headers=st.dictionaries(
        st.sampled_from(["svix-id", "svix-timestamp", "svix-signature", "webhook-id"]), header_text
    ),
)
def test_guesty_route_never_answers_5xx(
    client: TestClient, body: bytes, signed: bool, msg_id: bytes, headers: dict[str, bytes]
) -> None:
    sent = guesty_headers(body, msg_id=msg_id or b"msg_1") if signed else headers
    assert_clean(client.post("/webhooks/guesty", content=body, headers=sent))
