"""Hostile input over real HTTP never makes a 5xx (design rule 10).

Signed and unsigned garbage at /slack/events and at the PagerDuty webhook (deep nesting, lone surrogates,
NUL, RTL overrides and zero-width characters, 1 MB bodies, numbers and times no column holds, wrong types,
missing users, bad `payload=` JSON, bytes that are not UTF-8): each is answered below 500, a refusal with
a 4xx and a reason; nothing is half-written; nothing is left retrying; the server still serves a valid
request afterwards. Hypothesis adds bodies of its own on top of the hand-picked ones.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from bot.clock import utcnow
from bot.domain.models import Incident, JobStatus, OutboxJob, TimelineEvent
from bot.slack import render
from integrations.pagerduty.api.webhook_signature import sign
from integrations.pagerduty.inbound import inbound_destination
from integrations.pagerduty.tables import WebhookDelivery
from tests.fakes import slack_requests as sr
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness
from tests.pd_support import PagerDutyWorld, Terminal, pagerduty_account

DEEP = 10_000
RTL = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
HOSTILE_TEXT = f"{RTL}gnp.exe{ZERO_WIDTH} *bold* \U0001f525 \u0645\u0631\u062d\u0628\u0627 \u0301"
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same bodies on every run: a failure is reproducible, never flaky
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def deep(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def counts(app: AppHarness, *tables: type[SQLModel]) -> dict[str, int]:
    with app.im.store.read() as session:
        return {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in tables}


def refused(answer: httpx.Response, *statuses: int) -> str:
    """A clean refusal: one of ``statuses`` with a reason in the body; returns the reason."""
    assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    reason = answer.json()["error"]
    assert isinstance(reason, str) and reason
    return reason


# ----------------------------------------------------------------------------- PagerDuty webhooks


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    fake = pagerduty_account()
    yield fake
    fake.stop()


@pytest.fixture
def world(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> Iterator[PagerDutyWorld]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("IM_WEBHOOK_MAX_PER_SECOND", "100000")  # these tests send bursts; the rate cap is not theirs
    w = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    w.enable_webhook()
    yield w
    w.stop()


class Webhook:
    """Posts bodies to the connector's webhook, signed with its secret unless told otherwise."""

    def __init__(self, world: PagerDutyWorld) -> None:
        self.world = world
        self.url = f"{world.url}/connectors/prod/webhook"
        self.secret = world.registry.webhook_secrets(world.registry.get("prod"))[0]
        self.remote = world.pd.trigger_incident(service_id="PDAT001", title="Replica lag", urgency="high")
        self.http = httpx.Client(timeout=20)
        self.serial = 0

    def envelope(self) -> dict[str, Any]:
        self.serial += 1
        return self.world.pd.build_event("incident.triggered", self.remote.id, event_id=f"EV-hostile-{self.serial}")

    def changed(self, change: Callable[[dict[str, Any]], None]) -> bytes:
        envelope = self.envelope()
        change(envelope["event"])
        return json.dumps(envelope).encode()

    def post(self, body: bytes, *, signature: str | bytes | None = None, signed: bool = True) -> httpx.Response:
        headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-PagerDuty-Signature"] = signature
        elif signed:
            headers["X-PagerDuty-Signature"] = sign(body, self.secret)
        return self.http.post(self.url, content=body, headers=headers)


