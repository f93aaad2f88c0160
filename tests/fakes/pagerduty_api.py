"""A stateful fake of the PagerDuty REST API v2, served over real HTTP on 127.0.0.1.

Requests are checked against PagerDuty's own OpenAPI description
(``../shared/pagerduty/rest-openapiv3.json``) through an overlay that fixes its known defects
(see :func:`_apply_overlay`), plus PagerDuty's header rules and a field-name check the description
cannot express (it allows unknown properties, so a typo like ``incident_keys`` would pass).
Departures are collected in ``FakePagerDuty.violations``; the fake's own answers are checked too
(``response_violations``) so the fake cannot drift from the description unnoticed.

When ``shared/`` is absent validation is skipped silently and ``violations`` stays empty.

Error bodies follow PagerDuty's ``{"error": {"message", "code", "errors"}}`` shape. Texts and codes
for the duplicate ``incident_key`` answer come from public clients that match on them
(``"Arguments Caused Error"``, 2002, ``"Open incident with matching dedup key already exists on
this service"``); the texts of the From-header and 401 answers are approximations.

Every change to an incident is also written to an account-wide change log served by
``GET /log_entries`` (see :meth:`FakePagerDuty._list_log_entries` for what is modelled: types,
``is_overview``, ``include[]=incidents``, newest-first order).
"""

from __future__ import annotations

import bisect
import collections
import json
import math
import random
import re
import secrets as _secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from integrations.pagerduty.api.webhook_signature import sign
from tests.fakes.pagerduty_events import EVENTS_PATH, FakeEventsApi
from tests.fakes.served import ServedFake

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED_DIR = REPO_ROOT.parent / "shared"
SPEC_RELATIVE = Path("pagerduty") / "rest-openapiv3.json"
ACCEPT_V2 = "application/vnd.pagerduty+json;version=2"
RATE_LIMIT = 960
FROM_REQUIRED = {("POST", "/incidents"), ("PUT", "/incidents"), ("PUT", "/incidents/{id}"), ("POST", "/incidents/{id}/notes")}
DUPLICATE_KEY_TEXT = "Open incident with matching dedup key already exists on this service"
HTML_BASE = "https://fake.pagerduty.com"


def spec_path(shared_dir: Path | None = None) -> Path:
    return (shared_dir or DEFAULT_SHARED_DIR) / SPEC_RELATIVE


# =====================================================================================
# Spec validation (OpenAPI 3.0 description + overlay), loaded once per process
# =====================================================================================

_SPEC_URN = "urn:pagerduty:rest-openapiv3"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _apply_overlay(spec: dict[str, Any]) -> None:
    """Our corrections to the known defects of the description (README, "Known defects")."""
    comps = spec["components"]
    # 1. A string default on an integer parameter breaks strict loaders.
    sre = comps["parameters"].get("sre_memories_limit")
    if sre:
        sre["schema"]["default"] = 20
    schemas = comps["schemas"]
    # 2. IncidentBody.details: PagerDuty's own example sends a string.
    schemas["IncidentBody"]["properties"]["details"] = {"anyOf": [{"type": "string"}, {"type": "object"}]}
    #    ...and it requires ``type`` without declaring it (the example sends "incident_body").
    schemas["IncidentBody"]["properties"].setdefault("type", {"type": "string", "enum": ["incident_body"]})
    # 3. Null in real responses, not declared nullable.
    inc_props = schemas["Incident"]["allOf"][1]["properties"]
    for name in ("resolved_at", "resolve_reason", "priority", "alert_grouping", "last_status_change_by"):
        if name in inc_props:
            inc_props[name] = _nullable(inc_props[name])
    grouping = inc_props["alert_grouping"]["anyOf"][0]
    grouping["properties"]["ended_at"] = _nullable(grouping["properties"]["ended_at"])
    oncall = schemas["Oncall"]["properties"]
    for name in ("start", "end", "schedule"):  # null for permanent / policy-level on-calls
        oncall[name] = _nullable(oncall[name])
    # 3b. Log entries. AcknowledgeLogEntry narrows ``type`` to "acknowledgement_log_entry" while the
    #     LogEntry base it extends only allows "acknowledge_log_entry" (what PagerDuty sends), so no
    #     acknowledge entry could ever validate: use the base's spelling.
    ack = schemas.get("AcknowledgeLogEntry")
    if ack:
        for part in ack.get("allOf", []):
            if isinstance(part, dict) and "type" in part.get("properties", {}):
                part["properties"]["type"] = {"type": "string", "enum": ["acknowledge_log_entry"]}
    #     Channel lists its variants (nagios, api, email, web_trigger, website) under ``oneOf``
    #     without anything that tells them apart (``type`` is only described, "Will be `api`"), so
    #     every channel matches several and fails; the variants are descriptive: make it anyOf.
    channel = schemas.get("Channel")
    if channel and "oneOf" in channel:
        channel["anyOf"] = channel.pop("oneOf")
    #     ``include[]=incidents`` / ``include[]=services`` replace the references in a log entry by
    #     the full objects (type "incident" / "service"), which the reference schemas reject.
    log_props = schemas["LogEntry"]["allOf"][1]["properties"]
    for name, full in (("incident", "Incident"), ("service", "Service")):
        log_props[name] = {"anyOf": [{"$ref": f"#/components/schemas/{full}Reference"}, {"$ref": f"#/components/schemas/{full}"}]}
    # 3c. Responder requests: PagerDuty (and the description's own examples) wrap each target as
    #     ``{"responder_request_target": {id, type}}``; the schema describes the inner object bare.
    wrapped = {
        "type": "object",
        "properties": {"responder_request_target": {"$ref": "#/components/schemas/ResponderRequestTargetReference"}},
        "required": ["responder_request_target"],
    }
    post = spec["paths"]["/incidents/{id}/responder_requests"]["post"]
    post["requestBody"]["content"]["application/json"]["schema"]["properties"]["responder_request_targets"]["items"] = wrapped
    schemas["ResponderRequest"]["properties"]["responder_request_targets"]["items"] = wrapped
    # 4. readOnly on reference id/type (and elsewhere) is stripped in _to_json_schema, so a
    #    request that sends ``service: {id, type}`` validates.
    # 5. ``statuses[]``, ``urgencies[]``, ``include[]`` declared as strings but used as repeated
    #    parameters: handled in SpecValidator._check_query (any ``name[]`` is repeatable, each
    #    value validated against the declared schema or its ``items``).


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema dialect -> JSON Schema draft 4: ``nullable``, drop ``readOnly``."""
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("readOnly", "writeOnly", "example", "examples")}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


@dataclass
class _Operation:
    method: str
    template: str
    pointer: str
    params: dict[tuple[str, str], dict[str, Any]]  # (in, lower-cased name for headers) -> param
    body_schema: dict[str, Any] | None
    body_required: bool


class SpecValidator:
    """Request/response checks for the operations of PagerDuty's REST description."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        _apply_overlay(spec)
        self.spec: dict[str, Any] = _to_json_schema(spec)
        self._registry = Registry().with_resource(_SPEC_URN, Resource(contents=self.spec, specification=DRAFT4))
        self._jsonschema = jsonschema
        self._ops: dict[tuple[str, str], _Operation | None] = {}
        self._validators: dict[str, Any] = {}

    # ---------------------------------------------------------------- helpers
    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"external $ref {ref}")
        node: Any = self.spec
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node

    def _resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 50:
            node = self._pointer(node["$ref"])
            seen += 1
        return node

    def _validator(self, pointer: str) -> Any:
        v = self._validators.get(pointer)
        if v is None:
            v = self._jsonschema.Draft4Validator({"$ref": f"{_SPEC_URN}#{pointer}"}, registry=self._registry)
            self._validators[pointer] = v
        return v

    def _errors(self, pointer: str, value: Any, where: str, limit: int = 3) -> list[str]:
        out = []
        for err in self._validator(pointer).iter_errors(value):
            loc = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            out.append(f"{where}{loc}: {err.message[:300]}")
            if len(out) >= limit:
                break
        return out

    def operation(self, method: str, template: str) -> _Operation | None:
        key = (method.upper(), template)
        if key in self._ops:
            return self._ops[key]
        path_item = self.spec.get("paths", {}).get(template)
        op = path_item.get(method.lower()) if path_item else None
        if op is None:
            self._ops[key] = None
            return None
        pointer = f"/paths/{_escape(template)}/{method.lower()}"
        params: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*path_item.get("parameters", []), *op.get("parameters", [])]:
            p = self._resolve(raw)
            name = p["name"].lower() if p["in"] == "header" else p["name"]
            params[(p["in"], name)] = p
        body_schema = None
        body_required = False
        rb = self._resolve(op.get("requestBody")) if op.get("requestBody") else None
        if rb and "application/json" in rb.get("content", {}):
            body_schema = rb["content"]["application/json"].get("schema")
            body_required = bool(rb.get("required", False))
        result = _Operation(method.upper(), template, pointer, params, body_schema, body_required)
        self._ops[key] = result
        return result

    # ---------------------------------------------------------------- requests
    def check_request(
        self,
        method: str,
        template: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: Any,
        has_body: bool,
    ) -> list[str]:
        op = self.operation(method, template)
        label = f"{method.upper()} {template}"
        if op is None:
            return [f"{label}: not an operation of the PagerDuty REST description"]
        out = self._check_query(op, query, label)
        out += self._check_headers(op, headers, label)
        if op.body_schema is not None:
            if not has_body:
                if op.body_required or "required" in self._resolve(op.body_schema):
                    out.append(f"{label}: request body is missing")
            else:
                out += self._errors(f"{op.pointer}/requestBody/content/application~1json/schema", body, f"{label} body")
                out += self._unknown_fields(op.body_schema, body, f"{label} body")
        elif has_body:
            out.append(f"{label}: sends a body, the operation takes none")
        return out

    def _check_query(self, op: _Operation, query: Mapping[str, list[str]], label: str) -> list[str]:
        out: list[str] = []
        for name, values in query.items():
            p = op.params.get(("query", name))
            if p is None:
                out.append(f"{label}: unknown query parameter {name!r}")
                continue
            schema = self._resolve(p.get("schema", {}))
            is_array = schema.get("type") == "array"
            if is_array or name.endswith("[]"):
                item_schema = self._resolve(schema.get("items", {})) if is_array else schema
                vals = list(values)
                if is_array and p.get("explode", p.get("style", "form") == "form") is False:
                    vals = [v for raw in values for v in raw.split(",")]
                coerced = [_coerce(v, item_schema) for v in vals]
                target = coerced if is_array else None
                if target is not None:
                    out += self._validate_value(target, schema, f"{label} query {name}")
                else:
                    for c in coerced:
                        out += self._validate_value(c, item_schema, f"{label} query {name}")
            else:
                if len(values) > 1:
                    out.append(f"{label}: query parameter {name!r} repeated")
                out += self._validate_value(_coerce(values[-1], schema), schema, f"{label} query {name}")
        for (where, name), p in op.params.items():
            if where == "query" and p.get("required") and name not in query:
                out.append(f"{label}: required query parameter {name!r} missing")
        return out

    def _check_headers(self, op: _Operation, headers: Mapping[str, str], label: str) -> list[str]:
        lower = {k.lower(): v for k, v in headers.items()}
        out: list[str] = []
        for (where, name), p in op.params.items():
            if where != "header":
                continue
            if name not in lower:
                if p.get("required"):
                    out.append(f"{label}: required header {p['name']!r} missing")
                continue
            schema = self._resolve(p.get("schema", {}))
            value = lower[name]
            if name == "content-type":
                value = value.split(";")[0].strip()
            if name != "accept":  # Accept only carries a default; PD's rule is checked by the fake
                out += self._validate_value(value, schema, f"{label} header {p['name']}")
        return out

    def _validate_value(self, value: Any, schema: dict[str, Any], where: str) -> list[str]:
        validator = self._jsonschema.Draft4Validator(schema, registry=self._registry)
        return [f"{where}: {e.message[:200]}" for e in validator.iter_errors(value)][:3]

    def _object_props(self, schema: Any, depth: int = 0) -> tuple[dict[str, Any], bool, bool]:
        """(properties, whether any are declared, whether extra properties are allowed)."""
        schema = self._resolve(schema)
        if not isinstance(schema, dict) or depth > 20:
            return {}, False, True
        props: dict[str, Any] = dict(schema.get("properties", {}))
        known = "properties" in schema
        open_ = schema.get("additionalProperties") not in (None, False)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key, []):
                p, k, o = self._object_props(sub, depth + 1)
                props.update(p)
                known |= k
                open_ |= o
        return props, known, open_

    def _unknown_fields(self, schema: Any, value: Any, where: str) -> list[str]:
        out: list[str] = []
        if isinstance(value, dict):
            props, known, open_ = self._object_props(schema)
            for key, sub in value.items():
                if key in props:
                    out += self._unknown_fields(props[key], sub, f"{where}.{key}")
                elif known and not open_:
                    out.append(f"{where}: unknown field {key!r}")
        elif isinstance(value, list):
            items = self._resolve(schema).get("items") if isinstance(self._resolve(schema), dict) else None
            if items is not None:
                for i, sub in enumerate(value):
                    out += self._unknown_fields(items, sub, f"{where}[{i}]")
        return out

    # ---------------------------------------------------------------- responses
    def check_response(self, method: str, template: str, status: int, body: Any) -> list[str]:
        op = self.operation(method, template)
        if op is None:
            return []
        responses = self._pointer(f"#{op.pointer}/responses")
        declared = responses.get(str(status))
        if declared is None:
            if status < 400:
                return [f"{method} {template}: answers {status}, not a declared status ({sorted(responses)})"]
            return []
        resp = self._resolve(declared)
        if body is None or "application/json" not in resp.get("content", {}):
            return []
        if isinstance(body, dict):  # list pages: the items share one renderer, check a sample
            body = {k: v[:3] if isinstance(v, list) else v for k, v in body.items()}
        ptr = f"{op.pointer}/responses/{status}"
        if "$ref" in declared:
            ptr = declared["$ref"][1:]
        return self._errors(f"{ptr}/content/application~1json/schema", body, f"{method} {template} -> {status}")


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


