"""Check requests our Chatwoot client sends against Chatwoot's own OpenAPI spec (swagger.json, 4.15.1).

`validate_request(request)` raises AssertionError with the reason when the path, method, token,
query or body does not fit the spec. Where the spec is wrong about an endpoint we use,
/work/shared/chatwoot/SPEC-GAPS.md documents what the code really does; each exception is a named
table below carrying its gap number. Stricter than the spec on purpose:
- unknown body keys are rejected (Rails silently drops unpermitted params, so one is a bug of ours);
- unknown query parameters are rejected;
- toggle_priority "none" is rejected (gap 4: the code answers 500) and a blank search `q` too (gap 11).
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema

SWAGGER = Path(__file__).parent / "spec_data" / "swagger.json"  # Chatwoot 4.15.1's bundled spec (SOURCE.txt)

JSON = "application/json"
MULTIPART = "multipart/form-data"

ACCOUNT = "/api/v1/accounts/{account_id}"
CONVERSATION = ACCOUNT + "/conversations/{conversation_id}"
MESSAGES = CONVERSATION + "/messages"
LABELS = CONVERSATION + "/labels"
CONTACTS = ACCOUNT + "/contacts"

# ------------------------------------------------------------------ exceptions from SPEC-GAPS.md

# Gap 1: in 4.15.1 a bot token may call these although the spec lists only userApiKey.
GAP_1_BOT_ACCESS: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", CONVERSATION),
        ("GET", LABELS),
        ("POST", LABELS),
        ("POST", CONVERSATION + "/custom_attributes"),
    }
)

# Gap 6: the 13 content_type values of Message (the spec lists 6).
MESSAGE_CONTENT_TYPES = [
    "text",
    "input_text",
    "input_textarea",
    "input_email",
    "input_select",
    "cards",
    "form",
    "article",
    "incoming_email",
    "input_csat",
    "integrations",
    "sticker",
    "voice_call",
]

# Gap 8: GET messages also appears without the /api/v1 prefix; that path does not exist.
GAP_8_IGNORED_PATHS: frozenset[str] = frozenset(
    {
        "/accounts/{account_id}/conversations/{conversation_id}/messages",
    }
)

# Gap 11 (stricter than the spec): a blank `q` answers 422, so `q` is required and must not be blank.
GAP_11_REQUIRED_QUERY: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", CONTACTS + "/search"): {"q": {"type": "string", "pattern": r"\S"}},
}


@dataclass(frozen=True)
class BodyGap:
    """How the real request body of one operation differs from the spec's schema."""

    gap: int
    method: str
    template: str
    media: str
    not_required: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)  # added or replacing top-level properties
    also: dict[str, Any] | None = None  # an extra schema the body must satisfy too

    def apply(self, schema: dict[str, Any]) -> dict[str, Any]:
        patched = copy.deepcopy(schema)
        patched["required"] = [key for key in patched.get("required", []) if key not in self.not_required]
        patched.setdefault("properties", {}).update(_strict(copy.deepcopy(self.properties)))
        if self.also:
            patched = {"allOf": [patched, self.also]}
        return patched


BODY_GAPS: tuple[BodyGap, ...] = (
    # Gap 3: without `status` the code toggles.
    BodyGap(3, "POST", CONVERSATION + "/toggle_status", JSON, not_required=("status",)),
    # Gap 4: null clears the priority; "none" (in the spec) answers 500, so it is left out.
    BodyGap(
        4,
        "POST",
        CONVERSATION + "/toggle_priority",
        JSON,
        properties={"priority": {"enum": ["urgent", "high", "medium", "low", None]}},
    ),
    # Gap 6: attachment-only messages need no content; accepted but undocumented fields.
    BodyGap(
        6,
        "POST",
        MESSAGES,
        JSON,
        not_required=("content",),
        properties={
            "content_type": {"type": "string", "enum": MESSAGE_CONTENT_TYPES},
            "echo_id": {"type": "string"},
            "source_id": {"type": "string"},
            "external_created_at": {"type": "integer"},
            "sender_type": {"type": "string", "enum": ["AgentBot"]},
            "sender_id": {"type": "integer"},
        },
    ),
    # Gap 7: the form reads is_voice_message (WhatsApp voice notes); gap 6's content types apply too.
    BodyGap(
        7,
        "POST",
        MESSAGES,
        MULTIPART,
        properties={
            "is_voice_message": {"type": "boolean"},
            "content_type": {"type": "string", "enum": MESSAGE_CONTENT_TYPES},
        },
    ),
    # Gap 9: inbox_id is optional in the code, and source_id (for the contact inbox) is accepted.
    BodyGap(9, "POST", CONTACTS, JSON, not_required=("inbox_id",), properties={"source_id": {"type": "string"}}),
    # Gap 11: the last condition's query_operator may be null (or absent); the code reads
    # attribute_key, filter_operator and values from every condition.
    BodyGap(
        11,
        "POST",
        CONTACTS + "/filter",
        JSON,
        properties={
            "payload": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["attribute_key", "filter_operator", "values"],
                    "properties": {
                        "attribute_key": {"type": "string"},
                        "filter_operator": {"enum": ["equal_to", "not_equal_to", "contains", "does_not_contain"]},
                        "values": {"type": "array", "items": {"type": "string"}},
                        "query_operator": {"enum": ["AND", "OR", None]},
                    },
                },
            }
        },
        also={"required": ["payload"]},
    ),
    # Gap 12: source_id may be left out when inbox_id and contact_id are given.
    BodyGap(
        12,
        "POST",
        ACCOUNT + "/conversations",
        JSON,
        not_required=("source_id",),
        also={"if": {"not": {"required": ["source_id"]}}, "then": {"required": ["inbox_id", "contact_id"]}},
    ),
)

