"""PagerDuty's Events API v2 (`POST /v2/enqueue`) for FakePagerDuty, on the same local server.

Each event is checked against PagerDuty's description (``../shared/pagerduty/events-v2-openapiv3.json``)
plus what it states only in words: a trigger needs ``payload``; acknowledge and resolve need
``dedup_key``; ``summary`` <= 1024 and ``dedup_key`` <= 255 characters; and, since the description
allows unknown properties, a field-name check (a typo such as ``dedup_keys`` would pass otherwise).
Departures of our client go to ``FakePagerDuty.violations``; the fake's own 202 answers are checked
against the description too (``response_violations``).

What PagerDuty does with an event, as modelled:
- a routing key belongs to one service (``add_routing_key``); an unknown one is a 400 ``Invalid routing key``;
- ``trigger`` with a dedup_key that has no open incident triggers one on that service (incident_key = the
  dedup_key, urgency from the severity as a "severity-based" service sets it); with an open one it is
  deduplicated: nothing changes but the event's links, which are kept;
- ``acknowledge`` / ``resolve`` change the open incident of that dedup_key; for an unknown (or resolved)
  one they are ignored, answered 202 all the same;
- answers: 202 ``{status: success, message: Event processed, dedup_key}``; 400 ``{status: invalid event,
  message: Event object is invalid, errors}``. ``fail_next(..., path_prefix="/v2/enqueue")`` and ``down``
  apply as for REST calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.pagerduty_api import FakeIncident, FakePagerDuty

EVENTS_PATH = "/v2/enqueue"
SPEC_RELATIVE = Path("pagerduty") / "events-v2-openapiv3.json"
_URN = "urn:pagerduty:events-v2"
_REQUEST = "/paths/~1enqueue/post/requestBody/content/application~1json/schema"
_SUCCESS = "/components/responses/Success/content/application~1json/schema"
KNOWN_FIELDS = {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"}
KNOWN_PAYLOAD = {"summary", "timestamp", "severity", "source", "component", "group", "class", "custom_details"}
HIGH = {"critical", "error"}


@dataclass
class ReceivedEvent:
    body: dict[str, Any]
    status: int
    outcome: str  # triggered, deduplicated, acknowledged, resolved, ignored, invalid


@dataclass
class _Validator:
    spec: dict[str, Any]
    validators: dict[str, Any] = field(default_factory=dict)

    def errors(self, pointer: str, value: Any) -> list[str]:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        if pointer not in self.validators:
            registry = Registry().with_resource(_URN, Resource(contents=self.spec, specification=DRAFT4))
            self.validators[pointer] = jsonschema.Draft4Validator({"$ref": f"{_URN}#{pointer}"}, registry=registry)
        found = []
        for err in self.validators[pointer].iter_errors(value):
            where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            found.append(f"body{where}: {err.message[:200]}")
        return found


def _load(shared_dir: Path) -> _Validator | None:
    from tests.fakes.pagerduty_api import _to_json_schema

    path = shared_dir / SPEC_RELATIVE
    return _Validator(_to_json_schema(json.loads(path.read_bytes()))) if path.is_file() else None


class FakeEventsApi:
    def __init__(self, fake: FakePagerDuty, shared_dir: Path) -> None:
        self.fake = fake
        self.validator = _load(shared_dir)
        self.routing_keys: dict[str, str] = {}  # routing key -> service id
        self.received: list[ReceivedEvent] = []
        self.links: dict[str, list[dict[str, Any]]] = {}  # incident id -> links of the events filed into it

    def add_routing_key(self, routing_key: str, service_id: str) -> None:
        """An Events API v2 integration on a service: its Integration Key."""
        self.routing_keys[routing_key] = service_id

    def accepted(self, outcome: str | None = None) -> list[dict[str, Any]]:
        return [e.body for e in self.received if e.status == 202 and (outcome is None or e.outcome == outcome)]

    def enqueue(self, headers: dict[str, str], body: Any, bad_json: bool) -> tuple[int, Any]:
        """Under the fake's lock, after its fault rules."""
        if bad_json or not isinstance(body, dict):
            return self._invalid(
                body, ["JSON parse error"], status="Unrecognized object", message="Event object format is unrecognized"
            )
        problems = self._check(body)
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append("Content-Type must be application/json")
        if problems:
            self.fake.violations.extend(f"POST {EVENTS_PATH}: {p}" for p in problems)
            return self._invalid(body, problems)
        service_id = self.routing_keys.get(body["routing_key"])
        if service_id is None:
            return self._invalid(body, ["Invalid routing key"])
        outcome = self._apply(service_id, body)
        answer = {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}
        if self.validator is not None:
            self.fake.response_violations.extend(
                f"POST {EVENTS_PATH} -> 202 {e}" for e in self.validator.errors(_SUCCESS, answer)
            )
        self.received.append(ReceivedEvent(body, 202, outcome))
        return 202, answer

    def _check(self, body: dict[str, Any]) -> list[str]:
        problems = self.validator.errors(_REQUEST, body) if self.validator is not None else []
        problems += [f"body.{k}: not a field of an event" for k in sorted(set(body) - KNOWN_FIELDS)]
        payload = body.get("payload")
        if isinstance(payload, dict):
            problems += [f"body.payload.{k}: not a field of a payload" for k in sorted(set(payload) - KNOWN_PAYLOAD)]
            if len(str(payload.get("summary", ""))) > 1024:
                problems.append("body.payload.summary: longer than 1024 characters")
        if body.get("event_action") == "trigger" and not isinstance(payload, dict):
            problems.append("body.payload: a trigger needs a payload")
        key = body.get("dedup_key")
        if body.get("event_action") in ("acknowledge", "resolve") and not key:
            problems.append("body.dedup_key: required to acknowledge or resolve")
        if body.get("event_action") == "trigger" and not key:
            problems.append("body.dedup_key: im always names one (PagerDuty would make one up)")
        if isinstance(key, str) and len(key) > 255:
            problems.append("body.dedup_key: longer than 255 characters")
        return problems

    def _apply(self, service_id: str, body: dict[str, Any]) -> str:
        key, action = body["dedup_key"], body["event_action"]
        open_one = self._open(service_id, key)
        if action == "trigger":
            if open_one is not None:
                self.links.setdefault(open_one.id, []).extend(body.get("links", []))
                return "deduplicated"
            payload = body["payload"]
            incident = self.fake._new_incident(
                service_id=service_id,
                title=payload["summary"],
                urgency="high" if payload["severity"] in HIGH else "low",
                incident_key=key,
                escalation_policy_id=None,
                from_email=None,
                created_at=None,
                details=payload.get("custom_details"),
            )
            self.links[incident.id] = list(body.get("links", []))
            return "triggered"
        if open_one is None:
            return "ignored"
        target = "acknowledged" if action == "acknowledge" else "resolved"
        self.fake._set_status(open_one, target, from_email=None)
        return target

    def _open(self, service_id: str, key: str) -> FakeIncident | None:
        return next(
            (
                i
                for i in self.fake.incidents.values()
                if i.service_id == service_id and i.incident_key == key and i.status != "resolved"
            ),
            None,
        )

    def _invalid(
        self, body: Any, errors: list[str], *, status: str = "invalid event", message: str = "Event object is invalid"
    ) -> tuple[int, Any]:
        self.received.append(ReceivedEvent(body if isinstance(body, dict) else {}, 400, "invalid"))
        return 400, {"status": status, "message": message, "errors": errors}