_VALIDATORS: dict[Path, SpecValidator | None] = {}
_VALIDATORS_LOCK = threading.Lock()
LOAD_SECONDS: dict[Path, float] = {}


def spec_validator(shared_dir: Path | None = None) -> SpecValidator | None:
    """The process-wide validator for ``shared_dir`` (None when the description is absent)."""
    path = spec_path(shared_dir).resolve()
    with _VALIDATORS_LOCK:
        if path not in _VALIDATORS:
            if not path.is_file():
                _VALIDATORS[path] = None
            else:
                started = time.perf_counter()
                _VALIDATORS[path] = SpecValidator(json.loads(path.read_bytes()))
                LOAD_SECONDS[path] = time.perf_counter() - started
        return _VALIDATORS[path]


# =====================================================================================
# State
# =====================================================================================


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _at(dt: datetime | None) -> datetime:
    """A change time: ``dt`` (naive = UTC) or now, to the second like PagerDuty's timestamps."""
    if dt is None:
        return _now()
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0)


def _log_key(entry: Any) -> tuple[datetime, int]:
    return (entry.created_at, entry.seq)


def _ts(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(raw: str) -> datetime:
    dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass
class FakeUser:
    id: str
    name: str
    email: str


@dataclass
class FakeService:
    id: str
    name: str
    escalation_policy_id: str | None = None


@dataclass
class FakeSchedule:
    """A rotation: `user_ids` take turns for `shift` each, the first from `start`."""

    id: str
    name: str
    user_ids: list[str]
    start: datetime
    shift: timedelta

    def shifts(self, since: datetime, until: datetime) -> list[tuple[str, datetime, datetime]]:
        """(user, start, end) of each shift with start <= until and end > since (one instant: since == until)."""
        first = max(0, math.floor((since - self.start) / self.shift))
        out = []
        n = first
        while self.start + n * self.shift <= until:
            begin = self.start + n * self.shift
            end = begin + self.shift
            if end > since:
                out.append((self.user_ids[n % len(self.user_ids)], begin, end))
            n += 1
        return out


@dataclass
class FakeEscalationPolicy:
    id: str
    name: str
    oncall_user_ids: list[str] = field(default_factory=list)  # index i = escalation level i+1: a user or schedule id


@dataclass
class FakeNote:
    id: str
    content: str
    user_id: str | None
    created_at: datetime


@dataclass
class StatusChange:
    status: str
    at: datetime
    from_email: str | None  # the From header (None when changed inside PagerDuty)
    agent_user_id: str | None = None


@dataclass
class FakeIncident:
    id: str
    number: int
    title: str
    status: str
    urgency: str
    service_id: str
    incident_key: str
    escalation_policy_id: str | None
    created_at: datetime
    updated_at: datetime
    escalation_level: int = 1
    assignments: list[str] = field(default_factory=list)  # user ids
    # as POSTed (requester_id, message, targets), and as answered (answer: listed on the incident)
    responder_requests: list[dict[str, Any]] = field(default_factory=list)
    notes: list[FakeNote] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)
    details: Any = None
    resolution: str | None = None
    resolved_at: datetime | None = None
    last_status_change_by: str | None = None  # user id


# Log entry types PagerDuty keeps with ``is_overview=true`` ("only the most important changes to
# the incident"): the lifecycle and people changes. Left out: notifications and escalation-path
# bookkeeping (notify, exhaust/repeat_escalation_path, reach_*_limit).
OVERVIEW_LOG_ENTRY_TYPES = frozenset(
    {
        "trigger_log_entry",
        "acknowledge_log_entry",
        "unacknowledge_log_entry",
        "resolve_log_entry",
        "assign_log_entry",
        "escalate_log_entry",
        "delegate_log_entry",
        "snooze_log_entry",
        "annotate_log_entry",
        "urgency_change_log_entry",
    }
)


@dataclass
class FakeLogEntry:
    id: str
    seq: int  # record order: breaks ties between entries of the same second
    type: str
    created_at: datetime
    incident_id: str
    summary: str
    channel: str  # channel.type: api, website, auto, note, ...
    agent_user_id: str | None  # None: the incident's service is the agent
    assignees: list[str] = field(default_factory=list)  # assign/escalate entries
    user_id: str | None = None  # notify entries: who was notified


@dataclass
class Delivery:
    event_type: str
    status: int | None
    error: str | None = None