# ------------------------------------------------------------------------------ the spec, indexed


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    path_params: dict[str, dict[str, Any]]
    query_params: dict[str, tuple[dict[str, Any], bool]]  # name -> (schema, required)
    bodies: dict[str, dict[str, Any]]  # media type -> resolved schema (gaps applied)
    body_required: bool
    security: frozenset[str]

    @property
    def literal_length(self) -> int:
        """Templates with more fixed text win (contacts/search over contacts/{id})."""
        return len(re.sub(r"\{[^}]+\}", "", self.template))


@cache
def _spec() -> dict[str, Any]:
    return json.loads(SWAGGER.read_text())


def _resolve(node: Any, seen: tuple[str, ...] = ()) -> Any:
    """Inline local $refs (#/components/...); a cyclic reference becomes an empty schema."""
    if isinstance(node, list):
        return [_resolve(item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            return {}
        target: Any = _spec()
        for part in ref.removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _resolve({**target, **siblings}, (*seen, ref))
    return {key: _resolve(value, seen) for key, value in node.items()}


def _strict(schema: Any) -> Any:
    """Forbid undocumented keys in objects that list their properties (not inside allOf/anyOf/oneOf,
    where a part cannot know the other parts' keys)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        out[key] = value if key in ("allOf", "anyOf", "oneOf", "example", "examples") else _strict(value)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


@cache
def operations() -> tuple[Operation, ...]:
    """Every operation of the spec, with the SPEC-GAPS exceptions applied."""
    spec = _spec()
    default_security = frozenset(name for item in spec.get("security", []) for name in item)
    found = []
    for template, item in spec["paths"].items():
        if template in GAP_8_IGNORED_PATHS:
            continue
        shared = _resolve(item.get("parameters", []))
        for method, op in item.items():
            if method == "parameters":
                continue
            params = {(p["in"], p["name"]): p for p in [*shared, *_resolve(op.get("parameters", []))]}
            path_params = {name: p.get("schema", {}) for (where, name), p in params.items() if where == "path"}
            query = {
                name: (p.get("schema", {}), bool(p.get("required")))
                for (where, name), p in params.items()
                if where == "query"
            }
            for name, schema in GAP_11_REQUIRED_QUERY.get((method.upper(), template), {}).items():
                query[name] = (schema, True)
            body = _resolve(op.get("requestBody", {}))
            bodies = {}
            for media, content in body.get("content", {}).items():
                schema = _strict(content.get("schema", {}))
                for gap in BODY_GAPS:
                    if (gap.method, gap.template, gap.media) == (method.upper(), template, media):
                        schema = gap.apply(schema)
                bodies[media] = schema
            security = op.get("security")
            names = frozenset(n for s in security for n in s) if security is not None else default_security
            if (method.upper(), template) in GAP_1_BOT_ACCESS:
                names |= {"agentBotApiKey"}
            found.append(
                Operation(
                    method.upper(),
                    template,
                    _template_regex(template),
                    path_params,
                    query,
                    bodies,
                    bool(body.get("required")),
                    names,
                )
            )
    return tuple(found)


# -------------------------------------------------------------------------------- validation


def validate_request(request: httpx.Request, *, bot_token: str | None = None, base_path: str = "") -> None:
    """Raise AssertionError unless `request` is a call Chatwoot 4.15.1 accepts.

    bot_token: when given and the request carries it, the endpoint must admit bot tokens.
    base_path: a path prefix in front of /api/v1 (when CHATWOOT_URL has one).
    """
    path = request.url.path
    if base_path:
        assert path.startswith(base_path), f"{path} does not start with {base_path}"
        path = path[len(base_path) :]
    op, path_values = _match(request.method, path)
    where = f"{request.method} {op.template}"
    _check_path_params(where, op, path_values)
    _check_token(where, op, request, bot_token)
    _check_query(where, op, request)
    _check_body(where, op, request)


def assert_all_valid(respx_mock: Any, *, bot_token: str | None = None, base_path: str = "") -> int:
    """Validate every call a respx router recorded; returns how many. Fails if there were none,
    so a test cannot pass by accident without sending anything."""
    calls = list(respx_mock.calls)
    assert calls, "no request was recorded"
    for call in calls:
        validate_request(call.request, bot_token=bot_token, base_path=base_path)
    return len(calls)


def _match(method: str, path: str) -> tuple[Operation, dict[str, str]]:
    candidates = []
    for op in operations():
        found = op.pattern.match(path)
        if found and _params_fit(op, found.groupdict()):
            candidates.append((op, found.groupdict()))
    assert candidates, f"{method} {path}: no such path in Chatwoot's API spec"
    for op, values in sorted(candidates, key=lambda c: -c[0].literal_length):
        if op.method == method:
            return op, values
    allowed = sorted({op.method for op, _ in candidates})
    raise AssertionError(f"{method} {path}: method not in the spec (allowed: {', '.join(allowed)})")


def _params_fit(op: Operation, values: dict[str, str]) -> bool:
    return all(_coerce(value, op.path_params.get(name, {})) is not _INVALID for name, value in values.items())


_INVALID = object()


def _coerce(text: str, schema: dict[str, Any]) -> Any:
    """A path/query/form string as the JSON value the schema describes (or _INVALID)."""
    types = schema.get("type", "string")
    types = types if isinstance(types, list) else [types]
    if "integer" in types:
        return int(text) if re.fullmatch(r"-?\d+", text) else _INVALID
    if "number" in types:
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            return _INVALID
    if "boolean" in types:
        return {"true": True, "false": False}.get(text, _INVALID)
    if "object" in types or "array" in types:
        try:
            return json.loads(text)
        except ValueError:
            return _INVALID
    return text


def _check_path_params(where: str, op: Operation, values: dict[str, str]) -> None:
    for name, value in values.items():
        _validate(
            where, f"path parameter {name}", _coerce(value, op.path_params.get(name, {})), op.path_params.get(name, {})
        )


def _check_token(where: str, op: Operation, request: httpx.Request, bot_token: str | None) -> None:
    if not op.security:
        return
    token = request.headers.get("api_access_token")
    assert token, f"{where}: no api_access_token header"
    if bot_token is not None and token == bot_token:
        assert "agentBotApiKey" in op.security, f"{where}: Chatwoot refuses this endpoint to bot tokens"


def _check_query(where: str, op: Operation, request: httpx.Request) -> None:
    seen: set[str] = set()
    for name, value in request.url.params.multi_items():
        assert name in op.query_params, f"{where}: unknown query parameter {name!r}"
        assert name not in seen, f"{where}: query parameter {name!r} repeated"
        seen.add(name)
        schema = op.query_params[name][0]
        _validate(where, f"query parameter {name}", _coerce(value, schema), schema)
    for name, (_, required) in op.query_params.items():
        assert not required or name in seen, f"{where}: required query parameter {name!r} missing"


def _check_body(where: str, op: Operation, request: httpx.Request) -> None:
    content = request.read()
    if not op.bodies:
        assert not content, f"{where}: the spec defines no request body, but one was sent"
        return
    if not content:
        assert not op.body_required, f"{where}: request body required"
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    assert media in op.bodies, f"{where}: content type {media!r} not accepted (spec: {sorted(op.bodies)})"
    schema = op.bodies[media]
    if media == JSON:
        try:
            body = json.loads(content)
        except ValueError as exc:
            raise AssertionError(f"{where}: body is not JSON ({exc})") from None
    elif media == MULTIPART:
        body = _form_fields(where, request.headers["content-type"], content, schema)
    else:
        raise AssertionError(f"{where}: cannot check a {media} body")
    _validate(where, "body", body, schema)


def _form_fields(where: str, content_type: str, content: bytes, schema: dict[str, Any]) -> dict[str, Any]:
    """Decode a multipart body into the values the schema describes (files become their file names)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + content
    )
    assert message.is_multipart(), f"{where}: multipart body could not be parsed"
    properties = schema.get("properties", {})
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str), f"{where}: a form part has no name"
        assert name in properties or schema.get("additionalProperties") is not False, (
            f"{where}: unknown form field {name!r}"
        )
        prop = properties.get(name, {})
        is_array = prop.get("type") == "array"
        item_schema = prop.get("items", {}) if is_array else prop
        filename = part.get_filename()
        if item_schema.get("format") == "binary":
            assert filename is not None, f"{where}: form field {name!r} must be a file"
            value: Any = filename
        else:
            assert filename is None, f"{where}: form field {name!r} is a file but the spec wants a value"
            raw = part.get_payload(decode=True)
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            value = _coerce(text, item_schema)
            assert value is not _INVALID, f"{where}: form field {name!r} = {text!r} does not fit its schema"
        if is_array:
            fields.setdefault(name, []).append(value)
        else:
            assert name not in fields, f"{where}: form field {name!r} repeated"
            fields[name] = value
    return fields


def _validate(where: str, what: str, value: Any, schema: dict[str, Any]) -> None:
    if value is _INVALID:
        raise AssertionError(f"{where}: {what} does not fit {schema.get('type')}")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        reasons = "; ".join(f"{'/'.join(str(p) for p in e.path) or '<root>'}: {e.message}" for e in errors[:5])
        raise AssertionError(f"{where}: {what} does not match the spec: {reasons}")
