"""A stateful fake of the Slack Web API, served over real HTTP on 127.0.0.1.

Point ``slack_sdk.WebClient(base_url=fake.base_url, token=fake.bot_token)`` at it.
Every call is recorded in ``calls``; every departure of a received call or of a
sent answer from Slack's published descriptions (``shared/slack/methods/*.json``
and ``shared/slack/web-api/slack_web_openapi_v2.json``) is recorded in
``violations``.  When ``shared/`` is absent the fake still works, it just checks
nothing.

``inject_faults`` makes a seeded share of calls fail the way Slack and the network
do: 429 with Retry-After, 500, 503 with an HTML body, a call carried out but
answered only after the client gave up (``late``), or carried out and the
connection dropped without an answer (``drop``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match

from tests.fakes.served import ServedFake
from tests.fakes.slack_limits import SlackLimits, retry_after

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED_DIR = REPO_ROOT / ".." / "shared"

TEAM_ID = "T0001"
TEAM_NAME = "Incident Co"
BOT_USER_ID = "U0BOT00001"
BOT_ID = "B0BOT00001"
APP_ID = "A0APP00001"
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
MAX_CHANNEL_NAME = 80
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
JSON_ARGS = ("blocks", "attachments", "view", "metadata")
# Accepted by every method: the token, and the team_id slack_sdk adds to every call
# once a client knows its team (Bolt's per-request client does), for org-wide apps.
UNIVERSAL_ARGS = frozenset({"token", "team_id"})
_AUTO = object()


# --------------------------------------------------------------------------- state


@dataclass
class FakeMessage:
    ts: str
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    edited: int = 0
    metadata: dict[str, Any] | None = None  # Slack message metadata (event_type, event_payload)
    broadcast: bool = False  # a thread reply also shown in the channel (reply_broadcast)
    # Every version of (text, blocks), oldest first; history[-1] is the current one.
    history: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # ids of the files this message shares (files.completeUploadExternal)


@dataclass
class FakeFile:
    """A file from files.getUploadURLExternal: its bytes arrive at its upload URL, completing shares it."""

    id: str
    name: str
    length: int
    created: int
    title: str | None = None
    content: bytes | None = None  # None until POSTed to the upload URL
    shares: list[str] = field(default_factory=list)  # channel ids, once per completion that shared it


@dataclass
class FakeChannel:
    id: str
    name: str
    is_private: bool = False
    members: set[str] = field(default_factory=set)
    messages: list[FakeMessage] = field(default_factory=list)
    created_by: str = "USLACKBOT"
    created: int = 1700000000
    archived: bool = False
    purpose: str = ""
    topic: str = ""


@dataclass
class FakeUser:
    id: str
    name: str
    email: str | None = None
    real_name: str | None = None
    is_bot: bool = False
    deleted: bool = False  # left the workspace (deactivated)


@dataclass
class RecordedCall:
    method: str
    args: dict[str, Any]
    http_status: int
    response: dict[str, Any]
    at: float | None = None  # the rate limits' clock when it came (with limits on)


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    times: int


FAULT_KINDS = ("429", "500", "503", "late", "drop")


@dataclass
class _FaultPlan:
    rng: random.Random
    rate: float
    methods: frozenset[str]
    kinds: tuple[str, ...]
    late_by: float
    left: int | None  # faults still to inject (None: no limit)


@dataclass
class InjectedFault:
    method: str
    kind: str
    args: dict[str, Any]


class ApiErrorAnswer(Exception):
    """Raised inside handlers to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


# --------------------------------------------------------------------------- spec


