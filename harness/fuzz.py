"""Fuzz the three webhook routes with hypothesis-generated bodies and headers, counting 5xx answers.

Bodies: the valid payload with fields replaced by wrong types or removed, arbitrary JSON (NaN,
Infinity, NUL characters, lone surrogates), deeply nested arrays/objects, truncated JSON, raw bytes.
Headers: correctly signed, unsigned, garbage or stale signatures, and extra headers with non-ASCII
values. Every request is sent; the route's answer is only counted, never asserted, so one run
reports every kind of 5xx it meets (with a sample of each kind for the report).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.payloads import aircall_call, chatwoot_signature, guest_message, guesty_headers, guesty_reservation
from harness.sidecar import AIRCALL_TOKEN

SPECIAL_STRINGS = ("\u0000", "\ud800", "\udfff\ud800", "é", "\u202e", "💥" * 50, "", " ", "null", "9" * 400)
EVENTS = (
    "message_created",
    "message_updated",
    "conversation_status_changed",
    "webwidget_triggered",
    "call.created",
    "call.ended",
    "reservation.new",
    "listing.updated",
    "",
)

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(SPECIAL_STRINGS)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.sampled_from(EVENTS), inner, max_size=4)
    ),
    max_leaves=16,
)


@dataclass
class Case:
    body: bytes
    sign: str  # valid | none | garbage | stale
    extra_headers: list[tuple[bytes, bytes]]
    obj: Any = None  # the JSON object before serialization, when there was one


@dataclass
class Tally:
    endpoint: str
    sent: int = 0
    unsendable: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    samples: dict[int, str] = field(default_factory=dict)  # a 5xx status -> a short sample body

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)


def _mutate(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The valid payload with one field (top level or one level down) replaced or removed."""
    paths = [(k,) for k in base] + [(k, sub) for k, v in base.items() if isinstance(v, dict) for sub in v]

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        doc = json.loads(json.dumps(base))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            parent = doc
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            if not isinstance(parent, dict):
                continue
            if draw(st.booleans()):
                parent[path[-1]] = draw(json_values)
            else:
                parent.pop(path[-1], None)
        return doc

    return mutated()


def _deep(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"event":"message_created","id":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


def _header_value() -> st.SearchStrategy[bytes]:
    text = st.text(st.characters(min_codepoint=0x20, categories=("L", "M", "N", "P", "S", "Zs")), max_size=40).map(
        str.strip
    )
    return text.map(lambda s: s.encode("utf-8"))


@st.composite
def cases(draw: st.DrawFn, base: dict[str, Any]) -> Case:
    kind = draw(st.sampled_from(["mutate", "mutate", "object", "any", "deep", "truncated", "bytes"]))
    obj: Any = None
    if kind == "mutate":
        obj = draw(_mutate(base))
    elif kind == "object":
        obj = draw(
            st.dictionaries(
                st.text(max_size=10) | st.sampled_from(["event", "id", "data", "token"]), json_values, max_size=6
            )
        )
        obj.setdefault("event", draw(st.sampled_from(EVENTS) | json_values))
    elif kind == "any":
        obj = draw(json_values)
    if obj is not None:
        text = json.dumps(obj, allow_nan=True, ensure_ascii=draw(st.booleans()))
        body = text.encode("utf-8", "surrogatepass")
    elif kind == "deep":
        body = _deep(draw(st.integers(100, 200_000)), draw(st.sampled_from(["array", "object"])))
    elif kind == "truncated":
        full = json.dumps(base).encode()
        body = full[: draw(st.integers(0, len(full) - 1))]
    else:
        body = draw(st.binary(max_size=300))
    extra = draw(
        st.lists(
            st.tuples(st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z").map(str.encode), _header_value()), max_size=3
        )
    )
    if draw(st.booleans()):
        extra.append(
            (
                b"content-type",
                draw(
                    st.sampled_from(
                        [b"text/plain", b"application/json; charset=latin-1", "application/jsön".encode(), b""]
                    )
                ),
            )
        )
    sign = draw(st.sampled_from(["valid", "valid", "none", "garbage", "stale"]))
    return Case(body, sign, extra, obj)


def _chatwoot_headers(case: Case) -> list[tuple[bytes, bytes]]:
    ts = int(time.time()) - (3600 if case.sign == "stale" else 0)
    headers = [(b"x-chatwoot-delivery", str(uuid.uuid4()).encode())]
    if case.sign in ("valid", "stale"):
        headers += [
            (b"x-chatwoot-timestamp", str(ts).encode()),
            (b"x-chatwoot-signature", chatwoot_signature(case.body, ts).encode()),
        ]
    elif case.sign == "garbage":
        headers += [(b"x-chatwoot-timestamp", "١٧٠٠٠٠٠٠٠٠".encode()), (b"x-chatwoot-signature", "sha256=ü".encode())]
    return headers


def _guesty_headers(case: Case) -> list[tuple[bytes, bytes]]:
    if case.sign == "none":
        return []
    headers = guesty_headers(case.body)
    if case.sign == "garbage":
        headers["svix-signature"] = "v1,ü=="
    elif case.sign == "stale":
        headers["svix-timestamp"] = str(int(time.time()) - 3600)
    return [(k.encode(), v.encode("utf-8")) for k, v in headers.items() if k != "content-type"]


def _aircall_body(case: Case) -> bytes:
    """Aircall signs nothing: the token travels in the body, so "valid" puts the right token there."""
    if not isinstance(case.obj, dict) or case.sign == "none":
        return case.body
    doc = dict(case.obj)
    doc["token"] = AIRCALL_TOKEN if case.sign in ("valid", "stale") else ["ü", 1]
    return json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")


def fuzz_endpoint(base_url: str, endpoint: str, examples: int, seed: int = 0) -> Tally:
    """Send `examples` generated requests to one webhook route."""
    bases: dict[str, dict[str, Any]] = {
        "chatwoot": guest_message(880_001, 9_880_001, 48_001, "What time is check-out?"),
        "aircall": aircall_call(77_001),
        "guesty": guesty_reservation("res-harness-1"),
    }
    tally = Tally(endpoint)
    client = httpx.Client(timeout=10)
    url = f"{base_url}/webhooks/{endpoint}"

    def send(case: Case) -> None:
        body = _aircall_body(case) if endpoint == "aircall" else case.body
        headers = [(b"content-type", b"application/json")]
        if endpoint == "chatwoot":
            headers += _chatwoot_headers(Case(body, case.sign, []))
        elif endpoint == "guesty":
            headers += _guesty_headers(Case(body, case.sign, []))
        headers += case.extra_headers
        failure = ""
        try:
            status = client.post(url, content=body, headers=headers).status_code
        except httpx.LocalProtocolError:
            tally.unsendable += 1  # httpx refused to send it: not the service's doing
            return
        except httpx.HTTPError as exc:
            status, failure = 0, type(exc).__name__
        tally.sent += 1
        tally.statuses[status] += 1
        if (status >= 500 or status == 0) and status not in tally.samples:
            tally.samples[status] = f"{failure or case.sign} {body[:100]!r}"

    probe: Callable[..., None] = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(given(case=cases(bases[endpoint]))(send))
    try:
        probe()
    finally:
        client.close()
    return tally
