"""PagerDutyClient against the fake PagerDuty REST API, over real HTTP."""

from __future__ import annotations

import logging
import math
import random
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from integrations.pagerduty.api import client as client_module
from integrations.pagerduty.api.client import CallStats, PagerDutyClient
from integrations.pagerduty.api.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PagerDutyError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from tests.fakes.pagerduty_api import ACCEPT_V2, FakePagerDuty, spec_validator

KEY = "pd-test-key-SECRET-1234567890"
ANN = "ann@example.com"
BOB = "bob@example.com"


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with FakePagerDuty(api_key=KEY) as fake:
        fake.add_user("PUANN01", "Ann Lee", ANN)
        fake.add_user("PUBOB01", "Bob Ray", BOB)
        fake.add_escalation_policy("PEP0001", "Payments", ["PUANN01", "PUBOB01"])
        fake.add_service("PSVC001", "Payments API", "PEP0001")
        fake.add_service("PSVC002", "Web", "PEP0001")
        yield fake


class Harness:
    def __init__(self, fake: FakePagerDuty) -> None:
        self.fake = fake
        self.sleeps: list[float] = []
        self.stats: list[CallStats] = []

    def client(self, **kw: Any) -> PagerDutyClient:
        args: dict[str, Any] = {
            "from_email": ANN,
            "sleep": self.sleeps.append,
            "rng": random.Random(7),
            "on_response": self.stats.append,
        }
        args.update(kw)
        api_key = args.pop("api_key", KEY)
        base_url = args.pop("base_url", self.fake.base_url)
        return PagerDutyClient(base_url, api_key, **args)


@pytest.fixture
def h(fake: FakePagerDuty) -> Harness:
    return Harness(fake)


def needs_spec(fake: FakePagerDuty) -> None:
    if fake.validator is None:
        pytest.skip("../shared/pagerduty/rest-openapiv3.json is absent: no spec validation")


def open_incident(pd: PagerDutyClient, key: str = "im-INC-1", service: str = "PSVC001") -> Any:
    return pd.create_incident(
        title="Checkout errors", service_id=service, urgency="high", incident_key=key, details="5xx on /pay"
    )


# ----------------------------------------------------------------------------- headers & happy paths


def test_every_call_sends_pd_headers_and_from_only_where_required(h: Harness) -> None:
    pd = h.client()
    pd.check_api_key()
    pd.get_service("PSVC001")
    inc = open_incident(pd)
    pd.update_incident(inc.id, status="acknowledged")
    pd.add_note(inc.id, "Investigating")
    pd.get_incident(inc.id)

    assert h.fake.requests
    for req in h.fake.requests:
        assert req.headers["Authorization"] == "Token token=<redacted>"
        assert req.headers["Accept"] == ACCEPT_V2
        assert req.headers["Content-Type"] == "application/json"
        needs_from = (req.method, req.template) in {
            ("POST", "/incidents"),
            ("PUT", "/incidents/{id}"),
            ("POST", "/incidents/{id}/notes"),
        }
        assert (req.headers.get("From") == ANN) is needs_from, req
    assert h.fake.violations == []
    assert h.fake.response_violations == []


def test_from_can_be_given_per_call_and_is_recorded_in_history(h: Harness) -> None:
    pd = h.client()
    inc = open_incident(pd)
    pd.update_incident(inc.id, status="acknowledged", from_email=BOB)
    pd.update_incident(inc.id, status="resolved", resolution="Rolled back", from_email=BOB)

    fake_inc = h.fake.incidents[inc.id]
    assert [(c.status, c.from_email) for c in fake_inc.history] == [
        ("triggered", ANN),
        ("acknowledged", BOB),
        ("resolved", BOB),
    ]
    assert fake_inc.resolution == "Rolled back"


def test_writes_without_any_from_email_fail_before_calling(h: Harness) -> None:
    pd = h.client(from_email=None)
    with pytest.raises(ConfigurationError) as exc:
        open_incident(pd)
    assert "From" in exc.value.user_message
    assert h.fake.requests == []