def _items_list_to_any_of(node: Any) -> Any:
    """The 2020 spec writes alternatives as ``{"items": [A, B]}`` without a type,
    which JSON Schema ignores for non-arrays; read them as ``anyOf`` instead."""
    if isinstance(node, list):
        return [_items_list_to_any_of(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _items_list_to_any_of(v) for k, v in node.items()}
    if isinstance(out.get("items"), list) and "type" not in out:
        out["anyOf"] = out.pop("items")
    return out


class SlackSpec:
    """Slack's method descriptions and response schemas, loaded from shared/slack."""

    def __init__(self, slack_dir: Path) -> None:
        methods_dir = slack_dir / "methods"
        self.methods: dict[str, dict[str, Any]] = {}
        for path in methods_dir.glob("*.json"):
            if path.stem != "common_errors":
                self.methods[path.stem] = json.loads(path.read_text())
        common = methods_dir / "common_errors.json"
        self.common_errors: set[str] = set(json.loads(common.read_text())) if common.exists() else set()
        openapi = json.loads((slack_dir / "web-api" / "slack_web_openapi_v2.json").read_text())
        _since_2020(openapi["definitions"], openapi["paths"])
        self._definitions = _items_list_to_any_of(openapi["definitions"])
        self._paths: dict[str, Any] = openapi["paths"]
        self._validators: dict[str, Draft4Validator | None] = {}

    def check_request(self, method: str, args: dict[str, Any]) -> list[str]:
        """Unknown method, missing required args, args the method does not take."""
        desc = self.methods.get(method)
        if desc is None:
            return [f"{method}: method not described in methods/*.json"]
        known = desc.get("args", {})
        problems = [
            f"{method}: required argument {name!r} missing"
            for name, arg in known.items()
            if arg.get("required") and name not in UNIVERSAL_ARGS and args.get(name) in (None, "")
        ]
        problems += [f"{method}: unknown argument {name!r}" for name in args if name not in known and name not in UNIVERSAL_ARGS]
        return problems

    def success_validator(self, method: str) -> Draft4Validator | None:
        if method not in self._validators:
            ops = self._paths.get(f"/{method}", {})
            schema = next((op["responses"]["200"].get("schema") for op in ops.values() if "200" in op.get("responses", {})), None)
            self._validators[method] = (
                Draft4Validator({**_items_list_to_any_of(schema), "definitions": self._definitions}) if schema else None
            )
        return self._validators[method]

    def check_response(self, method: str, body: dict[str, Any]) -> list[str]:
        """A success answer must match the method's 200 schema; an error answer must
        use an error code the method (or Slack's common errors) documents."""
        if body.get("ok") is True:
            validator = self.success_validator(method)
            if validator is None:
                return []
            return [_describe(method, e) for e in validator.iter_errors(body)]
        if body.get("ok") is not False or not isinstance(body.get("error"), str):
            return [f"{method}: response is neither ok:true nor ok:false with an error string: {body!r}"]
        documented = set(self.methods.get(method, {}).get("errors", {})) | self.common_errors
        if body["error"] not in documented:
            return [f"{method}: error {body['error']!r} is not documented for this method"]
        return []


def _since_2020(definitions: dict[str, Any], paths: dict[str, Any]) -> None:
    """What Slack sends today and the 2020 schema predates, per the method catalog (methods/*.json):
    message metadata (``include_all_metadata``), cursor paging of conversations.history, and an empty
    history page."""
    metadata = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"event_type": {"type": "string"}, "event_payload": {"type": "object"}},
        "required": ["event_type", "event_payload"],
    }
    definitions["objs_message"]["properties"]["metadata"] = metadata
    history = paths.get("/conversations.history", {}).get("get", {}).get("responses", {}).get("200", {}).get("schema")
    if history:
        history["properties"]["messages"].pop("minItems", None)
        history["properties"]["response_metadata"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {"next_cursor": {"type": "string"}},
            "required": ["next_cursor"],
        }
    replies = paths.get("/conversations.replies", {}).get("get", {}).get("responses", {}).get("200", {}).get("schema")
    if replies:
        for alternative in replies["properties"]["messages"]["items"]["items"]:
            alternative["properties"]["metadata"] = metadata


def _describe(method: str, error: ValidationError) -> str:
    if error.context:  # anyOf/oneOf: say why the closest alternative failed
        error = best_match(error.context)
    where = "/".join(map(str, error.absolute_path)) or "<root>"
    return f"{method}: response {where}: {error.message[:300]}"


@lru_cache(maxsize=4)
def load_spec(slack_dir: Path) -> SlackSpec | None:
    """The spec under ``slack_dir`` (a ``shared/slack`` folder), or None when absent."""
    if not (slack_dir / "methods").is_dir() or not (slack_dir / "web-api" / "slack_web_openapi_v2.json").is_file():
        return None
    return SlackSpec(slack_dir)


def resolve_slack_dir(shared_dir: Path) -> Path:
    """Accept either the ``shared`` folder or its ``slack`` sub-folder."""
    return shared_dir / "slack" if (shared_dir / "slack").is_dir() else shared_dir