def setter(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def raw_json(*path: str, text: str) -> Callable[[Webhook], bytes]:
    """A body whose value at ``path`` is ``text`` spliced in as raw JSON (what json.dumps cannot write)."""

    def build(hook: Webhook) -> bytes:
        return hook.changed(setter(*path, value="@@RAW@@")).replace(b'"@@RAW@@"', text.encode())

    return build


def changed(*path: str, value: Any) -> Callable[[Webhook], bytes]:
    return lambda hook: hook.changed(setter(*path, value=value))


# Signed bodies we cannot accept: each answered 400 with a reason, nothing stored. The first ones made a
# 500 before (RecursionError, OverflowError, UnicodeEncodeError, ValueError, an index row too big on
# PostgreSQL) or were stored and then failed in the worker for ever (numbers beyond the column, text
# the database refuses).
REFUSED_WEBHOOKS: dict[str, Callable[[Webhook], bytes]] = {
    "10,000-deep nesting": lambda hook: b'{"event": ' + deep().encode() + b"}",
    "10,000-deep nesting in data": raw_json("data", "extra", text=deep()),
    "occurred_at year 9999 with a negative offset": changed("occurred_at", value="9999-12-31T23:59:59-23:59"),
    "occurred_at year 1 with a positive offset": changed("occurred_at", value="0001-01-01T00:00:00+01:00"),
    "occurred_at 1e20": raw_json("occurred_at", text="1e20"),
    "created_at year 9999 with a negative offset": changed("data", "created_at", value="9999-12-31T23:59:59-23:59"),
    "lone surrogate in the event id": raw_json("id", text='"EV-\\ud800"'),
    "lone surrogate in the event type": raw_json("event_type", text='"incident.\\udfff"'),
    "lone surrogate in the title": raw_json("data", "title", text='"bad \\ud800 title"'),
    "NUL in the event id": changed("id", value="EV-\x00"),
    "NUL in the title": changed("data", "title", value="a\x00b"),
    "incident number beyond 64 bits": changed("data", "number", value=2**70),
    "incident number 1e20": raw_json("data", "number", text="1e20"),
    "incident number beyond the 32-bit column": changed("data", "number", value=2**40),
    "a 5,000-digit number": raw_json("data", "number", text="9" * 5000),
    "an event id of 100,000 characters": changed("id", value="E" * 100_000),
    "an event type of 100,000 characters": changed("event_type", value="incident." + "x" * 100_000),
    "bytes that are not UTF-8": lambda hook: hook.changed(setter("data", "title", value="@@")).replace(b"@@", b"\xff\xfe"),
    "UTF-16": lambda hook: hook.changed(lambda e: None).decode().encode("utf-16"),
    "malformed JSON": lambda hook: hook.changed(lambda e: None)[:-3],
    "a JSON array": lambda hook: b"[]",
    "NaN for the event": lambda hook: b'{"event": NaN}',
}

WRONG_VALUES: list[Any] = [5, 1.5, True, [], {}, "", "x", [1, [2]], {"id": 5}]
EVENT_FIELDS = [("id",), ("event_type",), ("occurred_at",), ("data",), ("agent",), ("client",), ("resource_type",)]
DATA_FIELDS = [
    ("data", f) for f in ("id", "type", "number", "title", "status", "service", "assignees", "incident_key", "created_at")
]


def all_webhook_jobs_settled(world: PagerDutyWorld) -> list[OutboxJob]:
    world.app.wait_idle(20)  # a job that could never succeed would stay pending here, retried
    with world.im.store.read() as session:
        query = select(OutboxJob).where(OutboxJob.destination == inbound_destination("prod")).order_by(col(OutboxJob.id))
        jobs = list(session.exec(query))
    for job in jobs:
        assert job.status in (JobStatus.DONE, JobStatus.DEAD), (job.id, job.status, job.last_error)
        assert job.attempts <= 1, f"job {job.id} was retried: {job.last_error}"
    return jobs


def test_hostile_webhooks_get_a_4xx_with_a_reason_and_store_nothing(world: PagerDutyWorld) -> None:
    hook = Webhook(world)
    app = world.app
    before = counts(app, WebhookDelivery, OutboxJob, Incident)
    for name, build in REFUSED_WEBHOOKS.items():
        answer = hook.post(build(hook))
        assert answer.status_code == 400, (name, answer.status_code, answer.text[:300])
        assert answer.json()["error"], name
    # unsigned, badly signed, signed with bytes that are not ASCII: refused before the body is read
    garbage = b"\xff\x00" + deep(100).encode()
    for signature in (None, "", "v1=zz", "v1=" + "0" * 64, b"v1=\xff\xfe", "v1=" + "a" * 100_000):
        refused(hook.post(garbage, signature=signature, signed=signature is not None), 401)
    refused(hook.post(hook.changed(lambda e: None), signed=False), 401)
    refused(hook.post(b"{}" + b" " * 1_000_001), 413)
    assert counts(app, WebhookDelivery, OutboxJob, Incident) == before, "a refused delivery left something behind"

    # the server still takes a valid delivery, and applies it
    assert hook.post(hook.changed(lambda e: None)).status_code == 202
    all_webhook_jobs_settled(world)
    assert [i.title for i in app.im.incidents.search()] == ["Replica lag"]


def test_wrong_types_odd_text_and_1mb_bodies_are_refused_or_applied_never_retried(world: PagerDutyWorld) -> None:
    hook = Webhook(world)
    statuses: dict[int, int] = {}
    for path in EVENT_FIELDS + DATA_FIELDS:
        for value in WRONG_VALUES:
            answer = hook.post(hook.changed(setter(*path, value=value)))
            assert answer.status_code < 500, (path, value, answer.status_code, answer.text[:300])
            if answer.status_code >= 400:
                refused(answer, 400)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    assert statuses.get(400, 0) > 50 and statuses.get(202, 0) > 0  # both paths were taken
    # text that is odd but valid Unicode is data: stored and applied as sent
    odd = hook.post(hook.changed(setter("data", "title", value=HOSTILE_TEXT)))
    assert odd.status_code == 202, odd.text
    big_title = "\u202e" + "x" * 900_000  # a 1 MB body within the endpoint's limit
    assert hook.post(hook.changed(setter("data", "title", value=big_title))).status_code == 202
    all_webhook_jobs_settled(world)
    # and the server still serves
    again = world.pd.trigger_incident(service_id="PAPI001", title="API down", urgency="high")
    answer = world.pd.send_webhook(hook.url, "incident.triggered", again.id, secrets=[hook.secret], event_id="EV-after")
    assert answer.status_code == 202
    all_webhook_jobs_settled(world)
    assert "API down" in [i.title for i in world.im.incidents.search()]


def test_a_stored_delivery_that_can_never_be_applied_is_dead_lettered_at_once(world: PagerDutyWorld) -> None:
    """Deliveries stored before the endpoint refused such bodies: given up on the first try, with the
    reason, and the delivery queued behind them for the same incident still goes through."""
    hook = Webhook(world)
    ordering = f"{inbound_destination('prod')}:{hook.remote.id}"
    bad_bodies = [
        hook.changed(setter("occurred_at", value="9999-12-31T23:59:59-23:59")),
        hook.changed(setter("data", "number", value=2**70)),
        b'{"event": ' + deep().encode() + b"}",
        b"not json",
    ]
    good = hook.changed(lambda e: None)
    now = utcnow()
    with world.im.store.transaction() as session:
        payloads: list[dict[str, Any]] = [{}, {"delivery_id": "one"}, {"delivery_id": 10**6}]
        for n, body in enumerate([*bad_bodies, good]):
            delivery = WebhookDelivery(
                connector="prod", event_id=f"EV-stored-{n}", event_type="incident.triggered", received_at=now, body=body.decode()
            )
            session.add(delivery)
            session.flush()
            payloads.append({"delivery_id": delivery.id})
        for payload in payloads:
            session.add(
                OutboxJob(
                    destination=inbound_destination("prod"),
                    kind="webhook",
                    ordering_key=ordering,
                    payload=payload,
                    status=JobStatus.PENDING,
                    available_at=now,
                    created_at=now,
                )
            )
    world.im.outbox_ready.set()
    jobs = all_webhook_jobs_settled(world)
    assert [j.status for j in jobs] == [JobStatus.DEAD] * 7 + [JobStatus.DONE]
    reasons = [j.last_error or "" for j in jobs[:7]]
    assert all("delivery" in r for r in reasons[:3]), reasons
    assert all("cannot be read" in r for r in reasons[3:]), reasons
    assert [i.title for i in world.im.incidents.search()] == ["Replica lag"]


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    # any text, lone surrogates, NUL, direction overrides and zero-width characters included
    st.text(st.characters() | st.characters(categories=["Cs"]) | st.sampled_from(["\x00", RTL, *ZERO_WIDTH]), max_size=30),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "2024-02-30T00:00:00Z", "", HOSTILE_TEXT]),
)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner))
FIELD_PATHS = EVENT_FIELDS + DATA_FIELDS + [("data", "service", "id"), ("data", "assignees"), ("event_type",)]