@dataclass
class FakeSubscription:
    id: str
    url: str
    secret: str
    filter_type: str
    filter_id: str | None
    events: list[str]
    description: str | None = None
    active: bool = True
    pings_sent: int = 0
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # Authorization redacted
    json: Any
    status: int = 0
    template: str | None = None
    at: float | None = None  # the fake's clock when it came


@dataclass
class _FailRule:
    status: int
    times: int
    headers: dict[str, str | None] | None
    body: dict[str, Any] | None
    path_prefix: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


FAULT_MODES = ("429", "500", "503-html", "late")


@dataclass
class _LateRule:
    times: int
    by: float
    path_prefix: str | None
    method: str | None

    matches = _FailRule.matches


@dataclass
class _FailShare:
    share: float
    rng: random.Random
    modes: tuple[str, ...]
    late_by: float
    path_prefix: str | None
    method: str | None

    matches = _FailRule.matches


@dataclass(frozen=True)
class _Html:
    """A body that is not JSON (a proxy's error page)."""

    text: str


class _Answer(Exception):
    """Raised inside a route to answer at once."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str | None] | None = None) -> None:
        self.status, self.body, self.headers = status, body, dict(headers or {})


def _pd_error(status: int, message: str, code: int | None = None, errors: Iterable[str] = ()) -> _Answer:
    err: dict[str, Any] = {"message": message}
    if code is not None:
        err["code"] = code
    errs = list(errors)
    if errs:
        err["errors"] = errs
    return _Answer(status, {"error": err})


def _invalid(*errors: str) -> _Answer:
    return _pd_error(400, "Invalid Input Provided", 2001, errors)


def _not_found() -> _Answer:
    return _pd_error(404, "Not Found", 2100)


_DEFAULT_FAIL_BODIES: dict[int, dict[str, Any]] = {
    400: {"error": {"message": "Invalid Input Provided", "code": 2001}},
    401: {"error": {"message": "Authentication failed", "code": 2006}},
    403: {"error": {"message": "Access Denied", "code": 2010}},
    404: {"error": {"message": "Not Found", "code": 2100}},
    429: {"error": {"message": "Rate Limit Exceeded", "code": 2020}},
}

Route = Callable[[dict[str, str], "_Ctx"], tuple[int, Any]]


@dataclass
class _Ctx:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[-1] if vals else default

    def qs(self, name: str) -> list[str]:
        return list(self.query.get(name, []))


# =====================================================================================
# The fake
# =====================================================================================


class FakePagerDuty(ServedFake):
    def __init__(
        self,
        *,
        api_key: str = "pd-test-key",
        shared_dir: Path | None = None,
        budget: tuple[int, float] | None = (RATE_LIMIT, 60.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`budget`: (requests, seconds) each API key may make in any window that long (PagerDuty: 960 a
        minute); beyond it a 429 with `ratelimit-*` headers. None: unlimited. `clock`: seconds, injectable."""
        self.api_key = api_key
        self.budget = budget
        self.clock = clock
        self._served: dict[str, collections.deque[float]] = {}  # per Authorization: when each request in the window came
        self.over_budget = 0  # 429s answered because a key was over its budget
        self.shared_dir = shared_dir if shared_dir is not None else DEFAULT_SHARED_DIR
        self.validator: SpecValidator | None = spec_validator(self.shared_dir)
        self.users: dict[str, FakeUser] = {}
        self.services: dict[str, FakeService] = {}
        self.escalation_policies: dict[str, FakeEscalationPolicy] = {}
        self.schedules: dict[str, FakeSchedule] = {}
        self.incidents: dict[str, FakeIncident] = {}
        self.log_entries: list[FakeLogEntry] = []  # sorted by (created_at, seq)
        self.webhook_subscriptions: dict[str, FakeSubscription] = {}
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.response_violations: list[str] = []
        self.events = FakeEventsApi(self, self.shared_dir)  # Events API v2 (routing keys), same server
        self.down = False
        self.response_delay = 0.0
        self.offset_cap = 10_000
        self.abilities = ["teams", "urgencies", "read_only_users", "service_support_hours"]
        self._fail_rules: list[_FailRule] = []
        self._late_rules: list[_LateRule] = []
        self._fail_share: _FailShare | None = None
        self.faults: list[tuple[str, str, str]] = []  # (mode, method, path) of every fault served
        self._lock = threading.RLock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], str, Route]] = []
        for method, template, fn in [
            ("GET", "/abilities", self._get_abilities),
            ("GET", "/users", self._list_users),
            ("GET", "/users/{id}", self._get_user),
            ("GET", "/services", self._list_services),
            ("GET", "/services/{id}", self._get_service),
            ("GET", "/escalation_policies/{id}", self._get_escalation_policy),
            ("GET", "/incidents", self._list_incidents),
            ("POST", "/incidents", self._create_incident),
            ("GET", "/incidents/{id}", self._get_incident),
            ("PUT", "/incidents/{id}", self._update_incident),
            ("GET", "/incidents/{id}/notes", self._list_notes),
            ("POST", "/incidents/{id}/notes", self._add_note),
            ("POST", "/incidents/{id}/responder_requests", self._add_responder_request),
            ("GET", "/oncalls", self._list_oncalls),
            ("GET", "/log_entries", self._list_log_entries),
            ("GET", "/incidents/{id}/log_entries", self._list_incident_log_entries),
            ("POST", "/webhook_subscriptions", self._create_subscription),
            ("DELETE", "/webhook_subscriptions/{id}", self._delete_subscription),
            ("POST", "/webhook_subscriptions/{id}/ping", self._ping_subscription),
        ]:
            pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            self._routes.append((method, pattern, template, fn))

    # ---------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakePagerDuty is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePagerDuty:
        if self._server is not None:
            return self
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._listen(Handler, "fake-pagerduty")
        return self

    # ---------------------------------------------------------------- seeding & PD-side actions
    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter:06X}"

    def add_user(self, id: str, name: str, email: str) -> FakeUser:
        user = FakeUser(id, name, email)
        self.users[id] = user
        return user

    def add_escalation_policy(
        self,
        id: str,
        name: str,
        oncall_user_ids: list[str] | None = None,
    ) -> FakeEscalationPolicy:
        policy = FakeEscalationPolicy(id, name, list(oncall_user_ids or []))
        self.escalation_policies[id] = policy
        return policy

    def add_schedule(self, id: str, name: str, user_ids: list[str], *, start: datetime, shift: timedelta) -> FakeSchedule:
        """A rotation that an escalation policy level can target (put its id in ``oncall_user_ids``)."""
        schedule = FakeSchedule(id, name, list(user_ids), _at(start), shift)
        self.schedules[id] = schedule
        return schedule

    def add_service(self, id: str, name: str, escalation_policy_id: str | None = None) -> FakeService:
        service = FakeService(id, name, escalation_policy_id)
        self.services[id] = service
        return service

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str | None] | None = None,
        body: dict[str, Any] | None = None,
        path_prefix: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``.

        ``headers`` are merged over the usual ratelimit headers; a value of None removes one
        (``{"ratelimit-reset": None}`` gives a 429 without a reset hint).
        """
        with self._lock:
            self._fail_rules.append(_FailRule(status, times, headers, body, path_prefix, method))

    def answer_late(self, *, times: int = 1, by: float = 1.5, path_prefix: str | None = None, method: str | None = None) -> None:
        """The next ``times`` matching requests take effect as usual, and are answered ``by`` seconds late:
        after a client's timeout, so the client cannot know that they did."""
        with self._lock:
            self._late_rules.append(_LateRule(times, by, path_prefix, method))

    def fail_share(
        self,
        share: float,
        *,
        seed: int,
        modes: Iterable[str] = FAULT_MODES,
        late_by: float = 1.5,
        path_prefix: str | None = None,
        method: str | None = None,
    ) -> None:
        """From now on a seeded ``share`` (0..1) of matching requests meet a fault, one of ``modes`` each:
        ``429`` (nothing done; ``ratelimit-reset`` 1-3 s), ``500`` (nothing done), ``503-html`` (nothing
        done; an HTML page as a proxy in front of PagerDuty answers), ``late`` (done, answered ``late_by``
        seconds late). ``fail_share(0, seed=0)`` turns it off. Served faults are listed in ``faults``."""
        wanted = tuple(modes)
        unknown = set(wanted) - set(FAULT_MODES)
        if unknown or not wanted:
            raise ValueError(f"modes must be among {FAULT_MODES}, got {wanted}")
        with self._lock:
            self._fail_share = _FailShare(share, random.Random(seed), wanted, late_by, path_prefix, method) if share > 0 else None

    def trigger_incident(
        self,
        *,
        service_id: str,
        title: str,
        urgency: str = "high",
        incident_key: str | None = None,
        created_at: datetime | None = None,
    ) -> FakeIncident:
        """An incident born in PagerDuty (from an alert or a person in the web app)."""
        with self._lock:
            if service_id not in self.services:
                raise KeyError(f"unknown service {service_id}")
            return self._new_incident(
                service_id=service_id,
                title=title,
                urgency=urgency,
                incident_key=incident_key,
                escalation_policy_id=None,
                from_email=None,
                created_at=created_at,
            )

    def set_incident_status(
        self, incident_id: str, status: str, *, agent_user_id: str | None = None, at: datetime | None = None
    ) -> None:
        """Change the status on the PagerDuty side, as a person in PagerDuty would.

        ``at`` (default: now) is when it happened: the incident's updated_at and the log entry's
        created_at."""
        with self._lock:
            inc = self.incidents[incident_id]
            self._set_status(inc, status, from_email=None, agent_user_id=agent_user_id, at=at)

    def set_incident_urgency(
        self, incident_id: str, urgency: str, *, agent_user_id: str | None = None, at: datetime | None = None
    ) -> None:
        """Change the urgency in PagerDuty (an ``urgency_change_log_entry``)."""
        with self._lock:
            inc = self.incidents[incident_id]
            if urgency == inc.urgency:
                return
            when = _at(at)
            inc.urgency = urgency
            inc.updated_at = when
            self._log(
                inc,
                "urgency_change_log_entry",
                when,
                agent_user_id=agent_user_id,
                channel="website" if agent_user_id else "auto",
                summary=f"Urgency changed to {urgency}",
            )

    def reassign_incident(
        self, incident_id: str, user_ids: list[str], *, agent_user_id: str | None = None, at: datetime | None = None
    ) -> None:
        """Reassign in PagerDuty (an ``assign_log_entry``, then a notification per assignee)."""
        with self._lock:
            inc = self.incidents[incident_id]
            when = _at(at)
            inc.assignments = list(user_ids)
            inc.updated_at = when
            self._log(
                inc,
                "assign_log_entry",
                when,
                agent_user_id=agent_user_id,
                channel="website",
                summary="Assigned to " + ", ".join(self._user_name(u) for u in user_ids),
                assignees=list(user_ids),
            )
            self._log_notifications(inc, when)

    def escalate_incident(
        self, incident_id: str, level: int, *, agent_user_id: str | None = None, at: datetime | None = None
    ) -> None:
        """Escalate in PagerDuty (an ``escalate_log_entry``): the level's on-call is paged, and an
        acknowledged incident is triggered again, as PagerDuty does."""
        with self._lock:
            inc = self.incidents[incident_id]
            when = _at(at)
            inc.escalation_level = level
            inc.assignments = self._oncall_at(inc.escalation_policy_id, level)
            if inc.status == "acknowledged":
                self._set_status(inc, "triggered", from_email=None, agent_user_id=agent_user_id, at=when)
            inc.updated_at = when
            self._log(
                inc,
                "escalate_log_entry",
                when,
                agent_user_id=agent_user_id,
                channel="website" if agent_user_id else "auto",
                summary=f"Escalated to level {level}",
                assignees=list(inc.assignments),
            )
            self._log_notifications(inc, when)

    def add_incident_note(
        self, incident_id: str, content: str, *, user_id: str | None = None, at: datetime | None = None
    ) -> FakeNote:
        """A note written in PagerDuty (an ``annotate_log_entry``)."""
        with self._lock:
            inc = self.incidents[incident_id]
            note = FakeNote(self._new_id("N"), content, user_id, _at(at))
            self._annotate(inc, note)
            return note

    def bulk_load(
        self,
        n: int,
        *,
        service_id: str,
        created_at: datetime,
        step: timedelta = timedelta(0),
        title: str = "bulk incident",
        urgency: str = "high",
    ) -> list[FakeIncident]:
        """``n`` triggered incidents created at ``created_at`` (+ i * ``step``), fast.

        Their log entries (trigger + notify) carry their creation time, so they are old news to a
        ``GET /log_entries`` window that starts later; nothing is sent over HTTP.
        """
        with self._lock:
            if service_id not in self.services:
                raise KeyError(f"unknown service {service_id}")
            entries, self.log_entries = self.log_entries, []  # append, then sort once
            try:
                out = [
                    self._new_incident(
                        service_id=service_id,
                        title=f"{title} {i}",
                        urgency=urgency,
                        incident_key=None,
                        escalation_policy_id=None,
                        from_email=None,
                        created_at=created_at + i * step,
                    )
                    for i in range(n)
                ]
            finally:
                entries.extend(self.log_entries)
                entries.sort(key=_log_key)
                self.log_entries = entries
            return out

    def log_entries_between(self, since: datetime, until: datetime, *, is_overview: bool = False) -> list[FakeLogEntry]:
        """Entries with since <= created_at < until, oldest first (for assertions)."""
        with self._lock:
            lo = bisect.bisect_left(self.log_entries, (since, -1), key=_log_key)
            hi = bisect.bisect_left(self.log_entries, (until, -1), key=_log_key)
            return [e for e in self.log_entries[lo:hi] if not is_overview or e.type in OVERVIEW_LOG_ENTRY_TYPES]

    # ---------------------------------------------------------------- incident mechanics
    def _oncall_at(self, policy_id: str | None, level: int) -> list[str]:
        policy = self.escalation_policies.get(policy_id or "")
        if policy is None or not policy.oncall_user_ids:
            return []
        target = policy.oncall_user_ids[min(level, len(policy.oncall_user_ids)) - 1]
        schedule = self.schedules.get(target)
        if schedule is None:
            return [target]
        now = _now()
        return [user for user, _, _ in schedule.shifts(now, now)][:1]

    def _target_ref(self, target: str) -> dict[str, Any]:
        schedule = self.schedules.get(target)
        if schedule is not None:
            return self._ref("schedule", schedule.id, schedule.name, "schedules")
        return self._user_ref(target)

    def _new_incident(
        self,
        *,
        service_id: str,
        title: str,
        urgency: str,
        incident_key: str | None,
        escalation_policy_id: str | None,
        from_email: str | None,
        created_at: datetime | None,
        details: Any = None,
    ) -> FakeIncident:
        self._counter += 1
        number = len(self.incidents) + 1
        at = (created_at or _now()).astimezone(UTC).replace(microsecond=0)
        policy_id = escalation_policy_id or self.services[service_id].escalation_policy_id
        inc = FakeIncident(
            id=f"Q{self._counter:06X}",
            number=number,
            title=title,
            status="triggered",
            urgency=urgency,
            service_id=service_id,
            incident_key=incident_key or uuid.uuid4().hex,
            escalation_policy_id=policy_id,
            created_at=at,
            updated_at=at,
            assignments=self._oncall_at(policy_id, 1),
            details=details,
        )
        inc.history.append(StatusChange("triggered", at, from_email))
        self.incidents[inc.id] = inc
        user = self._user_by_email(from_email)
        self._log(
            inc,
            "trigger_log_entry",
            at,
            agent_user_id=user.id if user else None,
            channel="api" if from_email else "auto",
            summary="Triggered through the API" if from_email else "Triggered through an integration",
        )
        self._log_notifications(inc, at)
        return inc

    def _set_status(
        self,
        inc: FakeIncident,
        status: str,
        *,
        from_email: str | None,
        agent_user_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        at = _at(at)
        if status == inc.status:
            return
        previous = inc.status
        if status == "resolved":
            inc.resolved_at = at
            inc.assignments = []
        elif inc.status == "resolved":  # reopen
            inc.resolved_at = None
            inc.escalation_level = 1
            inc.assignments = self._oncall_at(inc.escalation_policy_id, 1)
        inc.status = status
        inc.updated_at = at
        inc.last_status_change_by = agent_user_id
        inc.history.append(StatusChange(status, at, from_email, agent_user_id))
        if agent_user_id is None and from_email:
            user = self._user_by_email(from_email)
            agent_user_id = user.id if user else None
        channel = "api" if from_email else ("website" if agent_user_id else "auto")
        by = f" by {self._user_name(agent_user_id)}" if agent_user_id else ""
        if status == "acknowledged":
            self._log(inc, "acknowledge_log_entry", at, agent_user_id=agent_user_id, channel=channel, summary=f"Acknowledged{by}")
        elif status == "resolved":
            self._log(inc, "resolve_log_entry", at, agent_user_id=agent_user_id, channel=channel, summary=f"Resolved{by}")
        elif previous == "acknowledged":
            self._log(
                inc, "unacknowledge_log_entry", at, agent_user_id=agent_user_id, channel=channel, summary=f"Unacknowledged{by}"
            )
        else:  # resolved -> triggered: PagerDuty's log has no reopen type; it triggers again
            self._log(inc, "trigger_log_entry", at, agent_user_id=agent_user_id, channel=channel, summary=f"Reopened{by}")
            self._log_notifications(inc, at)

    def _annotate(self, inc: FakeIncident, note: FakeNote) -> None:
        inc.notes.append(note)
        inc.updated_at = max(inc.updated_at, note.created_at)
        self._log(inc, "annotate_log_entry", note.created_at, agent_user_id=note.user_id, channel="note", summary="Note added")

    def _log(
        self,
        inc: FakeIncident,
        type_: str,
        at: datetime,
        *,
        agent_user_id: str | None,
        channel: str,
        summary: str,
        assignees: list[str] | None = None,
        user_id: str | None = None,
    ) -> FakeLogEntry:
        self._counter += 1
        entry = FakeLogEntry(
            id=f"R{self._counter:013X}",
            seq=self._counter,
            type=type_,
            created_at=at.astimezone(UTC).replace(microsecond=0),
            incident_id=inc.id,
            summary=summary,
            channel=channel,
            agent_user_id=agent_user_id,
            assignees=list(assignees or []),
            user_id=user_id,
        )
        if not self.log_entries or _log_key(self.log_entries[-1]) <= _log_key(entry):
            self.log_entries.append(entry)
        else:
            bisect.insort(self.log_entries, entry, key=_log_key)
        return entry

    def _log_notifications(self, inc: FakeIncident, at: datetime) -> None:
        for uid in inc.assignments:
            self._log(
                inc,
                "notify_log_entry",
                at,
                agent_user_id=None,
                channel="auto",
                summary=f"Notified {self._user_name(uid)}",
                user_id=uid,
            )

    def _user_name(self, user_id: str | None) -> str:
        user = self.users.get(user_id or "")
        return user.name if user else str(user_id)

    def _user_by_email(self, email: str | None) -> FakeUser | None:
        if not email:
            return None
        return next((u for u in self.users.values() if u.email.lower() == email.strip().lower()), None)

    # ---------------------------------------------------------------- JSON shapes
    def _ref(self, kind: str, id_: str, summary: str | None, collection: str) -> dict[str, Any]:
        return {
            "id": id_,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": f"{self.base_url}/{collection}/{id_}",
            "html_url": f"{HTML_BASE}/{collection}/{id_}",
        }

    def _user_ref(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        return self._ref("user", user_id, user.name if user else None, "users")

    def _service_ref(self, service_id: str) -> dict[str, Any]:
        svc = self.services.get(service_id)
        return self._ref("service", service_id, svc.name if svc else None, "services")

    def _policy_ref(self, policy_id: str) -> dict[str, Any]:
        pol = self.escalation_policies.get(policy_id)
        return self._ref("escalation_policy", policy_id, pol.name if pol else None, "escalation_policies")

    def _user_json(self, u: FakeUser) -> dict[str, Any]:
        return {
            "id": u.id,
            "type": "user",
            "summary": u.name,
            "name": u.name,
            "email": u.email,
            "self": f"{self.base_url}/users/{u.id}",
            "html_url": f"{HTML_BASE}/users/{u.id}",
        }

    def _service_json(self, s: FakeService) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": s.id,
            "type": "service",
            "summary": s.name,
            "name": s.name,
            "status": "active",
            "self": f"{self.base_url}/services/{s.id}",
            "html_url": f"{HTML_BASE}/services/{s.id}",
        }
        if s.escalation_policy_id:
            out["escalation_policy"] = self._policy_ref(s.escalation_policy_id)
        return out

    def _policy_json(self, p: FakeEscalationPolicy) -> dict[str, Any]:
        return {
            "id": p.id,
            "type": "escalation_policy",
            "summary": p.name,
            "name": p.name,
            "num_loops": 0,
            "self": f"{self.base_url}/escalation_policies/{p.id}",
            "html_url": f"{HTML_BASE}/escalation_policies/{p.id}",
            "escalation_rules": [
                {
                    "id": f"R{p.id}{level}",
                    "escalation_delay_in_minutes": 30,
                    "targets": [self._target_ref(target)],
                }
                for level, target in enumerate(p.oncall_user_ids, start=1)
            ],
            "services": [self._service_ref(s.id) for s in self.services.values() if s.escalation_policy_id == p.id],
        }

    def _incident_json(self, inc: FakeIncident) -> dict[str, Any]:
        last_change = inc.history[-1].at if inc.history else inc.created_at
        out: dict[str, Any] = {
            "id": inc.id,
            "type": "incident",
            "summary": f"[#{inc.number}] {inc.title}",
            "self": f"{self.base_url}/incidents/{inc.id}",
            "html_url": f"{HTML_BASE}/incidents/{inc.id}",
            "incident_number": inc.number,
            "title": inc.title,
            "created_at": _ts(inc.created_at),
            "updated_at": _ts(inc.updated_at),
            "status": inc.status,
            "incident_key": inc.incident_key,
            "service": self._service_ref(inc.service_id),
            "assignments": [{"at": _ts(inc.updated_at), "assignee": self._user_ref(u)} for u in inc.assignments],
            "assigned_via": "escalation_policy",
            "last_status_change_at": _ts(last_change),
            "last_status_change_by": self._user_ref(inc.last_status_change_by) if inc.last_status_change_by else None,
            "resolved_at": _ts(inc.resolved_at),
            "alert_counts": {"all": 0, "triggered": 0, "resolved": 0},
            "is_mergeable": True,
            "teams": [],
            "pending_actions": [],
            "responder_requests": [r["answer"] for r in inc.responder_requests],
            "acknowledgements": [],
            "alert_grouping": None,
            "priority": None,
            "resolve_reason": None,
            "urgency": inc.urgency,
        }
        if inc.escalation_policy_id:
            out["escalation_policy"] = self._policy_ref(inc.escalation_policy_id)
        return out

    def _note_json(self, note: FakeNote) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": note.id,
            "content": note.content,
            "created_at": _ts(note.created_at),
            "channel": {"summary": "The PagerDuty website or APIs"},
        }
        if note.user_id:
            out["user"] = self._user_ref(note.user_id)
        return out

    def _subscription_json(self, sub: FakeSubscription, *, with_secret: bool) -> dict[str, Any]:
        flt: dict[str, Any] = {"type": sub.filter_type}
        if sub.filter_id:
            flt["id"] = sub.filter_id
        return {
            "id": sub.id,
            "type": "webhook_subscription",
            "active": sub.active,
            "delivery_method": {
                "id": f"D{sub.id}",
                "secret": sub.secret if with_secret else None,
                "temporarily_disabled": False,
                "type": "http_delivery_method",
                "url": sub.url,
                "custom_headers": [],
            },
            "description": sub.description,
            "events": list(sub.events),
            "filter": flt,
        }

    # ---------------------------------------------------------------- HTTP plumbing
    def _ratelimit_headers(self, authorization: str, *, spend: bool = True) -> dict[str, str]:
        """Count this request against its key's budget (a sliding window): its ratelimit headers, or a 429
        when the key has spent its budget (the refused request is not counted). Under the lock."""
        count, window = self.budget or (RATE_LIMIT, 60.0)
        now = self.clock()
        served = self._served.setdefault(authorization, collections.deque())
        while served and served[0] <= now - window:
            served.popleft()
        over = spend and self.budget is not None and len(served) >= count
        if spend and not over:
            served.append(now)
        reset = max(1, math.ceil(served[0] + window - now)) if served else 1
        headers = {
            "ratelimit-limit": str(count),
            "ratelimit-remaining": str(max(0, count - len(served))),
            "ratelimit-reset": str(reset),
        }
        if over:
            self.over_budget += 1
            raise _Answer(429, _DEFAULT_FAIL_BODIES[429], headers)
        return headers

    def served_per_window(self, window: float | None = None) -> int:
        """The most requests served (not refused) in any window of `window` seconds (default: the budget's)."""
        window = window or (self.budget or (RATE_LIMIT, 60.0))[1]
        times = sorted(r.at for r in self.requests if r.at is not None and r.status != 429)
        most, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - window:
                start += 1
            most = max(most, end - start + 1)
        return most

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command.upper()
        parts = urlsplit(handler.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items()}
        redacted = {
            k: ("Token token=<redacted>" if v.startswith("Token token=") else "<redacted>") if k.lower() == "authorization" else v
            for k, v in headers.items()
        }
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        record = RecordedRequest(method, path, query, redacted, body, at=self.clock())
        with self._lock:
            self.requests.append(record)
        if self.response_delay:
            time.sleep(self.response_delay)
        ctx = _Ctx(method, path, query, {k.lower(): v for k, v in headers.items()}, body)
        try:
            status, payload, extra, template, late = self._dispatch(ctx, raw_present=bool(raw), bad_json=bad_json)
        except Exception as exc:  # a bug in the fake: answer 500 and make it visible
            self.response_violations.append(f"fake crashed on {method} {path}: {exc!r}")
            status, payload, extra, template, late = 500, {"error": {"message": "fake crashed"}}, {}, None, 0.0
        record.status, record.template = status, template
        if template and self.validator is not None and status < 500:
            self.response_violations.extend(self.validator.check_response(method, template, status, payload))
        if isinstance(payload, _Html):
            data, content_type = payload.text.encode(), "text/html; charset=utf-8"
        else:
            data, content_type = (b"" if payload is None else json.dumps(payload).encode()), "application/json; charset=utf-8"
        if late:
            time.sleep(late)  # the effect is done; the client has given up waiting by now
        try:
            handler.send_response(status)
            for name, value in extra.items():
                if value is not None:
                    handler.send_header(name, value)
            if data:
                handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if data:
                handler.wfile.write(data)
        except OSError:
            pass  # the client hung up (it timed out): a late answer has nobody to go to

    def _fault(self, ctx: _Ctx) -> tuple[str | None, float]:
        """-> (a fault that answers at once, or None; seconds to answer late). Under the lock."""
        late = next((r for r in self._late_rules if r.matches(ctx.method, ctx.path)), None)
        if late is not None:
            late.times -= 1
            if late.times <= 0:
                self._late_rules.remove(late)
            self.faults.append(("late", ctx.method, ctx.path))
            return None, late.by
        share = self._fail_share
        if share is None or not share.matches(ctx.method, ctx.path) or share.rng.random() >= share.share:
            return None, 0.0
        mode = share.rng.choice(share.modes)
        self.faults.append((mode, ctx.method, ctx.path))
        if mode == "late":
            return None, share.late_by
        if mode == "429":
            raise _Answer(
                429, _DEFAULT_FAIL_BODIES[429], {"ratelimit-remaining": "0", "ratelimit-reset": str(share.rng.randint(1, 3))}
            )
        if mode == "500":
            raise _Answer(500, {"error": {"message": "Internal Server Error"}})
        raise _Answer(503, _Html("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"))

    def _dispatch(
        self, ctx: _Ctx, *, raw_present: bool, bad_json: bool
    ) -> tuple[int, Any, dict[str, str | None], str | None, float]:
        deliver: list[tuple[FakeSubscription, dict[str, Any]]] = []
        late = 0.0
        with self._lock:
            headers: dict[str, str | None] = dict(self._ratelimit_headers(ctx.headers.get("authorization", ""), spend=False))
            route = next(
                ((m, t, fn, mt) for m, p, t, fn in self._routes if (mt := p.match(ctx.path)) and m == ctx.method),
                None,
            )
            template = route[1] if route else None
            try:
                if ctx.method == "POST" and ctx.path == EVENTS_PATH:  # the Events API v2: tests/fakes/pagerduty_events.py
                    self._failure(ctx, headers)
                    status, payload = self.events.enqueue(ctx.headers, ctx.body, bad_json)
                    return status, payload, {}, None, 0.0
                if route is None:
                    self._violate(f"{ctx.method} {ctx.path}: no such endpoint in the fake")
                    raise _not_found()
                if bad_json:
                    self._violate(f"{ctx.method} {template}: body is not JSON")
                elif self.validator is not None:
                    self.violations.extend(
                        self.validator.check_request(ctx.method, template, ctx.query, ctx.headers, ctx.body, raw_present)
                    )
                self._check_pd_headers(ctx, template)
                self._failure(ctx, headers)
                if ctx.headers.get("authorization") != f"Token token={self.api_key}":
                    raise _pd_error(401, "Authentication failed", 2006)
                headers.update(self._ratelimit_headers(ctx.headers["authorization"]))
                _, late = self._fault(ctx)
                if ctx.headers.get("accept") != ACCEPT_V2:
                    raise _invalid(f"The Accept header must be {ACCEPT_V2}")
                if bad_json:
                    raise _invalid("The request body is not valid JSON")
                if (ctx.method, template) in FROM_REQUIRED:
                    email = ctx.headers.get("from")
                    if not email:
                        raise _invalid("A valid user email must be given in the From header to perform this action")
                    if self._user_by_email(email) is None:
                        raise _invalid("Requester User Not Found")
                status, payload = route[2](route[3].groupdict(), ctx)
                if isinstance(payload, _Deliver):
                    deliver.append((payload.subscription, payload.envelope))
                    payload = None
            except _Answer as ans:
                status, payload = ans.status, ans.body
                headers.update(ans.headers)
        for sub, envelope in deliver:
            self._deliver(sub, envelope)
        return status, payload, headers, template, late

    def _failure(self, ctx: _Ctx, headers: dict[str, str | None]) -> None:
        """Answer now when the fake is down or a `fail_next` rule matches."""
        if self.down:
            raise _pd_error(503, "Service Unavailable")
        rule = next((r for r in self._fail_rules if r.matches(ctx.method, ctx.path)), None)
        if rule is not None:
            rule.times -= 1
            if rule.times <= 0:
                self._fail_rules.remove(rule)
            if rule.status == 429:
                headers["ratelimit-remaining"] = "0"
            raise _Answer(
                rule.status,
                rule.body if rule.body is not None else _DEFAULT_FAIL_BODIES.get(rule.status, {"error": {"message": "Error"}}),
                rule.headers,
            )

    def _violate(self, message: str) -> None:
        """Record a departure; silent without the description (fresh clone: no ../shared)."""
        if self.validator is not None:
            self.violations.append(message)

    def _check_pd_headers(self, ctx: _Ctx, template: str | None) -> None:
        label = f"{ctx.method} {template}"
        if ctx.headers.get("accept") != ACCEPT_V2:
            self._violate(f"{label}: Accept must be {ACCEPT_V2!r}, got {ctx.headers.get('accept')!r}")
        if not ctx.headers.get("authorization", "").startswith("Token token="):
            self._violate(f"{label}: Authorization must be 'Token token=<key>'")
        if ctx.body is not None and not ctx.headers.get("content-type", "").startswith("application/json"):
            self._violate(f"{label}: a JSON body needs Content-Type: application/json")
        if (ctx.method, template) in FROM_REQUIRED and not ctx.headers.get("from"):
            self._violate(f"{label}: PagerDuty requires a From header here")

    # ---------------------------------------------------------------- pagination
    def _page(
        self,
        ctx: _Ctx,
        key: str,
        items: list[Any],
        render: Callable[[Any], dict[str, Any]] = lambda x: x,
        default_limit: int = 25,
    ) -> tuple[int, Any]:
        try:
            limit = int(ctx.q("limit") or default_limit)
            offset = int(ctx.q("offset") or 0)
        except ValueError:
            raise _invalid("limit and offset must be integers") from None
        if limit > 100:
            self._violate(f"{ctx.method} {ctx.path}: limit {limit} > 100 (PagerDuty caps it)")
            limit = 100
        limit = max(1, limit)
        if offset < 0 or offset + limit > self.offset_cap:
            raise _invalid(f"Offset plus limit must not exceed {self.offset_cap}")
        page = items[offset : offset + limit]
        return 200, {
            key: [render(i) for i in page],
            "limit": limit,
            "offset": offset,
            "more": offset + len(page) < len(items),
            "total": len(items) if ctx.q("total") == "true" else None,
        }

    # ---------------------------------------------------------------- routes
    def _get_abilities(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        return 200, {"abilities": list(self.abilities)}

    def _list_users(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        q = (ctx.q("query") or "").lower()
        users = [self._user_json(u) for u in self.users.values() if q in u.name.lower() or q in u.email.lower()]
        return self._page(ctx, "users", users)

    def _get_user(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        user = self.users.get(p["id"])
        if user is None:
            raise _not_found()
        return 200, {"user": self._user_json(user)}

    def _list_services(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        q = (ctx.q("query") or "").lower()
        services = [self._service_json(s) for s in self.services.values() if q in s.name.lower()]
        return self._page(ctx, "services", services)

    def _get_service(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        svc = self.services.get(p["id"])
        if svc is None:
            raise _not_found()
        return 200, {"service": self._service_json(svc)}

    def _get_escalation_policy(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        pol = self.escalation_policies.get(p["id"])
        if pol is None:
            raise _not_found()
        return 200, {"escalation_policy": self._policy_json(pol)}

    def _list_incidents(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        items = list(self.incidents.values())
        if ctx.q("date_range") != "all":
            try:
                until = _parse_ts(ctx.q("until")) if ctx.q("until") else _now() + timedelta(seconds=1)
                since = _parse_ts(ctx.q("since")) if ctx.q("since") else until - timedelta(days=30)
            except ValueError:
                raise _pd_error(400, "Invalid 'since' or 'until' parameter values", 2004) from None
            if since > until or until - since > timedelta(days=183):
                raise _pd_error(400, "Invalid Query Date Range", 2005)
            items = [i for i in items if since <= i.created_at < until]
        if statuses := ctx.qs("statuses[]"):
            items = [i for i in items if i.status in statuses]
        if services := ctx.qs("service_ids[]"):
            items = [i for i in items if i.service_id in services]
        if urgencies := ctx.qs("urgencies[]"):
            items = [i for i in items if i.urgency in urgencies]
        if (key := ctx.q("incident_key")) is not None:
            items = [i for i in items if i.incident_key == key]
        items.sort(key=lambda i: (i.created_at, i.number))
        sort_by = ctx.q("sort_by")
        if sort_by:
            for spec in reversed(sort_by.split(",")):
                fld, _, direction = spec.partition(":")
                if fld not in ("incident_number", "created_at", "resolved_at", "urgency"):
                    raise _invalid(f"Invalid sort_by field {fld}")
                attr = "number" if fld == "incident_number" else fld
                items.sort(
                    key=lambda i, a=attr: (getattr(i, a) is None, getattr(i, a) or 0),
                    reverse=direction == "desc",
                )
        return self._page(ctx, "incidents", items, self._incident_json)

    def _create_incident(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        inc = body.get("incident")
        if not isinstance(inc, dict):
            raise _invalid("incident is required")
        title = inc.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _invalid("Title cannot be empty.")
        service = inc.get("service") or {}
        service_id = service.get("id") if isinstance(service, dict) else None
        if not service_id:
            raise _invalid("Service is required.")
        if service_id not in self.services:
            raise _not_found()
        urgency = inc.get("urgency", "high")
        if urgency not in ("high", "low"):
            raise _invalid("Urgency must be high or low.")
        policy = inc.get("escalation_policy")
        policy_id = policy.get("id") if isinstance(policy, dict) else None
        if policy_id and policy_id not in self.escalation_policies:
            raise _invalid("Escalation policy not found.")
        key = inc.get("incident_key")
        if key is not None and any(
            i.incident_key == key and i.service_id == service_id and i.status != "resolved" for i in self.incidents.values()
        ):
            raise _pd_error(400, "Arguments Caused Error", 2002, [DUPLICATE_KEY_TEXT])
        details = (inc.get("body") or {}).get("details") if isinstance(inc.get("body"), dict) else None
        created = self._new_incident(
            service_id=service_id,
            title=title,
            urgency=urgency,
            incident_key=key,
            escalation_policy_id=policy_id,
            from_email=ctx.headers.get("from"),
            created_at=None,
            details=details,
        )
        return 201, {"incident": self._incident_json(created)}

    def _get_incident(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        inc = self.incidents.get(p["id"])
        if inc is None:
            raise _not_found()
        return 200, {"incident": self._incident_json(inc)}

    def _update_incident(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        inc = self.incidents.get(p["id"])
        if inc is None:
            raise _not_found()
        body = ctx.body if isinstance(ctx.body, dict) else {}
        change = body.get("incident")
        if not isinstance(change, dict) or change.get("type") not in ("incident", "incident_reference"):
            raise _invalid("incident.type must be incident or incident_reference")
        status = change.get("status")
        if status is not None and status not in ("triggered", "acknowledged", "resolved"):
            raise _invalid(f"Invalid status {status}")
        urgency = change.get("urgency")
        if urgency is not None and urgency not in ("high", "low"):
            raise _invalid("Urgency must be high or low.")
        level = change.get("escalation_level")
        if level is not None:
            policy = self.escalation_policies.get(inc.escalation_policy_id or "")
            if not isinstance(level, int) or policy is None or not 1 <= level <= max(1, len(policy.oncall_user_ids)):
                raise _invalid("Escalation level is not valid for this escalation policy")
        assignments = change.get("assignments")
        assignees: list[str] | None = None
        if assignments is not None:
            assignees = [((a or {}).get("assignee") or {}).get("id") for a in assignments if isinstance(a, dict)]
            if not assignees or any(a not in self.users for a in assignees):
                raise _invalid("Assignments must name existing users")
        user = self._user_by_email(ctx.headers.get("from"))
        agent = user.id if user else None
        if assignees is not None and assignees != inc.assignments:
            inc.assignments = list(assignees)
            inc.updated_at = _now()
            self._log(
                inc,
                "assign_log_entry",
                inc.updated_at,
                agent_user_id=agent,
                channel="api",
                summary="Assigned to " + ", ".join(self._user_name(u) for u in assignees),
                assignees=list(assignees),
            )
            self._log_notifications(inc, inc.updated_at)
        if urgency is not None and urgency != inc.urgency:
            inc.urgency = urgency
            inc.updated_at = _now()
            self._log(
                inc,
                "urgency_change_log_entry",
                inc.updated_at,
                agent_user_id=agent,
                channel="api",
                summary=f"Urgency changed to {urgency}",
            )
        if level is not None:
            inc.escalation_level = level
            inc.assignments = self._oncall_at(inc.escalation_policy_id, level)
            if inc.status == "acknowledged" and status is None:
                self._set_status(inc, "triggered", from_email=ctx.headers.get("from"), agent_user_id=agent)
            inc.updated_at = _now()
            self._log(
                inc,
                "escalate_log_entry",
                inc.updated_at,
                agent_user_id=agent,
                channel="api",
                summary=f"Escalated to level {level}",
                assignees=list(inc.assignments),
            )
            self._log_notifications(inc, inc.updated_at)
        if status is not None:
            if status == "resolved":
                inc.resolution = change.get("resolution")
            self._set_status(inc, status, from_email=ctx.headers.get("from"), agent_user_id=agent)
        return 200, {"incident": self._incident_json(inc)}

    def _list_notes(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        inc = self.incidents.get(p["id"])
        if inc is None:
            raise _not_found()
        return 200, {"notes": [self._note_json(n) for n in inc.notes]}

    def _add_note(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        inc = self.incidents.get(p["id"])
        if inc is None:
            raise _not_found()
        note = (ctx.body or {}).get("note") if isinstance(ctx.body, dict) else None
        content = note.get("content") if isinstance(note, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise _invalid("Note content cannot be empty.")
        user = self._user_by_email(ctx.headers.get("from"))
        created = FakeNote(self._new_id("N"), content, user.id if user else None, _now())
        self._annotate(inc, created)
        return 200, {"note": self._note_json(created)}

    def _list_log_entries(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        """``GET /log_entries``, modelled on PagerDuty's account-wide incident log.

        * ``since`` (inclusive) / ``until`` (exclusive) filter on the entry's ``created_at`` (the
          change time); defaults as for ``GET /incidents`` (the last 30 days up to now).
        * ``is_overview=true`` keeps :data:`OVERVIEW_LOG_ENTRY_TYPES` (no notifications).
        * ``include[]=incidents`` / ``include[]=services`` expand the references to the full
          current objects, exactly as ``GET /incidents/{id}`` / ``GET /services/{id}`` render them.
        * Order: newest first (``created_at`` descending, later-recorded first within a second),
          as PagerDuty lists log entries; there is no ``sort_by`` on this endpoint.
        * Paged like every list: ``limit`` (default 25, max 100), ``offset``, ``more``, ``total``;
          offset + limit <= 10000.
        """
        since, until = self._log_window(ctx)
        overview = ctx.q("is_overview") == "true"
        includes = set(ctx.qs("include[]"))
        lo = bisect.bisect_left(self.log_entries, (since, -1), key=_log_key)
        hi = bisect.bisect_left(self.log_entries, (until, -1), key=_log_key)
        window = self.log_entries[lo:hi]
        window.reverse()
        if overview:
            window = [e for e in window if e.type in OVERVIEW_LOG_ENTRY_TYPES]
        return self._page(ctx, "log_entries", window, lambda e: self._log_entry_json(e, includes))

    @staticmethod
    def _log_window(ctx: _Ctx) -> tuple[datetime, datetime]:
        """``since`` (inclusive) and ``until`` (exclusive) of a log listing, PagerDuty's defaults and errors."""
        try:
            until = _parse_ts(ctx.q("until")) if ctx.q("until") else _now() + timedelta(seconds=1)
            since = _parse_ts(ctx.q("since")) if ctx.q("since") else until - timedelta(days=30)
        except ValueError:
            raise _pd_error(400, "Invalid 'since' or 'until' parameter values", 2004) from None
        if since > until:
            raise _pd_error(400, "Invalid Query Date Range", 2005)
        return since, until

    def _list_incident_log_entries(self, params: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        """``GET /incidents/{id}/log_entries``: one incident's log, newest first, notifications included
        unless ``is_overview=true``; ``since``/``until`` as for the account-wide list."""
        inc = self.incidents.get(params["id"])
        if inc is None:
            raise _not_found()
        since, until = self._log_window(ctx)
        window = [e for e in self.log_entries if e.incident_id == inc.id and since <= e.created_at < until]
        window.reverse()
        if ctx.q("is_overview") == "true":
            window = [e for e in window if e.type in OVERVIEW_LOG_ENTRY_TYPES]
        return self._page(ctx, "log_entries", window, lambda e: self._log_entry_json(e, set(ctx.qs("include[]"))))

    def _log_entry_json(self, e: FakeLogEntry, includes: set[str]) -> dict[str, Any]:
        inc = self.incidents[e.incident_id]
        agent = self._user_ref(e.agent_user_id) if e.agent_user_id else self._service_ref(inc.service_id)
        out: dict[str, Any] = {
            "id": e.id,
            "type": e.type,
            "summary": e.summary,
            "self": f"{self.base_url}/log_entries/{e.id}?incident_id={inc.id}",
            "html_url": f"{HTML_BASE}/incidents/{inc.id}/log_entries/{e.id}",
            "created_at": _ts(e.created_at),
            "agent": agent,
            "channel": {"type": e.channel},
            "service": (
                self._service_json(self.services[inc.service_id])
                if "services" in includes and inc.service_id in self.services
                else self._service_ref(inc.service_id)
            ),
            "incident": (
                self._incident_json(inc)
                if "incidents" in includes
                else self._ref("incident", inc.id, f"[#{inc.number}] {inc.title}", "incidents")
            ),
            "teams": [],
            "contexts": [],
            "event_details": {},
        }
        if e.type in ("assign_log_entry", "escalate_log_entry", "delegate_log_entry"):
            out["assignees"] = [self._user_ref(u) for u in e.assignees]
        if e.type == "notify_log_entry" and e.user_id:
            out["user"] = self._user_ref(e.user_id)
        return out

    def _list_oncalls(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        """On-calls overlapping [since, until] (both default to now; one instant when equal): a level
        that targets a user is on call with no start or end; a schedule's level, shift by shift."""
        try:
            since = _parse_ts(ctx.q("since")) if ctx.q("since") else _now()
            until = _parse_ts(ctx.q("until")) if ctx.q("until") else since
        except ValueError:
            raise _pd_error(400, "Invalid 'since' or 'until' parameter values", 2004) from None
        if until < since:
            raise _pd_error(400, "Invalid Query Date Range", 2005)
        wanted = set(ctx.qs("escalation_policy_ids[]"))
        out = []
        for pol in self.escalation_policies.values():
            if wanted and pol.id not in wanted:
                continue
            for level, target in enumerate(pol.oncall_user_ids, start=1):
                schedule = self.schedules.get(target)
                if schedule is None:
                    shifts: list[tuple[str, datetime | None, datetime | None]] = [(target, None, None)]
                else:
                    shifts = [(u, b, e) for u, b, e in schedule.shifts(since, until)]
                for uid, begin, end in shifts:
                    out.append(
                        {
                            "user": self._user_ref(uid),
                            "schedule": self._ref("schedule", schedule.id, schedule.name, "schedules") if schedule else None,
                            "escalation_policy": self._policy_ref(pol.id),
                            "escalation_level": level,
                            "start": _ts(begin),
                            "end": _ts(end),
                        }
                    )
        return self._page(ctx, "oncalls", out)

    def _add_responder_request(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        inc = self.incidents.get(p["id"])
        if inc is None:
            raise _not_found()
        body = ctx.body if isinstance(ctx.body, dict) else {}
        requester = self.users.get(str(body.get("requester_id")))
        if requester is None:
            raise _invalid("Requester not found")
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise _invalid("Message cannot be empty")
        targets = []
        for item in body.get("responder_request_targets") or []:
            target = (item or {}).get("responder_request_target") or {}
            known = {"user_reference": self.users, "escalation_policy_reference": self.escalation_policies}.get(
                target.get("type")
            )
            if known is None or target.get("id") not in known:
                raise _invalid("Responder request target not found")
            targets.append((target["type"], target["id"]))
        if not targets:
            raise _invalid("At least one responder request target is required")
        at = _now()
        inc.updated_at = at
        answer_targets = []
        for kind, tid in targets:
            users = [tid] if kind == "user_reference" else self._oncall_at(tid, 1)
            answer_targets.append(
                {
                    "responder_request_target": {
                        "type": "user" if kind == "user_reference" else "escalation_policy",
                        "id": tid,
                        "summary": self._user_name(tid) if kind == "user_reference" else self.escalation_policies[tid].name,
                        "incidents_responders": [
                            {
                                "state": "pending",
                                "user": self._user_ref(u),
                                "incident": self._ref("incident", inc.id, inc.title, "incidents"),
                                "updated_at": _ts(at),
                                "message": message,
                                "requester": self._user_ref(requester.id),
                                "requested_at": _ts(at),
                            }
                            for u in users
                        ],
                    }
                }
            )
        answer = {
            "incident": self._ref("incident", inc.id, inc.title, "incidents"),
            "requester": self._user_ref(requester.id),
            "requested_at": _ts(at),
            "message": message,
            "responder_request_targets": answer_targets,
        }
        inc.responder_requests.append({"requester_id": requester.id, "message": message, "targets": targets, "answer": answer})
        return 200, {"responder_request": answer}

    def _create_subscription(self, _: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        sub = (ctx.body or {}).get("webhook_subscription") if isinstance(ctx.body, dict) else None
        if not isinstance(sub, dict):
            raise _invalid("webhook_subscription is required")
        delivery = sub.get("delivery_method") or {}
        url = delivery.get("url") if isinstance(delivery, dict) else None
        flt = sub.get("filter") or {}
        events = sub.get("events")
        if not url or not isinstance(events, list) or not events:
            raise _invalid("delivery_method.url and events are required")
        if flt.get("type") not in ("account_reference", "service_reference", "team_reference"):
            raise _invalid("filter.type is invalid")
        if flt.get("type") != "account_reference" and not flt.get("id"):
            raise _invalid("filter.id is required")
        created = FakeSubscription(
            id=self._new_id("PWH"),
            url=url,
            secret=_secrets.token_urlsafe(48),
            filter_type=flt["type"],
            filter_id=flt.get("id"),
            events=[str(e) for e in events],
            description=sub.get("description"),
            active=bool(sub.get("active", True)),
        )
        self.webhook_subscriptions[created.id] = created
        return 200, {"webhook_subscription": self._subscription_json(created, with_secret=True)}

    def _delete_subscription(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        if self.webhook_subscriptions.pop(p["id"], None) is None:
            raise _not_found()
        return 204, None

    def _ping_subscription(self, p: dict[str, str], ctx: _Ctx) -> tuple[int, Any]:
        sub = self.webhook_subscriptions.get(p["id"])
        if sub is None:
            raise _not_found()
        sub.pings_sent += 1
        envelope = self._envelope("pagey.ping", "pagey", {"message": "Hello from your friend Pagey!", "type": "ping"}, agent=None)
        return 202, _Deliver(sub, envelope)

    # ---------------------------------------------------------------- webhooks out
    def _envelope(
        self,
        event_type: str,
        resource_type: str,
        data: dict[str, Any],
        *,
        agent: dict[str, Any] | None,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        at = (occurred_at or datetime.now(UTC)).astimezone(UTC)
        return {
            "event": {
                "id": event_id or uuid.uuid4().hex.upper()[:26],
                "event_type": event_type,
                "resource_type": resource_type,
                "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
                "agent": agent,
                "client": None,
                "data": data,
            }
        }

    def _incident_webhook_data(self, inc: FakeIncident) -> dict[str, Any]:
        """Shaped like ``official-envelope-incident.priority_updated.json``'s data."""
        return {
            "id": inc.id,
            "type": "incident",
            "self": f"{self.base_url}/incidents/{inc.id}",
            "html_url": f"{HTML_BASE}/incidents/{inc.id}",
            "number": inc.number,
            "status": inc.status,
            "incident_key": inc.incident_key,
            "created_at": _ts(inc.created_at),
            "title": inc.title,
            "service": self._service_ref(inc.service_id),
            "assignees": [self._user_ref(u) for u in inc.assignments],
            "escalation_policy": self._policy_ref(inc.escalation_policy_id) if inc.escalation_policy_id else None,
            "teams": [],
            "priority": None,
            "urgency": inc.urgency,
            "conference_bridge": None,
            "resolve_reason": None,
        }

    def _note_webhook_data(self, inc: FakeIncident) -> dict[str, Any]:
        note = inc.notes[-1] if inc.notes else FakeNote(self._new_id("N"), "", None, _now())
        ref = self._ref("incident", inc.id, inc.title, "incidents")
        return {"incident": ref, "id": note.id, "content": note.content, "trimmed": False, "type": "incident_note"}

    def build_event(
        self,
        event_type: str,
        incident_id: str | None = None,
        *,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        data: dict[str, Any] | None = None,
        agent_user_id: str | None = None,
    ) -> dict[str, Any]:
        """The v3 envelope ``send_webhook`` would deliver (exposed for tests of receivers)."""
        with self._lock:
            inc = self.incidents.get(incident_id) if incident_id else None
            if incident_id and inc is None:
                raise KeyError(f"unknown incident {incident_id}")
            if data is None:
                if inc is None:
                    data = {}
                elif event_type == "incident.annotated":
                    data = self._note_webhook_data(inc)
                else:
                    data = self._incident_webhook_data(inc)
            if agent_user_id is None and inc is not None and inc.history:
                agent_user_id = inc.history[-1].agent_user_id
            agent = self._user_ref(agent_user_id) if agent_user_id else None
            resource_type = event_type.split(".", 1)[0]
            return self._envelope(event_type, resource_type, data, agent=agent, event_id=event_id, occurred_at=occurred_at)

    def send_webhook(
        self,
        url: str,
        event_type: str,
        incident_id: str | None = None,
        *,
        secrets: list[str] | None = None,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        data: dict[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        webhook_id: str | None = None,
        subscription_id: str = "PFAKESUB",
        timeout: float = 5.0,
    ) -> httpx.Response:
        """Deliver one signed v3 event to ``url`` the way PagerDuty does; return the answer.

        ``webhook_id`` (``X-Webhook-Id``) stays the same on a redelivery of one delivery.
        """
        envelope = self.build_event(event_type, incident_id, event_id=event_id, occurred_at=occurred_at, data=data)
        return self._post_event(url, envelope, secrets or [], subscription_id, webhook_id, extra_headers, timeout)

    def _post_event(
        self,
        url: str,
        envelope: dict[str, Any],
        secrets: list[str],
        subscription_id: str,
        webhook_id: str | None,
        extra_headers: Mapping[str, str] | None,
        timeout: float,
    ) -> httpx.Response:
        raw = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Webhook-Subscription": subscription_id,
        }
        if secrets:
            headers["X-PagerDuty-Signature"] = ",".join(sign(raw, s) for s in secrets)
        headers.update(extra_headers or {})
        return httpx.post(url, content=raw, headers=headers, timeout=timeout)

    def _deliver(self, sub: FakeSubscription, envelope: dict[str, Any]) -> httpx.Response | None:
        event_type = envelope["event"]["event_type"]
        try:
            resp = self._post_event(sub.url, envelope, [sub.secret], sub.id, None, None, 5.0)
        except httpx.HTTPError as exc:
            sub.deliveries.append(Delivery(event_type, None, type(exc).__name__))
            return None
        sub.deliveries.append(Delivery(event_type, resp.status_code))
        return resp

    def notify_subscriptions(self, event_type: str, incident_id: str) -> list[httpx.Response]:
        """Send ``event_type`` about the incident to every active subscription that wants it."""
        with self._lock:
            inc = self.incidents[incident_id]
            targets = [
                s
                for s in self.webhook_subscriptions.values()
                if s.active
                and event_type in s.events
                and (
                    s.filter_type == "account_reference"
                    or (s.filter_type == "service_reference" and s.filter_id == inc.service_id)
                )
            ]
        out = []
        for sub in targets:
            resp = self._deliver(sub, self.build_event(event_type, incident_id))
            if resp is not None:
                out.append(resp)
        return out


@dataclass
class _Deliver:
    """A route's request to send a webhook after answering (outside the state lock)."""

    subscription: FakeSubscription
    envelope: dict[str, Any]
