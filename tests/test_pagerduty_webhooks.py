"""Webhooks v3: signatures (go-pagerduty vector, rotation) and payload parsing (official examples)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from integrations.pagerduty.api.webhook_models import (
    IncidentData,
    IncidentNoteData,
    InvalidWebhookPayload,
    parse_event,
)
from integrations.pagerduty.api.webhook_signature import sign, verify
from tests.fakes.pagerduty_api import DEFAULT_SHARED_DIR, FakePagerDuty

WEBHOOKS_DIR = DEFAULT_SHARED_DIR / "pagerduty" / "webhooks"
SKIP_REASON = f"PagerDuty reference files not found at {WEBHOOKS_DIR} (../shared is absent on a fresh clone)"
needs_shared = pytest.mark.skipif(not WEBHOOKS_DIR.is_dir(), reason=SKIP_REASON)


def shared(name: str) -> Path:
    path = WEBHOOKS_DIR / name
    if not path.is_file():
        pytest.skip(SKIP_REASON)
    return path


# ----------------------------------------------------------------------------- signatures


@pytest.fixture
def vector() -> tuple[bytes, dict[str, str]]:
    meta = json.loads(shared("go-pagerduty-signature-vector.meta.json").read_text())
    body = shared("go-pagerduty-signature-vector.body.json").read_bytes()
    return body, meta


def test_go_pagerduty_vector_valid_header_verifies(vector: tuple[bytes, dict[str, str]]) -> None:
    body, meta = vector
    assert sign(body, meta["secret"]) == meta["valid_header"]
    assert verify(body, meta["valid_header"], [meta["secret"]]) is True


def test_go_pagerduty_vector_mismatching_header_fails(vector: tuple[bytes, dict[str, str]]) -> None:
    body, meta = vector
    assert verify(body, meta["mismatch_header"], [meta["secret"]]) is False
    assert verify(body + b" ", meta["valid_header"], [meta["secret"]]) is False  # body tampered
    assert verify(body, meta["valid_header"], ["another-secret"]) is False


def test_rotation_several_v1_values_and_several_secrets() -> None:
    body = b'{"event":{}}'
    old, new = "old-secret", "new-secret"
    both = f"{sign(body, old)},{sign(body, new)}"
    assert verify(body, both, [new]) is True
    assert verify(body, both, [old]) is True
    assert verify(body, sign(body, old), [new, old]) is True
    assert verify(body, f"{sign(body, 'gone')}, {sign(body, new)}", [new]) is True  # spaces tolerated
    assert verify(body, sign(body, old), [new]) is False


def test_non_v1_schemes_are_ignored() -> None:
    body, secret = b"{}", "s3cret"
    digest = sign(body, secret).removeprefix("v1=")
    assert verify(body, f"v0=abc,v1={digest}", [secret]) is True
    assert verify(body, f"v2={digest}", [secret]) is False
    assert verify(body, f"V1={digest.upper()}", [secret]) is True  # scheme and hex case-insensitive


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "garbage", "v1=", "v1", "=abc", ",,,", "v1=zz", "v1=\u00fc\u00fc", "v1==", "sha256=abc"],
)
def test_missing_or_garbled_header_is_false(header: str | None) -> None:
    assert verify(b"{}", header, ["s3cret"]) is False


def test_no_secrets_never_verifies() -> None:
    body = b"{}"
    assert verify(body, sign(body, ""), []) is False
    assert verify(body, sign(body, ""), [""]) is False


# ----------------------------------------------------------------------------- parsing official examples


@needs_shared
def test_parse_official_incident_envelope() -> None:
    event = parse_event(shared("official-envelope-incident.priority_updated.json").read_bytes())
    assert event.id == "5ac64822-4adc-4fda-ade0-410becf0de4f"
    assert event.event_type == "incident.priority_updated" and event.resource_type == "incident"
    assert event.occurred_at == datetime(2020, 10, 2, 18, 45, 22, 169000, tzinfo=UTC)
    assert event.agent is not None and event.agent.id == "PLH1HKV"
    assert event.client == {"name": "PagerDuty"}
    data = event.data
    assert isinstance(data, IncidentData)
    assert (data.id, data.number, data.status, data.urgency) == ("PGR0VU2", 2, "triggered", "high")
    assert data.title == "A little bump in the road"
    assert data.incident_key == "d3640fbd41094207a1c11e58e46b1662"
    assert data.service is not None and data.service.id == "PF9KMXH"
    assert data.assignee_ids == ["PTUXL6G"]
    assert data.escalation_policy is not None and data.escalation_policy.id == "PUS0KTE"
    assert data.priority is not None and data.priority.summary == "P1"
    assert data.html_url == "https://acme.pagerduty.com/incidents/PGR0VU2"
    assert event.incident_id == "PGR0VU2"


@needs_shared
def test_parse_official_service_envelope_keeps_data_as_dict() -> None:
    event = parse_event(shared("official-envelope-service.updated.json").read_bytes())
    assert event.event_type == "service.updated" and event.agent is None
    assert isinstance(event.data, dict) and event.data["id"] == "PF9KMXH"
    assert event.incident_id is None


@needs_shared
def test_parse_signature_vector_body() -> None:
    event = parse_event(shared("go-pagerduty-signature-vector.body.json").read_bytes())
    assert isinstance(event.data, IncidentData) and event.data.id == "PGR0VU2"


def envelope(event_type: str, data: dict[str, Any], **over: Any) -> bytes:
    event = {
        "id": "01TEST",
        "event_type": event_type,
        "resource_type": event_type.split(".")[0],
        "occurred_at": "2024-05-01T10:00:00.000Z",
        "agent": None,
        "client": None,
        "data": data,
    }
    event.update(over)
    return json.dumps({"event": event}).encode()


INCIDENT_EVENTS = [
    "incident.acknowledged",
    "incident.delegated",
    "incident.escalated",
    "incident.priority_updated",
    "incident.reassigned",
    "incident.reopened",
    "incident.resolved",
    "incident.triggered",
    "incident.unacknowledged",
]


@needs_shared
@pytest.mark.parametrize("event_type", INCIDENT_EVENTS)
def test_incident_events_carry_incident_data(event_type: str) -> None:
    data = json.loads(shared("official-data-incident.json").read_text())
    event = parse_event(envelope(event_type, data))
    assert isinstance(event.data, IncidentData) and event.data.id == "PGR0VU2"


@needs_shared
def test_annotated_carries_a_note() -> None:
    data = json.loads(shared("official-data-incident_note.json").read_text())
    event = parse_event(envelope("incident.annotated", data))
    assert isinstance(event.data, IncidentNoteData)
    assert event.data.content == "I sure am glad we are using PagerDuty!"
    assert event.data.id == "P2LA89X" and event.incident_id == "PGR0VU2"


@needs_shared
@pytest.mark.parametrize(
    ("file", "event_type", "expected"),
    [
        ("incident", "incident.triggered", IncidentData),
        ("incident_note", "incident.annotated", IncidentNoteData),
        ("incident_responder", "incident.responder.added", dict),
        ("incident_status_update", "incident.status_update_published", dict),
        ("incident_action_invocation", "incident.action_invocation.created", dict),
        ("incident_conference_bridge", "incident.conference_bridge.updated", dict),
        ("incident_field_values", "incident.custom_field_values.updated", dict),
        ("incident_role_assignment", "incident.role.assigned", dict),
        ("incident_task", "incident.task.created", dict),
        ("incident_workflow_instance", "incident.workflow.started", dict),
        ("service", "service.updated", dict),
        ("service_field_values", "service.custom_field_values.updated", dict),
    ],
)
def test_every_official_data_example_parses(file: str, event_type: str, expected: type) -> None:
    data = json.loads(shared(f"official-data-{file}.json").read_text())
    event = parse_event(envelope(event_type, data))
    assert isinstance(event.data, expected)
    if isinstance(data.get("incident"), dict):
        assert event.incident_id == data["incident"]["id"]


def test_unknown_event_type_keeps_data_as_dict() -> None:
    event = parse_event(envelope("pagey.ping", {"message": "Hello from your friend Pagey!", "type": "ping"}))
    assert event.data == {"message": "Hello from your friend Pagey!", "type": "ping"}


# ----------------------------------------------------------------------------- invalid payloads


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"{}", "no 'event' object"),
        (b'{"event": "x"}', "'event' is not an object"),
        (envelope("incident.triggered", {"id": "P1", "type": "incident"}, id=None), "missing id"),
        (
            json.dumps({"event": {"id": "E1", "data": {}}}).encode(),
            "missing event_type, occurred_at",
        ),
        (envelope("incident.triggered", {"id": "P1"}, occurred_at="yesterday"), "occurred_at"),
        (envelope("incident.triggered", []), "data is not an object"),
        (envelope("incident.triggered", {"type": "incident", "title": "no id"}), "not a valid IncidentData: id"),
        (
            envelope("incident.annotated", {"type": "incident_note", "id": "N1", "incident": {"id": "P1"}}),
            "not a valid IncidentNoteData: content",
        ),
        (envelope("incident.triggered", {"id": "P1", "number": "two"}), "number"),
    ],
)
def test_invalid_payloads_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidWebhookPayload) as exc:
        parse_event(raw)
    assert reason in exc.value.reason
    assert isinstance(exc.value, ValueError) and str(exc.value) == exc.value.reason


# ----------------------------------------------------------------------------- the fake's deliveries


class Receiver:
    """A local HTTP endpoint that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pagerduty/webhook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as fake:
        fake.add_user("PUANN01", "Ann Lee", "ann@example.com")
        fake.add_escalation_policy("PEP0001", "Payments", ["PUANN01"])
        fake.add_service("PSVC001", "Payments API", "PEP0001")
        fake.add_service("PSVC002", "Web", "PEP0001")
        yield fake


