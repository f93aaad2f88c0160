"""Tests of the fake Slack Web API and the request builders, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack_api import FakeSlack, SlackSpec, load_spec, resolve_slack_dir
from tests.fakes.slack_requests import (
    SlackClient,
    block_actions,
    sign,
    slash_command,
    static_select,
    text_input,
    view_submission,
)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
SLACK_DIR = resolve_slack_dir(SHARED).resolve()
TOKEN = "xoxb-test-token"
ALICE = "U0ALICE001"


def require_spec() -> SlackSpec:
    spec = load_spec(SLACK_DIR)
    if spec is None:
        pytest.skip(f"Slack reference files not found under {SLACK_DIR}; validation cannot be tested")
    return spec


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=TOKEN) as f:
        f.add_user(ALICE, "alice", email="alice@example.com", real_name="Alice Liddell")
        f.add_channel("C0INCIDENT", "incidents", members=[ALICE])
        yield f


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(base_url=fake.base_url, token=TOKEN)


SECTION = [{"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* db down"}}]
MODAL = {"type": "modal", "callback_id": "declare", "title": {"type": "plain_text", "text": "Declare"}, "blocks": []}


# --------------------------------------------------------------------------- messages


def test_post_update_and_thread_replies(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C0INCIDENT", text="db down", blocks=SECTION)
    by_name = client.chat_postMessage(channel="#incidents", text="second")
    reply1 = client.chat_postMessage(channel="C0INCIDENT", text="ack", thread_ts=first["ts"])
    reply2 = client.chat_postMessage(channel="C0INCIDENT", text="mitigated", thread_ts=first["ts"])
    client.chat_update(channel="C0INCIDENT", ts=first["ts"], text="db down (ack)", blocks=SECTION)

    assert first["channel"] == by_name["channel"] == "C0INCIDENT"
    assert first["ts"] < by_name["ts"] < reply1["ts"] < reply2["ts"]
    assert first["message"]["blocks"] == SECTION
    top = fake.messages("C0INCIDENT")
    assert [m.text for m in top] == ["db down (ack)", "second"]
    assert top[0].edited == 1 and [v["text"] for v in top[0].history] == ["db down", "db down (ack)"]
    assert top[0].user == fake.bot_user_id
    assert [m.text for m in fake.replies("C0INCIDENT", first["ts"])] == ["ack", "mitigated"]
    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == SECTION  # JSON body decoded
    assert fake.violations == []


def test_update_with_text_only_drops_blocks(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=SECTION)["ts"]
    client.chat_update(channel="C0INCIDENT", ts=ts, text="y")
    assert fake.messages("C0INCIDENT")[0].blocks is None


def test_message_errors(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0NOPE0000", text="x")
    assert exc.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C0INCIDENT", ts="1700000000.999999", text="x")
    assert exc.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[{"text": "no type"}])
    assert exc.value.response["error"] == "invalid_blocks"
    assert any("blocks[0]" in v for v in fake.violations)


def test_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    resp = client.chat_postEphemeral(channel="C0INCIDENT", user=ALICE, text="only you")
    assert fake.ephemerals[0]["user"] == ALICE and fake.ephemerals[0]["message_ts"] == resp["message_ts"]
    assert fake.messages("C0INCIDENT") == []


# --------------------------------------------------------------------------- failures


def test_429_with_retry_after_surfaces_as_slack_api_error(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0INCIDENT", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] in ("7", ["7"])
    assert exc.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C0INCIDENT", text="x")["ok"]  # only once
    assert [c.http_status for c in fake.calls_to("chat.postMessage")] == [429, 200]


def test_fail_next_times_and_server_errors(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("conversations.create", error="name_taken", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="name_taken"):
            client.conversations_create(name="inc-1")
    fake.fail_next("users.info", status=503)
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user=ALICE)
    assert exc.value.response.status_code == 503
    assert client.conversations_create(name="inc-1")["ok"]


def test_auth_errors(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=fake.base_url, token="xoxb-wrong").auth_test()
    assert exc.value.response["error"] == "invalid_auth"
    assert httpx.post(fake.base_url + "auth.test").json() == {"ok": False, "error": "not_authed"}
    assert httpx.post(fake.base_url + "auth.test", data={"token": TOKEN}).json()["ok"]


def test_response_delay(fake: FakeSlack, client: WebClient) -> None:
    fake.response_delay = 0.2
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------- channels, users, views


def test_create_channel_and_invite(fake: FakeSlack, client: WebClient) -> None:
    created = client.conversations_create(name="inc-42-db_down")["channel"]
    assert created["id"].startswith("C") and created["name"] == "inc-42-db_down"
    channel = fake.find_channel_by_name("inc-42-db_down")
    assert channel is not None and channel.id == created["id"] and fake.bot_user_id in channel.members

    client.conversations_invite(channel=created["id"], users=[ALICE])
    assert ALICE in fake.channels[created["id"]].members
    for users, error in (([ALICE], "already_in_channel"), (["U0GHOST001"], "user_not_found")):
        with pytest.raises(SlackApiError) as exc:
            client.conversations_invite(channel=created["id"], users=users)
        assert exc.value.response["error"] == error
    info = client.conversations_info(channel=created["id"], include_num_members=True)["channel"]
    assert info["num_members"] == 2
    assert fake.violations == []


def test_channel_name_rules(client: WebClient) -> None:
    client.conversations_create(name="incidents-2024")
    for name, error in (
        ("incidents-2024", "name_taken"),
        ("Incident 1", "invalid_name_specials"),
        ("inc.1", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("---", "invalid_name_punctuation"),
    ):
        with pytest.raises(SlackApiError) as exc:
            client.conversations_create(name=name)
        assert exc.value.response["error"] == error, name
    assert client.conversations_create(name="x" * 80)["ok"]


def test_join_and_users(fake: FakeSlack, client: WebClient) -> None:
    assert client.conversations_join(channel="C0INCIDENT")["channel"]["is_member"] is True
    assert client.users_info(user=ALICE)["user"]["profile"]["email"] == "alice@example.com"
    assert client.users_lookupByEmail(email="ALICE@example.com")["user"]["id"] == ALICE
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U0GHOST001")
    with pytest.raises(SlackApiError, match="users_not_found"):
        client.users_lookupByEmail(email="nobody@example.com")
    assert fake.violations == []


def test_team_id_added_by_bolt_clients_is_accepted(fake: FakeSlack) -> None:
    require_spec()
    WebClient(base_url=fake.base_url, token=TOKEN, team_id="T0001").chat_postMessage(channel="C0INCIDENT", text="x")
    assert fake.violations == []


def test_views(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id="1.2.abc", view=MODAL)["view"]
    client.views_update(view_id=opened["id"], view={**MODAL, "title": {"type": "plain_text", "text": "Step 2"}})
    client.views_push(trigger_id="1.2.abc", view=MODAL)
    assert [(v["method"], v["trigger_id"]) for v in fake.opened_views] == [
        ("views.open", "1.2.abc"),
        ("views.update", None),
        ("views.push", "1.2.abc"),
    ]
    assert fake.opened_views[1]["view"]["title"]["text"] == "Step 2"
    with pytest.raises(SlackApiError, match="not_found"):
        client.views_update(view_id="V0NOPE", view=MODAL)
    assert fake.violations == []


def test_response_url_records_posts(fake: FakeSlack) -> None:
    url = fake.response_url()
    assert url != fake.response_url()
    assert httpx.post(url, json={"text": "done", "response_type": "ephemeral"}).status_code == 200
    assert fake.wait_for(lambda: len(fake.responses) == 1, timeout=2)
    assert fake.responses == [{"text": "done", "response_type": "ephemeral"}]


def test_wait_for_sees_work_from_another_thread(fake: FakeSlack, client: WebClient) -> None:
    threading.Thread(target=lambda: client.chat_postMessage(channel="C0INCIDENT", text="later")).start()
    assert fake.wait_for(lambda: len(fake.messages("C0INCIDENT")) == 1, timeout=5)
    assert not fake.wait_for(lambda: False, timeout=0.05)


# --------------------------------------------------------------------------- validation


def test_violations_for_missing_arg_unknown_arg_and_unknown_method(fake: FakeSlack) -> None:
    require_spec()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    httpx.post(fake.base_url + "chat.postMessage", data={"text": "no channel"}, headers=auth)
    httpx.post(fake.base_url + "conversations.create", data={"name": "ok-name", "is_privat": "true"}, headers=auth)
    answer = httpx.post(fake.base_url + "chat.postMesage", data={"channel": "C0INCIDENT"}, headers=auth).json()
    assert answer == {"ok": False, "error": "unknown_method"}
    assert "chat.postMessage: required argument 'channel' missing" in fake.violations
    assert "conversations.create: unknown argument 'is_privat'" in fake.violations
    assert any(v.startswith("chat.postMesage:") for v in fake.violations)


def test_form_bodies_with_json_strings_are_decoded(fake: FakeSlack) -> None:
    form = {"token": TOKEN, "channel": "C0INCIDENT", "text": "x", "blocks": json.dumps(SECTION)}
    assert httpx.post(fake.base_url + "chat.postMessage", data=form).json()["ok"]
    assert fake.messages("C0INCIDENT")[0].blocks == SECTION
    httpx.post(fake.base_url + "chat.postMessage", data={**form, "blocks": "[{not json"})
    assert any("'blocks' is not valid JSON" in v for v in fake.violations)


def test_response_validator_catches_bad_answers() -> None:
    spec = require_spec()
    good = {
        "ok": True,
        "channel": "C0INCIDENT",
        "ts": "1700000000.000100",
        "message": {"type": "message", "text": "x", "ts": "1700000000.000100"},
    }
    assert spec.check_response("chat.postMessage", good) == []
    bad = {"ok": True, "channel": "incidents", "ts": "17.1", "message": {"text": "x"}}
    problems = spec.check_response("chat.postMessage", bad)
    assert any("channel" in p for p in problems) and any("ts" in p for p in problems)
    assert any("'type' is a required property" in p for p in problems)
    # alternatives written as {"items": [...]} in the spec are enforced (anyOf)
    assert spec.check_response("users.info", {"ok": True, "user": {"id": "U0ALICE001"}})
    assert spec.check_response("conversations.create", {"ok": False, "error": "made_up_error"})
    assert spec.check_response("conversations.create", {"ok": False, "error": "name_taken"}) == []


def test_every_answer_of_the_fake_is_checked(fake: FakeSlack, client: WebClient, monkeypatch: pytest.MonkeyPatch) -> None:
    require_spec()
    client.auth_test()
    client.conversations_create(name="inc-7")
    assert len(fake.calls) == 2 and fake.violations == []
    # the spec object is shared by every fake in this process: patch it for this test only
    monkeypatch.setattr(fake.spec, "check_response", lambda method, body: [f"checked {method}"])
    client.auth_test()
    assert fake.violations == ["checked auth.test"]


def test_fake_works_without_shared_dir(tmp_path: Path) -> None:
    with FakeSlack(shared_dir=tmp_path / "missing") as f:
        assert f.spec is None
        httpx.post(f.base_url + "chat.postMessage", data={"token": f.bot_token, "text": "no channel"})
        assert f.violations == [] and f.calls[0].response["error"] == "channel_not_found"


# --------------------------------------------------------------------------- request builders


def test_sign_matches_slack_sdk_verifier() -> None:
    body = slash_command("declare sev1 db down")
    now = 1_700_000_000
    headers = sign(body, "s3cret", timestamp=now)
    verifier = SignatureVerifier("s3cret", clock=type("Clock", (), {"now": lambda self: float(now)})())
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other", clock=verifier.clock).is_valid_request(body, headers)


def test_builders_match_real_payload_field_sets() -> None:
    require_spec()
    payloads = SLACK_DIR / "payloads"
    slash = parse_qs(slash_command("x").decode())
    real_slash = parse_qs((payloads / "slash_command.bolt-python-fixture.txt").read_text().strip())
    assert set(real_slash) - {"enterprise_id", "enterprise_name"} <= set(slash)
    assert slash["command"] == ["/im"] and slash["text"] == ["x"]

    action = json.loads(parse_qs(block_actions("ack", "INC-1").decode())["payload"][0])
    real_action = json.loads((payloads / "block_actions.bolt-python-fixture.json").read_text())
    assert set(action) == set(real_action)
    assert set(action["actions"][0]) == set(real_action["actions"][0])

    values = {"severity": {"sev": static_select("sev1")}, "title": {"t": text_input("db down")}}
    sub = json.loads(parse_qs(view_submission("declare", values, private_metadata="m").decode())["payload"][0])
    real_sub = json.loads((payloads / "view_submission.bolt-python-fixture.json").read_text())
    assert set(sub) == set(real_sub) and set(sub["view"]) == set(real_sub["view"])
    assert sub["view"]["state"]["values"]["severity"]["sev"]["selected_option"]["value"] == "sev1"
    assert sub["view"]["callback_id"] == "declare" and sub["view"]["private_metadata"] == "m"


class _Echo(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = SignatureVerifier("s3cret").is_valid_request(body, dict(self.headers))
        self.received.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_slack_client_posts_signed_requests() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        with SlackClient(f"http://127.0.0.1:{server.server_address[1]}/", "s3cret") as slack:
            body = slash_command("status")
            assert slack.post(body).status_code == 200
            assert slack.post(body, signature="v0=bad").status_code == 401
            assert slack.post(body, timestamp=int(time.time()) - 600).status_code == 401
            slack.post(body, headers={"X-Slack-Retry-Num": "1"})
        assert _Echo.received[0]["path"] == "/slack/events" and _Echo.received[0]["body"] == body
        assert _Echo.received[-1]["headers"]["X-Slack-Retry-Num"] == "1"
    finally:
        server.shutdown()
        server.server_close()


# -- metadata, reading back, faults ----------------------------------------------------------------

MARK = {"event_type": "im_step", "event_payload": {"key": "slack-root:1"}}


def test_metadata_is_stored_and_read_back_only_when_asked(fake: FakeSlack, client: WebClient) -> None:
    fake.add_member("C0INCIDENT", fake.bot_user_id)
    root = client.chat_postMessage(channel="C0INCIDENT", text="root", metadata=MARK)["ts"]
    client.chat_postMessage(channel="C0INCIDENT", text="reply", thread_ts=root, metadata={**MARK, "event_payload": {"key": "r"}})
    plain = client.conversations_history(channel="C0INCIDENT")["messages"]
    assert [m["text"] for m in plain] == ["root"] and "metadata" not in plain[0]
    full = client.conversations_history(channel="C0INCIDENT", include_all_metadata=True, oldest=str(float(root) - 1))
    assert full["messages"][0]["metadata"] == MARK
    assert client.conversations_history(channel="C0INCIDENT", oldest=root)["messages"] == []  # exclusive
    thread = client.conversations_replies(channel="C0INCIDENT", ts=root, include_all_metadata=True)["messages"]
    assert [m["text"] for m in thread] == ["root", "reply"] and thread[1]["metadata"]["event_payload"] == {"key": "r"}
    with pytest.raises(SlackApiError) as bad:
        client.chat_postMessage(channel="C0INCIDENT", text="x", metadata={"event_type": "x"})
    assert bad.value.response["error"] == "invalid_metadata_format"
    assert [v for v in fake.violations if "metadata is not" not in v] == []


def test_reading_takes_membership_and_pages_by_cursor(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as outside:
        client.conversations_history(channel="C0INCIDENT")
    assert outside.value.response["error"] == "not_in_channel"
    fake.add_member("C0INCIDENT", fake.bot_user_id)
    for i in range(5):
        client.chat_postMessage(channel="C0INCIDENT", text=f"m{i}")
    seen, cursor = [], None
    while True:
        page = client.conversations_history(channel="C0INCIDENT", limit=2, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    assert seen == ["m4", "m3", "m2", "m1", "m0"]
    for i in range(3):
        fake.add_channel(f"C0ROOM{i:04d}", f"room-{i}")
    fake.channels["C0ROOM0001"].archived = True
    names, cursor = [], None
    while True:
        page = client.conversations_list(exclude_archived=True, limit=2, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == ["incidents", "room-0", "room-2"]
    assert fake.violations == []


def test_seeded_faults(fake: FakeSlack) -> None:
    fake.add_member("C0INCIDENT", fake.bot_user_id)
    client = WebClient(base_url=fake.base_url, token=TOKEN, timeout=0.3, retry_handlers=[])  # type: ignore[arg-type]  # float seconds
    fake.inject_faults(seed=1, rate=1.0, kinds=("late",), late_by=0.6, times=1)
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C0INCIDENT", text="late")
    assert [m.text for m in fake.messages("C0INCIDENT")] == ["late"], "carried out, answered too late"
    fake.inject_faults(seed=1, rate=1.0, kinds=("drop",), times=1)
    with pytest.raises(OSError):
        client.chat_postMessage(channel="C0INCIDENT", text="dropped")
    assert [m.text for m in fake.messages("C0INCIDENT")] == ["late", "dropped"]
    fake.inject_faults(seed=1, rate=1.0, kinds=("429", "500", "503"), times=3)
    statuses = []
    for _ in range(3):
        with pytest.raises(SlackApiError) as refused:
            client.chat_postMessage(channel="C0INCIDENT", text="refused")
        statuses.append(refused.value.response.status_code)
    assert len(statuses) == 3 and set(statuses) <= {429, 500, 503}
    assert len(fake.messages("C0INCIDENT")) == 2, "a refused call does nothing"
    client.chat_postMessage(channel="C0INCIDENT", text="fine")  # the plan is spent
    a, b = FakeSlack(), FakeSlack()
    for f in (a, b):
        f.inject_faults(seed=42, rate=0.5)
    assert [a.draw_fault("chat.postMessage", {}) for _ in range(20)] == [b.draw_fault("chat.postMessage", {}) for _ in range(20)]
    assert fake.violations == []