def check_blocks(method: str, blocks: Any, limit: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    if not isinstance(blocks, list):
        return [f"{method}: blocks is not a JSON list: {type(blocks).__name__}"]
    problems = [
        f"{method}: blocks[{i}] is not an object with a string 'type'"
        for i, b in enumerate(blocks)
        if not (isinstance(b, dict) and isinstance(b.get("type"), str))
    ]
    if len(blocks) > limit:
        problems.append(f"{method}: {len(blocks)} blocks, Slack allows {limit}")
    return problems


# --------------------------------------------------------------------------- fake


class FakeSlack(ServedFake):
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        shared_dir: Path | object | None = _AUTO,
        response_delay: float = 0.0,
        limits: SlackLimits | None = None,
    ) -> None:
        """`limits`: Slack's rate limits enforced (429 with Retry-After beyond them); None: unlimited."""
        self.bot_token = bot_token
        self.limits = limits
        self.rate_limited: list[RecordedCall] = []  # calls refused by `limits`
        self.response_delay = response_delay
        self.team_id, self.bot_user_id, self.bot_id = TEAM_ID, BOT_USER_ID, BOT_ID
        if shared_dir is _AUTO:
            shared_dir = DEFAULT_SHARED_DIR
        self.spec = load_spec(resolve_slack_dir(Path(shared_dir)).resolve()) if shared_dir is not None else None  # type: ignore[arg-type]
        if limits is not None and limits.methods_dir is None and shared_dir is not None:
            limits.methods_dir = resolve_slack_dir(Path(shared_dir)).resolve() / "methods"  # type: ignore[arg-type]

        self.users: dict[str, FakeUser] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.calls: list[RecordedCall] = []
        self.violations: list[str] = []
        self.opened_views: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}  # user group ID -> member user IDs
        self.views: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []
        self._response_urls: dict[str, int] = {}  # path -> uses
        self.files: dict[str, FakeFile] = {}  # by id: uploads, completed or not
        self._failures: dict[str, list[_Failure]] = {}
        self._fault_plan: _FaultPlan | None = None
        self.faults: list[InjectedFault] = []
        self._counter = 0
        self._last_ts = 0  # microseconds: message ts follow the real clock, strictly increasing
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_user(BOT_USER_ID, "im-bot", real_name="Incident Bot", is_bot=True)

    # ---- lifecycle

    def start(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._listen(Handler, "fake-slack")
        return self

    @property
    def root_url(self) -> str:
        assert self._server is not None, "FakeSlack not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/api/"

    # ---- seeding and inspection

    def add_user(
        self, user_id: str, name: str, email: str | None = None, real_name: str | None = None, is_bot: bool = False
    ) -> None:
        with self._lock:
            self.users[user_id] = FakeUser(user_id, name, email, real_name, is_bot)

    def add_usergroup(self, group_id: str, members: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(members)

    def dms(self, user_id: str) -> list[FakeMessage]:
        """What the bot said to `user_id` in their direct-message channel."""
        with self._lock:
            channel = self.channels.get(_dm_id(user_id))
            return list(channel.messages) if channel else []

    def add_channel(self, channel_id: str, name: str, members: tuple[str, ...] | list[str] | set[str] = ()) -> None:
        with self._lock:
            self.channels[channel_id] = FakeChannel(channel_id, name, members=set(members))

    def add_member(self, channel_id: str, user_id: str) -> None:
        with self._lock:
            self.channels[channel_id].members.add(user_id)

    def messages(self, channel_id: str) -> list[FakeMessage]:
        with self._lock:
            return [m for m in self.channels[channel_id].messages if m.thread_ts in (None, m.ts)]

    def replies(self, channel_id: str, thread_ts: str) -> list[FakeMessage]:
        with self._lock:
            return [m for m in self.channels[channel_id].messages if m.thread_ts == thread_ts and m.ts != thread_ts]

    def find_channel_by_name(self, name: str) -> FakeChannel | None:
        with self._lock:
            return next((c for c in self.channels.values() if c.name == name), None)

    def shared_files(self, channel_id: str, thread_ts: str | None = None) -> list[tuple[FakeMessage, FakeFile]]:
        """The files shared in a channel (or one of its threads), with the message sharing each."""
        with self._lock:
            channel = self.channels.get(channel_id)  # a DM exists once conversations.open made it
            return [
                (m, self.files[f])
                for m in (channel.messages if channel else [])
                if m.files and (thread_ts is None or m.thread_ts == thread_ts)
                for f in m.files
            ]

    def calls_to(self, method: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def fail_next(
        self, method: str, *, error: str | None = None, status: int = 200, retry_after: int | None = None, times: int = 1
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail.  ``error`` defaults to
        ``ratelimited`` (200/429), ``internal_error`` (500), ``service_unavailable`` (503)."""
        if error is None:
            error = {500: "internal_error", 503: "service_unavailable"}.get(status, "ratelimited")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._failures.setdefault(method, []).append(_Failure(error, status, retry_after, times))

    def inject_faults(
        self,
        *,
        seed: int,
        rate: float,
        methods: tuple[str, ...] | list[str] | set[str] = ("chat.postMessage",),
        kinds: tuple[str, ...] = FAULT_KINDS,
        late_by: float = 1.0,
        times: int | None = None,
    ) -> None:
        """From now on a seeded share ``rate`` of calls to ``methods`` fails with one of ``kinds``:
        ``429`` (Retry-After: 1), ``500``, ``503`` (an HTML page, as a load balancer sends), ``late``
        (carried out, answered ``late_by`` seconds later: set the client's timeout below it) or ``drop``
        (carried out, connection closed without an answer). At most ``times`` faults (None: no limit);
        ``rate=0`` turns faults off."""
        unknown = set(kinds) - set(FAULT_KINDS)
        assert not unknown, f"unknown fault kinds {unknown}"
        with self._lock:
            self._fault_plan = (
                _FaultPlan(random.Random(seed), rate, frozenset(methods), tuple(kinds), late_by, times) if rate else None
            )

    def draw_fault(self, method: str, args: dict[str, Any]) -> str | None:
        with self._lock:
            plan = self._fault_plan
            if plan is None or method not in plan.methods or plan.left == 0 or plan.rng.random() >= plan.rate:
                return None
            if plan.left is not None:
                plan.left -= 1
            kind = plan.rng.choice(plan.kinds)
            self.faults.append(InjectedFault(method, kind, args))
            return kind

    @property
    def late_by(self) -> float:
        with self._lock:
            return self._fault_plan.late_by if self._fault_plan else 0.0

    def response_url(self) -> str:
        with self._lock:
            path = f"/response/{len(self._response_urls) + 1}"
            self._response_urls[path] = 0
        return self.root_url + path

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.01)
        with self._lock:
            return predicate()

    # ---- request handling (called from server threads)

    def handle_api(
        self, method: str, args: dict[str, Any], auth_header: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.response_delay:
            time.sleep(self.response_delay)
        with self._lock:
            wait = self.limits.spend(method, args.get("channel")) if self.limits is not None else None
            if wait is not None:
                refused = RecordedCall(method, args, 429, {"ok": False, "error": "ratelimited"}, self.limits.clock())  # type: ignore[union-attr]
                self.rate_limited.append(refused)
                return 429, {"Retry-After": retry_after(wait)}, refused.response
            status, headers, body = self._dispatch(method, args, auth_header)
            if self.spec is not None and method in self.spec.methods:
                self.violations += self.spec.check_response(method, body)
            at = self.limits.clock() if self.limits is not None else None
            self.calls.append(RecordedCall(method, args, status, body, at))
            return status, headers, body

    def handle_response_url(self, path: str, raw: bytes) -> int:
        with self._lock:
            if path not in self._response_urls:
                self.violations.append(f"POST to unknown response_url {path}")
                return 404
            self._response_urls[path] += 1
            if self._response_urls[path] > 5:
                self.violations.append(f"response_url {path} used more than 5 times")
            try:
                payload = json.loads(raw)
            except ValueError:
                self.violations.append(f"response_url {path}: body is not JSON: {raw[:200]!r}")
                return 400
            if not isinstance(payload, dict):
                self.violations.append(f"response_url {path}: body is not a JSON object")
                return 400
            if "blocks" in payload:
                self.violations += check_blocks("response_url", payload["blocks"])
            self.responses.append(payload)
            return 200

    def handle_upload(self, path: str, raw: bytes) -> tuple[int, bytes]:
        """The upload URL files.getUploadURLExternal handed out: the file's bytes, once, of the length declared."""
        with self._lock:
            file = self.files.get(path.rsplit("/", 1)[-1])
            if file is None:
                self.violations.append(f"POST to unknown upload URL {path}")
                return 404, b"not found"
            if len(raw) != file.length:
                self.violations.append(f"upload {file.id}: {len(raw)} bytes sent, {file.length} declared")
            file.content = raw
            return 200, f"OK - {len(raw)}".encode()

    def _dispatch(self, method: str, args: dict[str, Any], auth_header: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if self.spec is not None:
            self.violations += self.spec.check_request(method, args)
        if handler is None:
            self.violations.append(f"{method}: not implemented by FakeSlack (unknown_method)")
            return 200, {}, {"ok": False, "error": "unknown_method"}

        token = auth_header[len("Bearer ") :] if auth_header and auth_header.startswith("Bearer ") else args.get("token")
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.bot_token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}

        failure = self._pop_failure(method)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, headers, {"ok": False, "error": failure.error}
        try:
            return 200, {}, {"ok": True, **handler(args)}
        except ApiErrorAnswer as exc:
            return 200, {}, {"ok": False, "error": exc.error}

    def _pop_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    # ---- helpers for handlers

    def _next_ts(self) -> str:
        self._counter += 1
        self._last_ts = max(self._last_ts + 100, int(time.time() * 1_000_000))
        micros = self._last_ts
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, ref: Any) -> FakeChannel:
        if isinstance(ref, str):
            if ref in self.channels:
                return self.channels[ref]
            found = self.find_channel_by_name(ref.lstrip("#"))
            if found is not None:
                return found
        raise ApiErrorAnswer("channel_not_found")

    def _channel_by_id(self, ref: Any) -> FakeChannel:
        """Methods that read a conversation take its ID, never a #name."""
        if isinstance(ref, str) and ref in self.channels:
            return self.channels[ref]
        raise ApiErrorAnswer("channel_not_found")

    def _message(self, channel: FakeChannel, ts: Any) -> FakeMessage:
        found = next((m for m in channel.messages if m.ts == ts), None)
        if found is None:
            raise ApiErrorAnswer("message_not_found")
        return found

    def _checked_blocks(self, method: str, args: dict[str, Any]) -> list[dict[str, Any]] | None:
        if "blocks" not in args:
            return None
        blocks = args["blocks"]
        problems = check_blocks(method, blocks)
        if problems:
            self.violations += problems
            raise ApiErrorAnswer("invalid_blocks_format" if not isinstance(blocks, list) else "invalid_blocks")
        return blocks

    def _check_text_limits(self, method: str, args: dict[str, Any]) -> None:
        markdown = args.get("markdown_text")
        if isinstance(markdown, str) and len(markdown) > 12_000:
            self.violations.append(f"{method}: markdown_text longer than 12,000 characters")
        text = args.get("text")
        if method == "chat.update" and isinstance(text, str) and len(text) > 4_000:
            self.violations.append(f"{method}: text longer than 4,000 characters")
            raise ApiErrorAnswer("msg_too_long")

    def _conversation(self, ch: FakeChannel) -> dict[str, Any]:
        empty = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": ch.id,
            "name": ch.name,
            "name_normalized": ch.name,
            "created": ch.created,
            "creator": ch.created_by,
            "is_archived": ch.archived,
            "is_channel": not ch.is_private,
            "is_group": ch.is_private,
            "is_general": False,
            "is_im": False,
            "is_mpim": False,
            "is_org_shared": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_private": ch.is_private,
            "is_member": self.bot_user_id in ch.members,
            "topic": {**empty, "value": ch.topic},
            "purpose": {**empty, "value": ch.purpose},
        }

    def _user(self, u: FakeUser) -> dict[str, Any]:
        real_name = u.real_name or u.name
        profile: dict[str, Any] = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": u.name,
            "display_name_normalized": u.name,
            "avatar_hash": "g0000000000a",
            "title": "",
            "phone": "",
            "skype": "",
            "status_text": "",
            "status_emoji": "",
            "fields": None,
        }
        if u.email:
            profile["email"] = u.email
        return {
            "id": u.id,  # no team_id: the spec wants 9+ character workspace IDs, ours is T0001
            "name": u.name,
            "real_name": real_name,
            "deleted": u.deleted,
            "is_bot": u.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": profile,
        }

    def _message_json(self, m: FakeMessage, *, with_metadata: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "text": m.text, "user": m.user, "bot_id": self.bot_id, "ts": m.ts}
        if m.blocks is not None:
            out["blocks"] = m.blocks
        if m.thread_ts is not None:
            out["thread_ts"] = m.thread_ts
        if m.broadcast:
            out["subtype"] = "thread_broadcast"
        if with_metadata and m.metadata is not None:
            out["metadata"] = m.metadata
        if m.files:
            out["files"] = [{"id": f, "name": self.files[f].name} for f in m.files]
        return out

    def _reply_json(self, m: FakeMessage, parent: FakeMessage, replies: int, with_metadata: bool) -> dict[str, Any]:
        """conversations.replies items: the parent carries the thread summary, a reply its parent's user."""
        out: dict[str, Any] = {"type": "message", "text": m.text, "user": m.user, "ts": m.ts, "thread_ts": parent.ts}
        if m is parent:
            out |= {"reply_count": replies, "subscribed": False}
        else:
            out["parent_user_id"] = parent.user
        if with_metadata and m.metadata is not None:
            out["metadata"] = m.metadata
        return out

    def _readable(self, method: str, channel: FakeChannel, not_member_error: str) -> None:
        """Reading a channel takes membership: only user tokens read public channels they are not in."""
        if self.bot_user_id not in channel.members:
            raise ApiErrorAnswer("channel_not_found" if channel.is_private else not_member_error)

    def _page(self, items: list[Any], args: dict[str, Any], default_limit: int, max_limit: int) -> tuple[list[Any], str]:
        """Cursor paging: an opaque cursor names the next offset; an empty next_cursor ends the list."""
        try:
            limit = int(args.get("limit") or default_limit)
        except (TypeError, ValueError):
            raise ApiErrorAnswer("invalid_limit") from None
        limit = max(1, min(limit, max_limit))
        cursor = args.get("cursor") or ""
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("next:")) if cursor else 0
        except ValueError:
            raise ApiErrorAnswer("invalid_cursor") from None
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return page, base64.urlsafe_b64encode(f"next:{offset + limit}".encode()).decode() if more else ""

    @staticmethod
    def _window(messages: list[FakeMessage], args: dict[str, Any]) -> list[FakeMessage]:
        """Messages between ``oldest`` and ``latest`` (exclusive unless ``inclusive``)."""
        try:
            oldest = float(args.get("oldest") or 0)
        except ValueError:
            raise ApiErrorAnswer("invalid_ts_oldest") from None
        try:
            latest = float(args["latest"]) if args.get("latest") else float("inf")
        except ValueError:
            raise ApiErrorAnswer("invalid_ts_latest") from None
        inclusive = _true(args.get("inclusive"))
        return [m for m in messages if (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)]

    # ---- methods (each returns the answer without "ok", or raises ApiErrorAnswer)

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://incident-co.slack.com/",
            "team": TEAM_NAME,
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        blocks = self._checked_blocks("chat.postMessage", args)
        self._check_text_limits("chat.postMessage", args)
        text = args.get("text") or args.get("markdown_text") or ""
        if not text and not blocks and not args.get("attachments"):
            raise ApiErrorAnswer("no_text")
        metadata = args.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            self.violations.append(
                f"chat.postMessage: metadata is not {{event_type: str, event_payload: object}}: {metadata!r:.200}"
            )
            raise ApiErrorAnswer("invalid_metadata_format")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            parent = next((m for m in channel.messages if m.ts == thread_ts), None)
            if parent is None:  # Slack accepts it silently; a bot doing this is almost surely wrong
                self.violations.append(f"chat.postMessage: thread_ts {thread_ts} matches no message in {channel.id}")
            elif parent.thread_ts not in (None, parent.ts):
                self.violations.append(f"chat.postMessage: thread_ts {thread_ts} is a reply; use its parent's ts")
                thread_ts = parent.thread_ts
        ts = self._next_ts()
        msg = FakeMessage(
            ts,
            channel.id,
            self.bot_user_id,
            text,
            blocks,
            thread_ts,
            history=[{"text": text, "blocks": blocks}],
            metadata=metadata,
            broadcast=thread_ts is not None and _true(args.get("reply_broadcast")),
        )
        channel.messages.append(msg)
        return {"channel": channel.id, "ts": ts, "message": self._message_json(msg)}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        msg = self._message(channel, args.get("ts"))
        blocks = self._checked_blocks("chat.update", args)
        self._check_text_limits("chat.update", args)
        if "text" in args:
            msg.text = args["text"] or ""
            msg.blocks = blocks  # Slack drops old blocks when only text is sent
        elif blocks is not None:
            msg.blocks = blocks
        msg.edited += 1
        msg.history.append({"text": msg.text, "blocks": msg.blocks})
        # The 2020 schema declares message.blocks an object (Slack sends a list): leave it out.
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": {"text": msg.text}}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        blocks = self._checked_blocks("chat.postEphemeral", args)
        self._check_text_limits("chat.postEphemeral", args)
        if not args.get("text") and not blocks and not args.get("attachments"):
            raise ApiErrorAnswer("no_text")
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel.id,
                "user": args.get("user"),
                "text": args.get("text") or "",
                "blocks": blocks,
                "thread_ts": args.get("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"message_ts": ts}

    def _m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise ApiErrorAnswer("invalid_name_required")
        if len(name) > MAX_CHANNEL_NAME:
            raise ApiErrorAnswer("invalid_name_maxlength")
        if not CHANNEL_NAME_RE.match(name):
            raise ApiErrorAnswer("invalid_name_specials")
        if not re.search(r"[a-z0-9]", name):
            raise ApiErrorAnswer("invalid_name_punctuation")
        if self.find_channel_by_name(name) is not None:
            raise ApiErrorAnswer("name_taken")
        self._counter += 1
        channel_id = f"CNEW{self._counter:06d}"
        is_private = str(args.get("is_private", "")).lower() in ("true", "1")
        ch = FakeChannel(
            channel_id, name, is_private, {self.bot_user_id}, created_by=self.bot_user_id, created=1700000000 + self._counter
        )
        self.channels[channel_id] = ch
        return {"channel": self._conversation(ch)}

    def _m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise ApiErrorAnswer("no_user")
        force = str(args.get("force", "")).lower() in ("true", "1")
        errors = {
            u: "cant_invite_self"
            if u == self.bot_user_id
            else "user_not_found"
            if u not in self.users
            else "already_in_channel"
            if u in channel.members
            else None
            for u in users
        }
        failed = [e for e in errors.values() if e]
        if failed and (not force or len(failed) == len(users)):
            raise ApiErrorAnswer(failed[0])
        channel.members |= {u for u, e in errors.items() if e is None}
        return {"channel": self._conversation(channel)}

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if channel.id != args.get("channel"):
            raise ApiErrorAnswer("channel_not_found")  # info takes IDs only
        out = self._conversation(channel)
        if str(args.get("include_num_members", "")).lower() in ("true", "1"):
            out["num_members"] = len(channel.members)
        return {"channel": out}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Channel messages, newest first: top-level ones and replies broadcast to the channel."""
        channel = self._channel_by_id(args.get("channel"))
        self._readable("conversations.history", channel, "not_in_channel")
        shown = [m for m in channel.messages if m.thread_ts in (None, m.ts) or m.broadcast]
        newest_first = sorted(self._window(shown, args), key=lambda m: float(m.ts), reverse=True)
        page, cursor = self._page(newest_first, args, 100, 999)
        with_metadata = _true(args.get("include_all_metadata"))
        out: dict[str, Any] = {
            "messages": [self._message_json(m, with_metadata=with_metadata) for m in page],
            "has_more": bool(cursor),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if cursor:
            out["response_metadata"] = {"next_cursor": cursor}
        return out

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread, oldest first: the parent, then its replies."""
        channel = self._channel_by_id(args.get("channel"))
        self._readable("conversations.replies", channel, "channel_not_found")
        parent = next((m for m in channel.messages if m.ts == args.get("ts")), None)
        if parent is None:
            raise ApiErrorAnswer("thread_not_found")
        if parent.thread_ts not in (None, parent.ts):
            parent = self._message(channel, parent.thread_ts)
        thread = [parent] + [m for m in channel.messages if m.thread_ts == parent.ts and m is not parent]
        replies = len(thread) - 1
        window = [m for m in thread if m is parent or m in self._window(thread, args)]
        page, cursor = self._page(window, args, 1000, 1000)
        with_metadata = _true(args.get("include_all_metadata"))
        out: dict[str, Any] = {
            "messages": [self._reply_json(m, parent, replies, with_metadata) for m in page],
            "has_more": bool(cursor),
        }
        if cursor:
            out["response_metadata"] = {"next_cursor": cursor}
        return out

    def _m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",") if t.strip()}
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            raise ApiErrorAnswer("invalid_types")
        channels = [
            ch
            for ch in self.channels.values()
            if ("private_channel" if ch.is_private else "public_channel") in types
            and not (ch.archived and _true(args.get("exclude_archived")))
            and (not ch.is_private or self.bot_user_id in ch.members)
        ]
        page, cursor = self._page(channels, args, 100, 999)
        return {"channels": [self._conversation(ch) for ch in page], "response_metadata": {"next_cursor": cursor}}

    def _m_conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if channel.is_private:
            raise ApiErrorAnswer("method_not_supported_for_channel_type")
        channel.members.add(self.bot_user_id)
        return {"channel": self._conversation(channel)}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args.get("user") or "")
        if user is None:
            raise ApiErrorAnswer("user_not_found")
        return {"user": self._user(user)}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        user = next((u for u in self.users.values() if u.email and u.email.lower() == email), None)
        if user is None:
            raise ApiErrorAnswer("users_not_found")
        return {"user": self._user(user)}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """A 1:1 direct message with one user (the only kind im opens)."""
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise ApiErrorAnswer("users_list_not_supplied")
        if len(users) > 1:
            self.violations.append("conversations.open: im only ever opens a 1:1 DM")
            raise ApiErrorAnswer("invalid_user_combination")
        user = self.users.get(users[0])
        if user is None:
            raise ApiErrorAnswer("user_not_found")
        if user.deleted:
            raise ApiErrorAnswer("user_disabled")
        dm = _dm_id(user.id)
        if dm not in self.channels:
            self.channels[dm] = FakeChannel(dm, dm.lower(), True, {self.bot_user_id, user.id})
        return {"channel": {"id": dm}}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(args.get("length") or 0)
        except (TypeError, ValueError):
            raise ApiErrorAnswer("invalid_arguments") from None
        if length <= 0:
            raise ApiErrorAnswer("missing_argument")
        self._counter += 1
        file_id = f"F{self._counter:010d}"
        self.files[file_id] = FakeFile(file_id, str(args.get("filename")), length, int(time.time()))
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            wanted = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files")
        except ValueError:
            wanted = None
        if not isinstance(wanted, list) or not wanted or not all(isinstance(f, dict) and f.get("id") for f in wanted):
            self.violations.append(
                f"files.completeUploadExternal: files is not a JSON array of {{id, title}}: {args.get('files')!r:.200}"
            )
            raise ApiErrorAnswer("invalid_arguments")
        files = [self.files.get(str(f["id"])) for f in wanted]
        if any(f is None or f.content is None for f in files):
            raise ApiErrorAnswer("file_not_found")
        channel = self._channel_by_id(args["channel_id"]) if args.get("channel_id") else None
        if channel is not None and self.bot_user_id not in channel.members:
            raise ApiErrorAnswer("not_in_channel")  # chat:write.public lets a bot post messages, not share files
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and (channel is None or not any(m.ts == thread_ts for m in channel.messages)):
            self.violations.append(f"files.completeUploadExternal: thread_ts {thread_ts} matches no message in the channel")
        out = []
        for f, given in zip(files, wanted, strict=True):
            assert f is not None
            f.title = str(given.get("title") or f.name)
            out.append({"id": f.id, "title": f.title})
        if channel is not None:
            text = str(args.get("initial_comment") or "")
            msg = FakeMessage(
                self._next_ts(), channel.id, self.bot_user_id, text, None, thread_ts, files=[f.id for f in files if f]
            )
            msg.history = [{"text": text, "blocks": None}]
            channel.messages.append(msg)
            for f in files:
                assert f is not None
                f.shares.append(channel.id)
        return {"files": out}

    def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(str(args.get("file") or ""))
        if f is None or f.content is None:
            raise ApiErrorAnswer("file_not_found")
        shared = [self.channels[c] for c in dict.fromkeys(f.shares)]
        return {
            "file": {
                "id": f.id,
                "created": f.created,
                "timestamp": f.created,
                "name": f.name,
                "title": f.title or f.name,
                "size": len(f.content),
                "user": self.bot_user_id,
                "channels": [c.id for c in shared if c.id.startswith("C")],
                "groups": [c.id for c in shared if c.id.startswith("G")],
                "ims": [c.id for c in shared if c.id.startswith("D")],
            },
            "comments": [],
        }

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if group not in self.usergroups:
            raise ApiErrorAnswer("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _checked_view(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            self.violations.append(f"{method}: view is not an object with type modal/home: {view!r:.200}")
            raise ApiErrorAnswer("invalid_arguments")
        problems = check_blocks(method, view.get("blocks"), MAX_VIEW_BLOCKS)
        if problems:
            self.violations += problems
            raise ApiErrorAnswer("invalid_arguments")
        return view

    def _store_view(self, method: str, args: dict[str, Any], view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        if view_id is None:
            self._counter += 1
            view_id = f"V{self._counter:09d}"
        stored = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "app_id": APP_ID,
            "bot_id": self.bot_id,
            "hash": f"{self._next_ts()}.fakehash",
            "state": {"values": {}},
        }
        self.views[view_id] = stored
        self.opened_views.append({"method": method, "trigger_id": args.get("trigger_id"), "view_id": view_id, "view": view})
        return {"view": stored}

    def _require_trigger(self, method: str, args: dict[str, Any]) -> None:
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            self.violations.append(f"{method}: neither trigger_id nor interactivity_pointer sent")
            raise ApiErrorAnswer("invalid_trigger_id")

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require_trigger("views.open", args)
        return self._store_view("views.open", args, self._checked_view("views.open", args))

    def _m_views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require_trigger("views.push", args)
        return self._store_view("views.push", args, self._checked_view("views.push", args))

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view("views.update", args)
        view_id = args.get("view_id")
        if not view_id:
            external_id = args.get("external_id")
            view_id = next((k for k, v in self.views.items() if external_id and v.get("external_id") == external_id), None)
        if view_id not in self.views:
            raise ApiErrorAnswer("not_found")
        return self._store_view("views.update", args, view, view_id)


def _dm_id(user_id: str) -> str:
    return "D" + user_id[1:]


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


# --------------------------------------------------------------------------- HTTP


def _decode_args(raw: bytes, content_type: str, query: str) -> tuple[dict[str, Any], list[str]]:
    """Merge query-string and body arguments; JSON-decode block/view strings."""
    problems: list[str] = []
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if raw:
        if "application/json" in content_type:
            try:
                body = json.loads(raw)
            except ValueError:
                body, problems = {}, [f"body is not valid JSON: {raw[:200]!r}"]
            if isinstance(body, dict):
                args.update(body)
            else:
                problems.append("JSON body is not an object")
        else:
            args.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()})
    for key in JSON_ARGS:
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                problems.append(f"argument {key!r} is not valid JSON: {args[key][:200]!r}")
    return args, problems