def test_fake_enforces_from_header_and_known_user(fake: FakePagerDuty) -> None:
    body = {"incident": {"type": "incident", "title": "x", "service": {"id": "PSVC001", "type": "service_reference"}}}
    base = {"Authorization": f"Token token={KEY}", "Accept": ACCEPT_V2, "Content-Type": "application/json"}
    missing = httpx.post(f"{fake.base_url}/incidents", json=body, headers=base)
    unknown = httpx.post(f"{fake.base_url}/incidents", json=body, headers={**base, "From": "nobody@example.com"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == 2001
    assert unknown.status_code == 400
    assert fake.incidents == {}
    if fake.validator is not None:  # violations are only recorded with the description present
        assert any("From" in v for v in fake.violations)


def test_services_users_policies_oncalls(h: Harness) -> None:
    pd = h.client()
    assert [s.id for s in pd.list_services()] == ["PSVC001", "PSVC002"]
    assert pd.get_service("PSVC001").escalation_policy.id == "PEP0001"  # type: ignore[union-attr]
    bob = pd.find_user_by_email("BOB@example.com")
    assert bob is not None and (bob.id, bob.name) == ("PUBOB01", "Bob Ray")
    assert pd.find_user_by_email("nobody@example.com") is None
    policy = pd.get_escalation_policy("PEP0001")
    assert [r.targets[0].id for r in policy.escalation_rules] == ["PUANN01", "PUBOB01"]
    oncalls = pd.list_oncalls(escalation_policy_ids=["PEP0001"])
    assert [(o.user.id, o.escalation_level) for o in oncalls] == [("PUANN01", 1), ("PUBOB01", 2)]
    assert h.fake.violations == [] and h.fake.response_violations == []


def test_incident_lifecycle(h: Harness) -> None:
    pd = h.client()
    inc = open_incident(pd)
    assert (inc.status, inc.urgency, inc.service.id, inc.incident_key) == ("triggered", "high", "PSVC001", "im-INC-1")
    assert inc.assignee_ids == ["PUANN01"]
    escalated = pd.update_incident(inc.id, escalation_level=2)
    assert escalated.assignee_ids == ["PUBOB01"]
    assert pd.update_incident(inc.id, urgency="low").urgency == "low"
    note = pd.add_note(inc.id, "Rolled back deploy 42")
    assert note.content == "Rolled back deploy 42" and note.user and note.user.id == "PUANN01"
    resolved = pd.update_incident(inc.id, status="resolved", resolution="Rollback")
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert pd.get_incident(inc.id).status == "resolved"
    assert [n.content for n in h.fake.incidents[inc.id].notes] == ["Rolled back deploy 42"]
    assert h.fake.violations == [] and h.fake.response_violations == []


# ----------------------------------------------------------------------------- idempotent create


def test_same_incident_key_twice_returns_the_same_pd_incident(h: Harness) -> None:
    pd = h.client()
    first = open_incident(pd, key="im-INC-7")
    second = open_incident(pd, key="im-INC-7")
    assert second.id == first.id
    assert len(h.fake.incidents) == 1
    assert [(r.method, r.path, r.status) for r in h.fake.requests] == [
        ("POST", "/incidents", 201),
        ("POST", "/incidents", 400),
        ("GET", "/incidents", 200),
    ]
    lookup = h.fake.requests[-1].query
    assert lookup["incident_key"] == ["im-INC-7"] and lookup["date_range"] == ["all"]
    assert h.fake.violations == []


def test_key_of_a_resolved_incident_can_open_a_new_one(h: Harness) -> None:
    pd = h.client()
    first = open_incident(pd, key="im-INC-8")
    pd.update_incident(first.id, status="resolved")
    second = open_incident(pd, key="im-INC-8")
    assert second.id != first.id and len(h.fake.incidents) == 2
    found = pd.find_incident_by_key("im-INC-8")
    assert found is not None and found.id == second.id


def test_create_retried_after_503_still_makes_one_incident(h: Harness) -> None:
    pd = h.client()
    h.fake.fail_next(503, method="POST", path_prefix="/incidents")
    inc = open_incident(pd, key="im-INC-9")
    assert list(h.fake.incidents) == [inc.id]
    assert len(h.sleeps) == 1


# ----------------------------------------------------------------------------- pagination


def _seed_incidents(fake: FakePagerDuty, n: int, start: datetime, same_second_every: int = 0) -> None:
    for i in range(n):
        at = start + timedelta(seconds=i if not same_second_every else i // same_second_every)
        fake.trigger_incident(service_id="PSVC001", title=f"inc {i}", created_at=at)


def test_iter_incidents_follows_more_over_pages_of_100(h: Harness) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _seed_incidents(h.fake, 250, start)
    pd = h.client()
    got = list(pd.iter_incidents(since=start, until=start + timedelta(days=1)))
    assert len(got) == 250 and len({i.id for i in got}) == 250
    assert [i.created_at for i in got] == sorted(i.created_at for i in got)
    lists = [r for r in h.fake.requests if r.path == "/incidents"]
    assert len(lists) == 3
    assert [(r.query["limit"], r.query["offset"]) for r in lists] == [(["100"], ["0"]), (["100"], ["100"]), (["100"], ["200"])]
    assert lists[0].query["sort_by"] == ["created_at:asc"]
    assert h.fake.violations == [] and h.fake.response_violations == []


def test_iter_incidents_filters_by_service_and_time(h: Harness) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _seed_incidents(h.fake, 5, start)
    h.fake.trigger_incident(service_id="PSVC002", title="web", created_at=start)
    h.fake.trigger_incident(service_id="PSVC001", title="later", created_at=start + timedelta(days=3))
    pd = h.client()
    got = list(pd.iter_incidents(since=start, until=start + timedelta(days=1), service_ids=["PSVC001"]))
    assert [i.title for i in got] == [f"inc {i}" for i in range(5)]
    assert h.fake.violations == []


def test_iter_incidents_walks_past_the_offset_window(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # PagerDuty stops at offset+limit 10000; shrink the window on both sides to test cheaply.
    monkeypatch.setattr(client_module, "OFFSET_CAP", 300)
    h.fake.offset_cap = 300
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _seed_incidents(h.fake, 650, start, same_second_every=3)  # three incidents per second
    pd = h.client()
    got = [i.id for i in pd.iter_incidents(since=start, until=start + timedelta(days=1))]
    assert len(got) == 650 and len(set(got)) == 650
    assert all(int(r.query["offset"][0]) + int(r.query["limit"][0]) <= 300 for r in h.fake.requests)


# ----------------------------------------------------------------------------- retries & errors


def test_429_waits_ratelimit_reset_plus_jitter_then_succeeds(h: Harness) -> None:
    pd = h.client()
    h.fake.fail_next(429, headers={"ratelimit-reset": "3"})
    assert pd.get_service("PSVC001").id == "PSVC001"
    assert len(h.sleeps) == 1 and 3.0 <= h.sleeps[0] <= 3.0 + pd.rate_limit_jitter
    assert [s.status for s in h.stats] == [429, 200]


def test_a_retry_after_a_429_takes_a_turn_of_its_own(h: Harness) -> None:
    """The pacer is asked for a new turn before the retry (an outbox job is deferred to it, never sent
    unpaced); the first attempt and a retry after a 5xx only pass the per-request hook."""
    hooks: list[str] = []
    pd = h.client(before_request=lambda: hooks.append("request"), on_ready=lambda again: hooks.append(f"turn again={again}"))
    h.fake.fail_next(429, headers={"ratelimit-reset": "1"})
    pd.get_service("PSVC001")
    assert hooks == ["request", "turn again=True", "request"]
    hooks.clear()
    h.fake.fail_next(503)
    pd.get_service("PSVC001")
    assert hooks == ["request", "request"]


def test_429_without_headers_waits_one_second(h: Harness) -> None:
    pd = h.client()
    h.fake.fail_next(429, headers={"ratelimit-reset": None, "ratelimit-limit": None, "ratelimit-remaining": None}, body={})
    pd.get_service("PSVC001")
    assert len(h.sleeps) == 1 and 1.0 <= h.sleeps[0] <= 1.0 + pd.rate_limit_jitter


def test_429_storm_beyond_max_attempts_raises_rate_limited(h: Harness) -> None:
    pd = h.client(max_attempts=4)
    h.fake.fail_next(429, times=10, headers={"ratelimit-reset": "2"})
    with pytest.raises(RateLimitedError) as exc:
        pd.get_service("PSVC001")
    assert exc.value.retry_after == 2.0 and exc.value.retryable and exc.value.status == 429
    assert len(h.fake.requests) == 4 and len(h.sleeps) == 3


def test_429_longer_than_max_wait_raises_at_once_for_the_outbox(h: Harness) -> None:
    pd = h.client(max_wait=30)
    h.fake.fail_next(429, times=5, headers={"ratelimit-reset": "45"})
    with pytest.raises(RateLimitedError) as exc:
        pd.get_service("PSVC001")
    assert exc.value.retry_after == 45.0
    assert h.sleeps == [] and len(h.fake.requests) == 1


def test_503_is_retried_with_backoff_then_succeeds(h: Harness) -> None:
    pd = h.client()
    h.fake.fail_next(503, times=2)
    assert pd.get_service("PSVC001").id == "PSVC001"
    assert len(h.sleeps) == 2
    assert 0 <= h.sleeps[0] <= pd.backoff_base and 0 <= h.sleeps[1] <= 2 * pd.backoff_base


def test_down_raises_unavailable_within_the_wait_budget(h: Harness) -> None:
    pd = h.client(max_attempts=6, max_wait=2.0)
    h.fake.down = True
    with pytest.raises(UnavailableError) as exc:
        pd.check_api_key()
    assert exc.value.retryable and exc.value.status == 503
    assert sum(h.sleeps) <= 2.0
    assert 1 <= len(h.fake.requests) <= 6


def test_unreachable_host_raises_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    sleeps: list[float] = []
    pd = PagerDutyClient(f"http://127.0.0.1:{port}", KEY, sleep=sleeps.append, max_attempts=3)
    with pytest.raises(UnavailableError) as exc:
        pd.check_api_key()
    assert "Could not reach PagerDuty" in str(exc.value)
    assert len(sleeps) == 2


def test_timeout_raises_unavailable(h: Harness) -> None:
    h.fake.response_delay = 0.3
    pd = h.client(timeout=0.05, max_attempts=1)
    with pytest.raises(UnavailableError) as exc:
        pd.check_api_key()
    assert "did not answer in time" in str(exc.value)


def test_note_is_not_retried_on_an_ambiguous_500(h: Harness) -> None:
    pd = h.client()
    inc = open_incident(pd)
    h.fake.fail_next(500, path_prefix=f"/incidents/{inc.id}/notes")
    with pytest.raises(UnavailableError):
        pd.add_note(inc.id, "hello")
    assert h.sleeps == []
    h.fake.fail_next(503, path_prefix=f"/incidents/{inc.id}/notes")
    pd.add_note(inc.id, "hello")  # 503: PagerDuty did not act, safe to retry
    assert len(h.fake.incidents[inc.id].notes) == 1


def test_401_is_an_authentication_error_with_a_user_message(h: Harness) -> None:
    pd = h.client(api_key="pd-WRONG-key-0000")
    with pytest.raises(AuthenticationError) as exc:
        pd.check_api_key()
    assert exc.value.user_message == "PagerDuty rejected the API key"
    assert exc.value.status == 401 and not exc.value.retryable
    assert len(h.fake.requests) == 1 and h.sleeps == []


def test_404_names_the_missing_service(h: Harness) -> None:
    pd = h.client()
    with pytest.raises(NotFoundError) as exc:
        pd.get_service("PNOPE99")
    assert str(exc.value) == "PagerDuty service PNOPE99 not found"
    assert exc.value.status == 404 and len(h.fake.requests) == 1
    with pytest.raises(NotFoundError, match="PagerDuty service PNOPE99 not found"):
        open_incident(pd, service="PNOPE99")
    with pytest.raises(NotFoundError, match="incident QMISSING not found"):
        pd.get_incident("QMISSING")


def test_other_4xx_carries_pagerdutys_explanation_and_is_not_retried(h: Harness) -> None:
    pd = h.client()
    h.fake.fail_next(
        400, body={"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Title cannot be empty."]}}
    )
    with pytest.raises(RequestRejectedError) as exc:
        open_incident(pd)
    assert "Invalid Input Provided" in str(exc.value) and "Title cannot be empty." in str(exc.value)
    assert exc.value.pd_code == 2001 and not exc.value.retryable
    assert len(h.fake.requests) == 1 and h.sleeps == []


def test_api_key_never_appears_in_errors_reprs_or_logs(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "pd-WRONG-SECRET-abcdef"
    errors: list[PagerDutyError] = []
    clients = [h.client(), h.client(api_key=wrong)]

    def collect(fn: Any) -> None:
        with pytest.raises(PagerDutyError) as exc:
            fn()
        errors.append(exc.value)

    collect(clients[1].check_api_key)
    collect(lambda: clients[0].get_service("PNOPE99"))
    h.fake.fail_next(429, times=10, headers={"ratelimit-reset": "1"})
    collect(clients[0].check_api_key)
    h.fake.down = True
    collect(clients[0].check_api_key)
    h.fake.down = False
    collect(PagerDutyClient("http://127.0.0.1:1", KEY, sleep=lambda s: None, max_attempts=1).check_api_key)

    texts = [repr(c) for c in clients] + [caplog.text, repr(h.fake.requests)]
    for err in errors:
        texts += [str(err), repr(err), err.user_message, repr(err.args)]
        cause = err.__cause__ or err.__context__
        if cause is not None:
            texts += [str(cause), repr(cause)]
    for text in texts:
        assert KEY not in text and wrong not in text


def test_call_stats_feed_metrics(h: Harness) -> None:
    pd = h.client()
    pd.get_service("PSVC001")
    inc = open_incident(pd)
    pd.get_incident(inc.id)
    assert [(s.method, s.endpoint, s.status) for s in h.stats] == [
        ("GET", "/services/{id}", 200),
        ("POST", "/incidents", 201),
        ("GET", "/incidents/{id}", 200),
    ]
    assert h.stats[2].path == f"/incidents/{inc.id}"
    assert all(s.ratelimit_limit == 960 and s.duration_s > 0 for s in h.stats)
    remaining = [s.ratelimit_remaining for s in h.stats]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] is not None and remaining[0] < 960


def test_a_failing_metrics_callback_does_not_break_calls(h: Harness) -> None:
    def boom(_: CallStats) -> None:
        raise RuntimeError("metrics down")

    assert h.client(on_response=boom).get_service("PSVC001").id == "PSVC001"


# ----------------------------------------------------------------------------- webhook subscriptions


def test_webhook_subscription_create_ping_delete(h: Harness) -> None:
    pd = h.client()
    sub = pd.create_webhook_subscription(
        url="http://127.0.0.1:9/hook",
        filter_type="service_reference",
        filter_id="PSVC001",
        events=["incident.triggered", "incident.resolved"],
        description="im bot",
    )
    stored = h.fake.webhook_subscriptions[sub.id]
    assert sub.secret is not None and sub.secret.get_secret_value() == stored.secret
    assert stored.secret not in repr(sub)
    assert (sub.url, sub.filter_id, sub.events) == ("http://127.0.0.1:9/hook", "PSVC001", stored.events)
    pd.ping_webhook_subscription(sub.id)
    assert stored.pings_sent == 1 and stored.deliveries[0].event_type == "pagey.ping"
    pd.delete_webhook_subscription(sub.id)
    assert sub.id not in h.fake.webhook_subscriptions
    with pytest.raises(NotFoundError, match=f"PagerDuty webhook subscription {sub.id} not found"):
        pd.delete_webhook_subscription(sub.id)
    assert h.fake.violations == [] and h.fake.response_violations == []


# ----------------------------------------------------------------------------- the fake's spec checks


def test_well_formed_calls_leave_no_violations_and_malformed_raw_requests_do(h: Harness) -> None:
    needs_spec(h.fake)
    pd = h.client()
    inc = open_incident(pd)
    pd.update_incident(inc.id, status="acknowledged", urgency="low")
    pd.add_note(inc.id, "note")
    list(
        pd.iter_incidents(
            since=datetime.now(UTC) - timedelta(days=1),
            until=datetime.now(UTC),
            service_ids=["PSVC001"],
            statuses=["triggered", "acknowledged"],
        )
    )
    pd.list_oncalls(escalation_policy_ids=["PEP0001"], since=datetime.now(UTC))
    assert h.fake.violations == []

    headers = {"Authorization": f"Token token={KEY}", "Accept": ACCEPT_V2, "Content-Type": "application/json", "From": ANN}
    typo = {
        "incident": {
            "type": "incident",
            "title": "x",
            "service": {"id": "PSVC001", "type": "service_reference"},
            "incident_keys": "k-1",
        }
    }
    httpx.post(f"{h.fake.base_url}/incidents", json=typo, headers=headers)
    assert any("unknown field 'incident_keys'" in v for v in h.fake.violations), h.fake.violations

    h.fake.violations.clear()
    bad_enum = {"incident": {**typo["incident"], "urgency": "urgent"}}
    del bad_enum["incident"]["incident_keys"]
    httpx.post(f"{h.fake.base_url}/incidents", json=bad_enum, headers=headers)
    assert any("urgent" in v for v in h.fake.violations), h.fake.violations

    h.fake.violations.clear()
    httpx.get(f"{h.fake.base_url}/incidents", params={"status": "triggered", "limit": "abc"}, headers=headers)
    assert any("unknown query parameter 'status'" in v for v in h.fake.violations)
    assert any("limit" in v for v in h.fake.violations)

    h.fake.violations.clear()
    httpx.get(f"{h.fake.base_url}/services/PSVC001", headers={"Authorization": f"Token token={KEY}"})
    assert any("Accept" in v for v in h.fake.violations)


def test_spec_is_loaded_once_per_process(fake: FakePagerDuty) -> None:
    needs_spec(fake)
    assert spec_validator(fake.shared_dir) is fake.validator
    assert FakePagerDuty(api_key=KEY).validator is fake.validator


def test_without_shared_dir_the_fake_still_works_and_skips_validation(tmp_path: Any) -> None:
    with FakePagerDuty(api_key=KEY, shared_dir=tmp_path) as fake:
        fake.add_service("PSVC001", "API")
        assert fake.validator is None
        pd = PagerDutyClient(fake.base_url, KEY, sleep=lambda s: None)
        assert pd.get_service("PSVC001").name == "API"
        httpx.post(f"{fake.base_url}/incidents", json={"incident": {"incident_keys": 1}}, headers={})
        assert fake.violations == []


# ----------------------------------------------------------------------------- changed incidents (log entries)


def _log_requests(fake: FakePagerDuty) -> list[Any]:
    return [r for r in fake.requests if r.path == "/log_entries"]


def test_iter_changed_incidents_reads_the_log_a_page_per_100_entries(h: Harness) -> None:
    t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    until = t + timedelta(days=1)
    incs = h.fake.bulk_load(250, service_id="PSVC001", created_at=t - timedelta(days=2))
    for inc in incs[120:185]:  # changed, but before the window: not wanted
        h.fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUANN01", at=t - timedelta(hours=1))
    h.fake.set_incident_status(incs[200].id, "resolved", at=until + timedelta(minutes=5))  # after the window
    changed = incs[:120]
    for i, inc in enumerate(changed):
        h.fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUANN01", at=t + timedelta(seconds=i))
        if i % 2 == 0:
            at = t + timedelta(hours=1, seconds=i)
            h.fake.set_incident_status(inc.id, "resolved", agent_user_id="PUBOB01", at=at)
        if i % 3 == 0:
            h.fake.add_incident_note(inc.id, f"note {i}", user_id="PUANN01", at=t + timedelta(hours=2, seconds=i))
        if i % 5 == 0:
            h.fake.set_incident_urgency(inc.id, "low", agent_user_id="PUBOB01", at=t + timedelta(hours=3, seconds=i))
        if i % 7 == 0:
            h.fake.reassign_incident(inc.id, ["PUBOB01"], agent_user_id="PUANN01", at=t + timedelta(hours=4, seconds=i))

    pd = h.client()
    got = list(pd.iter_changed_incidents(since=t, until=until))

    assert len(got) == 120 and {i.id for i in got} == {i.id for i in changed}  # each once, none from outside
    for inc in got:
        fake_inc = h.fake.incidents[inc.id]
        assert (inc.status, inc.urgency, inc.assignee_ids) == (fake_inc.status, fake_inc.urgency, fake_inc.assignments)
    assert {i.status for i in got} == {"acknowledged", "resolved"}
    entries = h.fake.log_entries_between(t, until, is_overview=True)
    assert len(entries) == 120 + 60 + 40 + 24 + 18
    assert len(h.fake.log_entries_between(t, until)) > len(entries)  # notifications are left out
    last_change = {e.incident_id: e.created_at for e in entries}  # oldest first: the last write wins
    order = [last_change[i.id] for i in got]
    assert order == sorted(order, reverse=True)  # the log is newest first: latest change first

    reqs = _log_requests(h.fake)
    assert len(h.fake.requests) == len(reqs) == math.ceil(len(entries) / 100) == 3
    assert [(r.query["limit"], r.query["offset"]) for r in reqs] == [
        (["100"], ["0"]),
        (["100"], ["100"]),
        (["100"], ["200"]),
    ]
    assert reqs[0].query["is_overview"] == ["true"] and reqs[0].query["include[]"] == ["incidents"]
    assert _parse(reqs[0].query["since"][0]) == t and _parse(reqs[0].query["until"][0]) == until
    assert h.fake.violations == [] and h.fake.response_violations == []


def _parse(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def test_changes_made_through_the_api_are_logged_and_found(h: Harness) -> None:
    pd = h.client()
    before = datetime.now(UTC) - timedelta(minutes=1)
    inc = open_incident(pd)
    pd.update_incident(inc.id, status="acknowledged")
    pd.update_incident(inc.id, urgency="low")
    pd.add_note(inc.id, "Rolled back")
    pd.update_incident(inc.id, escalation_level=2)  # acknowledged -> triggered, reassigned
    pd.update_incident(inc.id, status="resolved", from_email=BOB)
    after = datetime.now(UTC) + timedelta(minutes=1)

    entries = [e for e in h.fake.log_entries_between(before, after) if e.incident_id == inc.id]
    assert [e.type for e in entries] == [
        "trigger_log_entry",
        "notify_log_entry",
        "acknowledge_log_entry",
        "urgency_change_log_entry",
        "annotate_log_entry",
        "unacknowledge_log_entry",
        "escalate_log_entry",
        "notify_log_entry",
        "resolve_log_entry",
    ]
    assert [e.agent_user_id for e in entries if e.type != "notify_log_entry"] == ["PUANN01"] * 6 + ["PUBOB01"]
    assert entries[6].assignees == ["PUBOB01"]

    h.fake.requests.clear()
    got = list(pd.iter_changed_incidents(since=before, until=after))
    assert [(i.id, i.status, i.urgency) for i in got] == [(inc.id, "resolved", "low")]
    assert len(h.fake.requests) == 1
    assert h.fake.violations == [] and h.fake.response_violations == []


def test_fake_log_entries_endpoint(h: Harness) -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    a, b = h.fake.bulk_load(2, service_id="PSVC001", created_at=t, step=timedelta(seconds=10))
    h.fake.set_incident_status(a.id, "acknowledged", agent_user_id="PUBOB01", at=t + timedelta(minutes=1))
    h.fake.add_incident_note(b.id, "hi", user_id="PUANN01", at=t + timedelta(minutes=2))
    headers = {"Authorization": f"Token token={KEY}", "Accept": ACCEPT_V2, "Content-Type": "application/json"}
    url = f"{h.fake.base_url}/log_entries"
    window = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"}

    full = httpx.get(url, params={**window, "total": "true"}, headers=headers).json()
    assert [e["type"] for e in full["log_entries"]] == [  # newest first
        "annotate_log_entry",
        "acknowledge_log_entry",
        "notify_log_entry",
        "trigger_log_entry",
        "notify_log_entry",
        "trigger_log_entry",
    ]
    assert (full["limit"], full["offset"], full["more"], full["total"]) == (25, 0, False, 6)
    ack = full["log_entries"][1]
    assert ack["created_at"] == "2026-03-01T00:01:00Z" and ack["agent"]["id"] == "PUBOB01"
    assert ack["incident"] == {k: ack["incident"][k] for k in ("id", "type", "summary", "self", "html_url")}
    assert ack["incident"]["type"] == "incident_reference" and ack["incident"]["id"] == a.id
    trigger = full["log_entries"][-1]
    assert trigger["agent"]["type"] == "service_reference" and trigger["incident"]["id"] == a.id

    overview = httpx.get(
        url, params={**window, "is_overview": "true", "include[]": "incidents", "limit": 2}, headers=headers
    ).json()
    assert [e["type"] for e in overview["log_entries"]] == ["annotate_log_entry", "acknowledge_log_entry"]
    assert overview["more"] is True and overview["total"] is None
    assert (
        overview["log_entries"][1]["incident"]
        == httpx.get(f"{h.fake.base_url}/incidents/{a.id}", headers=headers).json()["incident"]
    )

    later = httpx.get(url, params={"since": "2026-03-01T00:01:00Z", "until": "2026-03-01T00:02:00Z"}, headers=headers)
    assert [e["type"] for e in later.json()["log_entries"]] == ["acknowledge_log_entry"]  # since in, until out
    assert h.fake.violations == [] and h.fake.response_violations == []

    # every kind of entry the fake writes matches the description (the fake samples 3 a page)
    at = t + timedelta(minutes=3)
    h.fake.set_incident_status(a.id, "triggered", agent_user_id="PUANN01", at=at)
    h.fake.set_incident_urgency(a.id, "low", agent_user_id="PUANN01", at=at)
    h.fake.reassign_incident(a.id, ["PUBOB01"], agent_user_id="PUANN01", at=at)
    h.fake.set_incident_status(a.id, "resolved", at=at)
    h.fake.set_incident_status(a.id, "triggered", agent_user_id="PUBOB01", at=at)  # reopened
    for include in ([], ["incidents", "services"]):
        page = httpx.get(url, params={**window, "limit": 100, "include[]": include}, headers=headers).json()
        assert {e["type"] for e in page["log_entries"]} == {
            "trigger_log_entry",
            "notify_log_entry",
            "acknowledge_log_entry",
            "unacknowledge_log_entry",
            "annotate_log_entry",
            "urgency_change_log_entry",
            "assign_log_entry",
            "resolve_log_entry",
        }
        if h.fake.validator is not None:
            for entry in page["log_entries"]:
                one = {**page, "log_entries": [entry]}
                assert h.fake.validator.check_response("GET", "/log_entries", 200, one) == [], entry
    assert h.fake.violations == [] and h.fake.response_violations == []


def test_iter_changed_incidents_walks_past_the_offset_window(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "OFFSET_CAP", 300)
    h.fake.offset_cap = 300
    t = datetime(2026, 3, 1, tzinfo=UTC)
    incs = h.fake.bulk_load(650, service_id="PSVC001", created_at=t - timedelta(days=1))
    for i, inc in enumerate(incs):  # three changes per second
        h.fake.set_incident_status(inc.id, "acknowledged", at=t + timedelta(seconds=i // 3))
    pd = h.client()
    got = [i.id for i in pd.iter_changed_incidents(since=t, until=t + timedelta(hours=1))]
    assert len(got) == 650 and set(got) == {i.id for i in incs}
    assert all(int(r.query["offset"][0]) + int(r.query["limit"][0]) <= 300 for r in h.fake.requests)
    assert h.fake.violations == []


def test_bulk_load_10000_with_100_recent_changes_costs_one_request(h: Harness) -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    incs = h.fake.bulk_load(10_000, service_id="PSVC001", created_at=t - timedelta(days=7), step=timedelta(seconds=1))
    recent = incs[::100]
    for i, inc in enumerate(recent):
        h.fake.set_incident_status(inc.id, "resolved", at=t + timedelta(seconds=i))
    pd = h.client()
    got = list(pd.iter_changed_incidents(since=t, until=t + timedelta(hours=1)))
    assert {i.id for i in got} == {i.id for i in recent} and all(i.status == "resolved" for i in got)
    assert len(h.fake.requests) == 1
    assert h.fake.violations == [] and h.fake.response_violations == []