def test_send_webhook_signs_with_every_secret_and_sets_pd_headers(fake: FakePagerDuty, receiver: Receiver) -> None:
    inc = fake.trigger_incident(service_id="PSVC001", title="Checkout down", incident_key="im-1")
    fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUANN01")
    resp = fake.send_webhook(
        receiver.url, "incident.acknowledged", inc.id, secrets=["old", "new"], event_id="EV1", webhook_id="WH1"
    )
    assert resp.status_code == 200
    headers, body = receiver.received[0]
    assert headers["User-Agent"] == "PagerDuty-Webhook/V3.0"
    assert headers["X-Webhook-Id"] == "WH1" and headers["X-Webhook-Subscription"] == "PFAKESUB"
    assert headers["X-PagerDuty-Signature"].count("v1=") == 2
    assert verify(body, headers["X-PagerDuty-Signature"], ["new"])
    assert verify(body, headers["X-PagerDuty-Signature"], ["old"])
    event = parse_event(body)
    assert event.id == "EV1" and event.agent is not None and event.agent.id == "PUANN01"
    assert isinstance(event.data, IncidentData)
    assert (event.data.id, event.data.status, event.data.incident_key) == (inc.id, "acknowledged", "im-1")
    assert event.data.assignee_ids == ["PUANN01"]