class _Handler(BaseHTTPRequestHandler):
    owner: FakeSlack
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        fake = self.owner
        url = urlsplit(self.path)
        raw = self._body()
        try:
            if url.path.startswith("/api/"):
                method = url.path[len("/api/") :]
                args, problems = _decode_args(raw, self.headers.get("Content-Type", ""), url.query)
                if problems:
                    with fake._lock:
                        fake.violations += [f"{method}: {p}" for p in problems]
                fault = fake.draw_fault(method, args)
                if fault in ("429", "500", "503"):
                    self._send_fault(fault)
                    return
                status, headers, body = fake.handle_api(method, args, self.headers.get("Authorization"))
                if fault == "drop":  # carried out, then the connection goes before any answer
                    self.close_connection = True
                    return
                if fault == "late":  # carried out; the answer comes after the client stopped waiting
                    time.sleep(fake.late_by)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)
                    return
                self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)
            elif url.path.startswith("/upload/") and self.command == "POST":
                status, answer = fake.handle_upload(url.path, raw)
                self._send(status, answer, "text/plain")
            elif url.path.startswith("/response/") and self.command == "POST":
                self._send(fake.handle_response_url(url.path, raw), b"ok", "text/plain")
            else:
                with fake._lock:
                    fake.violations.append(f"{self.command} {url.path}: not a Slack endpoint")
                self._send(404, b"not found", "text/plain")
        except Exception as exc:  # never let a fake bug kill the server thread silently
            with fake._lock:
                fake.violations.append(f"FakeSlack internal error on {url.path}: {exc!r}")
            self._send(500, json.dumps({"ok": False, "error": "internal_error"}).encode(), "application/json")

    def _send_fault(self, kind: str) -> None:
        """Refused before anything was done: rate-limited, a crash, or a load balancer's error page."""
        if kind == "429":
            self._send(429, json.dumps({"ok": False, "error": "ratelimited"}).encode(), "application/json", {"Retry-After": "1"})
        elif kind == "500":
            self._send(500, json.dumps({"ok": False, "error": "internal_error"}).encode(), "application/json")
        else:
            page = b"<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>"
            self._send(503, page, "text/html")

    do_GET = _handle
    do_POST = _handle