def test_generated_webhook_bodies_never_make_a_5xx(world: PagerDutyWorld) -> None:
    hook = Webhook(world)

    @FUZZ
    @given(changes=st.lists(st.tuples(st.sampled_from(FIELD_PATHS), json_value), min_size=1, max_size=4))
    def check(changes: list[tuple[tuple[str, ...], Any]]) -> None:
        envelope = hook.envelope()
        for path, value in changes:
            if path[:-1] and not isinstance(envelope["event"].get(path[0]), dict):
                continue
            if len(path) == 3 and not isinstance(envelope["event"]["data"].get(path[1]), dict):
                continue
            setter(*path, value=value)(envelope["event"])
        answer = hook.post(json.dumps(envelope).encode())
        assert answer.status_code < 500, (changes, answer.text[:300])
        if answer.status_code >= 400:
            refused(answer, 400)

    check()
    all_webhook_jobs_settled(world)


# ----------------------------------------------------------------------------- Slack


FORM = "application/x-www-form-urlencoded"


def signed_post(app: AppHarness, body: bytes, content_type: str = FORM) -> httpx.Response:
    return app.slack.post(body, content_type=content_type)


def interactive(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def payload_of(body: bytes) -> dict[str, Any]:
    return json.loads(parse_qs(body.decode())["payload"][0])


def click(value: str = "INC-1", action_id: str = render.ACK_ACTION, response_url: str = "") -> dict[str, Any]:
    """A button click; without a response_url (the answer goes by chat.postEphemeral) unless given one."""
    payload = payload_of(sr.block_actions(action_id, value, response_url=response_url))
    return payload if response_url else without(payload, "response_url")


def submission(callback_id: str = render.DECLARE_VIEW, **values: str) -> dict[str, Any]:
    fields = {k: {"value": sr.text_input(v)} for k, v in values.items()}
    return payload_of(sr.view_submission(callback_id, fields))


def without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def with_value(payload: dict[str, Any], *path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    setter(*path, value=value)(changed)
    return changed


def mention_body(event_id: str = "Ev-hostile", **event: Any) -> bytes:
    base = {"type": "app_mention", "user": "U0BOB0001", "text": "<@U0BOT00001> list", "channel": "C0INCIDENT", "ts": "1.2"}
    body = {"type": "event_callback", "team_id": "T0001", "api_app_id": "A0APP00001", "event_id": event_id, "event": base | event}
    return json.dumps(body).encode()


# Signed Slack requests that are not what Slack sends: refused with 400 and the reason. Most made a 500
# before (the body decoded or parsed before the signature was checked, a listener reading a field that
# is not there); the forms without a user were answered as if something had gone wrong on our side.
REFUSED_SLACK: dict[str, tuple[bytes, str]] = {
    "bytes that are not UTF-8": (b"payload=%7B%7D&\xff\xfe", FORM),
    "payload= that is not JSON": (b"payload=%7Bnot+json", FORM),
    "payload= truncated": (interactive(click())[:-20], FORM),
    "payload= a list": (interactive([1, 2]), FORM),
    "payload= a string": (interactive("x"), FORM),
    "payload= null": (interactive(None), FORM),
    "payload= 10,000 deep": (urlencode({"payload": deep()}).encode(), FORM),
    "JSON body 10,000 deep": (('{"event": ' + deep() + "}").encode(), "application/json"),
    "JSON body not JSON": (b'{"type": "event_callback", ', "application/json"),
    "JSON body a 5,000-digit number": (b'{"type": "event_callback", "n": ' + b"9" * 5000 + b"}", "application/json"),
    "button click without a user": (interactive(without(click(), "user")), FORM),
    "button click with the user a string": (
        interactive(with_value(click(), "user", value="U1")),
        FORM,
    ),
    "button click with a numeric user id": (
        interactive(with_value(click(), "user", value={"id": 5})),
        FORM,
    ),
    "unknown button without a user": (
        interactive(without(click(action_id="old_button"), "user")),
        FORM,
    ),
    "form submitted without a user": (interactive(without(submission(title="t"), "user")), FORM),
    "resolve form without a user": (
        interactive(without(submission(render.RESOLVE_VIEW, note="n"), "user")),
        FORM,
    ),
}

# Signed requests with odd but harmless content: answered 200, with the refusal shown to the user.
ANSWERED_SLACK: dict[str, dict[str, Any]] = {
    "declare form without state": without(submission(title="t"), "view", "state"),
    "declare form with state.values a list": with_value(submission(title="t"), "view", "state", "values", value=[]),
    "declare form with a numeric title": with_value(
        submission(title="t"), "view", "state", "values", "title", "value", "value", value=5
    ),
    "resolve form with numeric private_metadata": with_value(
        submission(render.RESOLVE_VIEW, note="n"), "view", "private_metadata", value=5
    ),
    "resolve form with private_metadata 10,000 deep": with_value(
        submission(render.RESOLVE_VIEW, note="n"), "view", "private_metadata", value=deep()
    ),
}


def test_hostile_slack_requests_get_a_4xx_with_a_reason_and_change_nothing(app: AppHarness) -> None:
    app.command('declare --sev SEV-2 --title "Payments down" --service payments')
    app.wait_idle()
    before = counts(app, Incident, TimelineEvent, OutboxJob)
    for name, (body, content_type) in REFUSED_SLACK.items():
        answer = signed_post(app, body, content_type)
        assert answer.status_code == 400, (name, answer.status_code, answer.text[:300])
        assert answer.json()["error"], name
    # unsigned or badly signed: 401 before anything is decoded or parsed
    ok_body = sr.slash_command("list")
    for body in (b"\xff\xfe\x00 garbage", b"payload=%7Bnot+json", ok_body, ('{"a": ' + deep() + "}").encode()):
        refused(httpx.post(app.url + "/slack/events", content=body), 401)
        refused(signed_post_with(app, body, {"X-Slack-Signature": "v0=" + "0" * 64}), 401)
    refused(signed_post_with(app, ok_body, {"X-Slack-Signature": b"v0=\xff\xfe"}), 401)
    refused(signed_post_with(app, ok_body, {"X-Slack-Request-Timestamp": "soon"}), 401)
    refused(signed_post_with(app, ok_body, {"X-Slack-Request-Timestamp": "9" * 5000}), 401)
    refused(app.slack.post(ok_body, timestamp=1), 401)  # outside the 5-minute window
    assert counts(app, Incident, TimelineEvent, OutboxJob) == before, "a refused request left something behind"

    for name, payload in ANSWERED_SLACK.items():
        answer = signed_post(app, interactive(payload))
        assert answer.status_code == 200, (name, answer.status_code, answer.text[:300])
        assert answer.json()["response_action"] == "errors" and answer.json()["errors"], (name, answer.text)
    # a matcher or listener that raises on a field of the wrong type: 200 with a reference, never a 500
    for n, event in enumerate([{"text": 5}, {"text": None, "user": ["U1"]}, {"channel": {"id": "C1"}, "thread_ts": 7}]):
        answer = signed_post(app, mention_body(f"Ev-odd-{n}", **event), "application/json")
        assert answer.status_code == 200, (event, answer.text[:300])
    view_a_string = with_value(submission(title="t"), "view", value="not a view")
    assert signed_post(app, interactive(view_a_string)).status_code < 500
    app.wait_idle()
    assert counts(app, Incident, TimelineEvent) == {k: before[k] for k in ("Incident", "TimelineEvent")}
    # text a column may not take (a lone surrogate; NUL on PostgreSQL): stored, or refused whole and the user told
    surrogate = mention_body("Ev-surrogate", text="<@U0BOT00001> note --incident INC-1 @@").replace(b"@@", b"\\ud800")
    assert signed_post(app, surrogate, "application/json").status_code == 200
    assert app.command("note --incident INC-1 a\x00b").status_code == 200  # a form body carries no surrogates
    for text in ("a\ud800b", "a\x00b"):
        form = submission(title=text, severity="SEV-3", services="search")
        answer = signed_post(app, interactive(form))
        assert answer.status_code == 200 and answer.json()["response_action"] in ("errors", "update"), answer.text[:300]

    # an incident number no column holds is refused in words, from Slack and from a button
    big = app.command("ack --incident INC-99999999999999999999")
    assert big.status_code == 200 and "is not an incident ID" in big.json()["text"], big.text
    assert app.click(render.ACK_ACTION, "INC-99999999999999999999", response_url=app.fake.response_url()).status_code == 200
    app.wait_idle()
    assert "is not an incident ID" in app.fake.responses[-1]["text"]

    # odd but valid text is data; a 1 MB command is answered; the server still serves a valid request
    odd = app.command(f'declare --sev SEV-3 --title "{HOSTILE_TEXT}" --service search')
    assert odd.status_code == 200 and " declared" in odd.json()["text"], odd.text
    assert app.im.incidents.get(odd.json()["text"].split()[0]).title == HOSTILE_TEXT
    # 1 MB bodies: a button value and a form field (slash command text is bounded by Slack itself)
    huge = "9" * 1_000_000
    assert app.click(render.ACK_ACTION, huge, response_url=app.fake.response_url()).status_code == 200
    form = signed_post(app, interactive(submission(title=huge, severity="SEV-3", services="search")))
    assert form.status_code == 200 and form.json()["response_action"] == "errors", form.text[:300]
    assert " declared" in app.command('declare --sev SEV-3 --title "After the storm" --service search').json()["text"]
    app.wait_idle()
    assert app.fake.violations == []


def signed_post_with(app: AppHarness, body: bytes, headers: dict[str, Any]) -> httpx.Response:
    """Signed, then with some signing headers replaced."""
    all_headers: dict[str, Any] = {"Content-Type": FORM, **sr.sign(body, app.slack.signing_secret)}
    all_headers.update(headers)
    return httpx.post(app.url + "/slack/events", content=body, headers=all_headers)


PAYLOAD_PATHS = [
    ("user",),
    ("user", "id"),
    ("user", "name"),
    ("actions",),
    ("channel",),
    ("channel", "id"),
    ("container",),
    ("trigger_id",),
    ("type",),
    ("view",),
    ("view", "state"),
    ("view", "state", "values"),
    ("view", "private_metadata"),
    ("view", "callback_id"),
]


def test_generated_interaction_payloads_never_make_a_5xx(app: AppHarness) -> None:
    app.command('declare --sev SEV-2 --title "Payments down" --service payments')
    # (no changes to response_url: a signed payload comes from Slack, and we answer where it says)
    bases = [click(), click(action_id=render.RESOLVE_ACTION), click(action_id="old"), submission(title="t", severity="SEV-1")]
    bases.append(submission(render.RESOLVE_VIEW, note="n"))

    @FUZZ
    @given(base=st.sampled_from(bases), changes=st.lists(st.tuples(st.sampled_from(PAYLOAD_PATHS), json_value), max_size=3))
    def check(base: dict[str, Any], changes: list[tuple[tuple[str, ...], Any]]) -> None:
        payload = copy.deepcopy(base)
        if "actions" in payload:
            payload["response_url"] = app.fake.response_url()
        for path, value in changes:
            target = payload
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict):
                target[path[-1]] = value
        answer = signed_post(app, interactive(payload))
        assert answer.status_code < 500, (payload, answer.text[:300])
        if answer.status_code >= 400:
            refused(answer, 400, 404)  # 404: Bolt has no listener for what the payload became

    check()
    app.wait_idle()
    assert " declared" in app.command('declare --sev SEV-3 --title "Still here" --service search').json()["text"]


# ----------------------------------------------------------------------------- terminal


def test_terminal_refuses_an_incident_number_no_column_holds(sqlite_url: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    terminal = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url})
    terminal.ok("declare", "--sev", "SEV-3", "--title", "Disk full", "--service", "storage")
    for ref in ("INC-99999999999999999999", "INC-2147483648", "INC-" + "9" * 5000, "INC-\u00b2"):
        ran = terminal("ack", "--incident", ref)
        assert ran.code == 2, (ref, ran)
        assert "is not an incident ID" in ran.err and "Traceback" not in ran.err
    assert "INC-1" in terminal.ok("ack", "--incident", "INC-1")