@needs_shared
def test_fake_incident_data_has_the_official_shape(fake: FakePagerDuty) -> None:
    official = json.loads(shared("official-envelope-incident.priority_updated.json").read_text())["event"]
    inc = fake.trigger_incident(service_id="PSVC001", title="x")
    built = fake.build_event("incident.priority_updated", inc.id)["event"]
    assert set(built) == set(official)
    assert set(built["data"]) <= set(official["data"])
    assert set(official["data"]) - set(built["data"]) <= {"reopened_at"}


def test_annotated_event_carries_the_last_note(fake: FakePagerDuty, receiver: Receiver) -> None:
    from integrations.pagerduty.api.client import PagerDutyClient

    inc = fake.trigger_incident(service_id="PSVC001", title="x")
    PagerDutyClient(fake.base_url, fake.api_key, from_email="ann@example.com").add_note(inc.id, "DB failover done")
    fake.send_webhook(receiver.url, "incident.annotated", inc.id, secrets=["s"])
    event = parse_event(receiver.received[0][1])
    assert isinstance(event.data, IncidentNoteData)
    assert event.data.content == "DB failover done" and event.incident_id == inc.id


def test_subscriptions_get_matching_events_and_signed_pings(fake: FakePagerDuty, receiver: Receiver) -> None:
    from integrations.pagerduty.api.client import PagerDutyClient

    pd = PagerDutyClient(fake.base_url, fake.api_key, from_email="ann@example.com")
    sub = pd.create_webhook_subscription(
        url=receiver.url,
        filter_type="service_reference",
        filter_id="PSVC001",
        events=["incident.triggered", "incident.resolved"],
        description="im",
    )
    assert sub.secret is not None
    secret = sub.secret.get_secret_value()

    pd.ping_webhook_subscription(sub.id)
    headers, body = receiver.received[-1]
    assert verify(body, headers["X-PagerDuty-Signature"], [secret])
    assert parse_event(body).event_type == "pagey.ping"
    assert headers["X-Webhook-Subscription"] == sub.id

    mine = fake.trigger_incident(service_id="PSVC001", title="mine")
    other = fake.trigger_incident(service_id="PSVC002", title="other service")
    assert [r.status_code for r in fake.notify_subscriptions("incident.triggered", mine.id)] == [200]
    assert fake.notify_subscriptions("incident.triggered", other.id) == []
    assert fake.notify_subscriptions("incident.acknowledged", mine.id) == []
    headers, body = receiver.received[-1]
    assert verify(body, headers["X-PagerDuty-Signature"], [secret])
    assert parse_event(body).incident_id == mine.id
    assert [d.event_type for d in fake.webhook_subscriptions[sub.id].deliveries] == ["pagey.ping", "incident.triggered"]
