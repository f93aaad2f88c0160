"""manifest.yml against the official schema and against the code: the slash commands and bot events are
exactly what the Bolt app registers, and the bot scopes exactly what the Web API methods it calls need."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from bot.slack.app import build_bolt_app
from bot.slack.delivery import make_client
from bot.wiring import build
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "manifest.yml"
BOT = ROOT / "bot"
SHARED = Path(__file__).resolve().parents[2] / "shared"
SLACK_REF = SHARED / "slack"
SCHEMA = SLACK_REF / "manifest-schema" / "manifest.schema.1.0.0.json"
METHODS = SLACK_REF / "methods"

needs_shared = pytest.mark.skipif(
    not SLACK_REF.is_dir(),
    reason=f"Slack reference material not found at {SLACK_REF} (the manifest schema and methods/*.json live there)",
)

# The bot scope each event subscription needs (Slack's event reference; not in methods/*.json).
EVENT_SCOPES = {"app_mention": "app_mentions:read"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def manifest_commands(manifest: dict[str, Any]) -> set[str]:
    return {c["command"] for c in manifest["features"]["slash_commands"]}


def manifest_events(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["settings"]["event_subscriptions"]["bot_events"])


def manifest_scopes(manifest: dict[str, Any]) -> list[str]:
    return list(manifest["oauth_config"]["scopes"]["bot"])


# -- schema ----------------------------------------------------------------------------------------


@needs_shared
def test_manifest_validates_against_the_official_schema(manifest: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(manifest), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def test_manifest_basics(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"] == "im"
    assert manifest["display_information"].get("description")
    assert manifest["features"]["bot_user"]["display_name"] == "im"
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["settings"]["interactivity"]["is_enabled"] is True  # buttons and modals
    for command in manifest["features"]["slash_commands"]:
        assert command.get("usage_hint") and command.get("description")


def test_request_urls_all_point_at_the_slack_endpoint(manifest: dict[str, Any]) -> None:
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls += [manifest["settings"]["interactivity"]["request_url"], manifest["settings"]["event_subscriptions"]["request_url"]]
    for url in urls:
        assert url.startswith("https://") and url.endswith("/slack/events"), url
    assert len(set(urls)) == 1, f"one endpoint serves commands, interactivity and events: {urls}"


# -- commands and events against the real Bolt app ------------------------------------------------


def _closure(func: Any) -> dict[str, Any]:
    return dict(zip(func.__code__.co_freevars, (c.cell_contents for c in func.__closure__ or ())))


def registered(app: Any) -> tuple[set[str], set[str]]:
    """Slash commands and event types the app's listeners match on, read from Bolt's built-in matchers
    (`builtins.command(...)` / `builtins.event(...)` close over `command` / `event_type`)."""
    commands: set[str] = set()
    events: set[str] = set()
    for listener in app._listeners:
        for matcher in listener.matchers:
            func = getattr(matcher, "func", None)
            qualname = getattr(func, "__qualname__", "")
            if qualname == "command.<locals>.func":
                value = _closure(func)["command"]
                assert isinstance(value, str), f"slash command registered by pattern ({value!r}): list it in the manifest by hand"
                commands.add(value)
            elif qualname == "event.<locals>.func":
                value = _closure(func).get("event_type")
                assert isinstance(value, str), f"event registered by pattern or constraints ({value!r}): extend this test"
                events.add(value)
    return commands, events


@pytest.fixture
def bolt_app(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Any]:
    settings = make_settings(f"sqlite:///{tmp_path}/im.db", fake_slack)
    im = build(settings)
    try:
        yield build_bolt_app(im, make_client(settings))
    finally:
        im.store.dispose()


def test_commands_and_events_are_exactly_those_the_bolt_app_registers(manifest: dict[str, Any], bolt_app: Any) -> None:
    commands, events = registered(bolt_app)
    assert commands, "no command listener found: has slack_bolt changed how it stores matchers?"
    assert events, "no event listener found: has slack_bolt changed how it stores matchers?"
    assert manifest_commands(manifest) == commands
    assert manifest_events(manifest) == events


def _mention(event_type: str) -> bytes:
    now = f"{time.time():.6f}"
    event = {
        "type": event_type,
        "user": "U0BOB0001",
        "text": "<@U0BOT00001> help",
        "ts": now,
        "channel": "C0INCIDENT",
        "event_ts": now,
    }
    body = {
        "token": sr.VERIFICATION_TOKEN,
        "team_id": sr.DEFAULT_TEAM_ID,
        "api_app_id": sr.DEFAULT_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{event_type}{time.time_ns()}",
        "event_time": int(time.time()),
    }
    return json.dumps(body).encode()


def test_signed_requests_for_the_manifest_are_handled_and_others_are_not(
    manifest: dict[str, Any], tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """Over real HTTP, at the manifest's own request path: what the manifest declares is answered, a command
    or event it does not declare is not (Bolt answers 404 when no listener matches)."""
    path = urlparse(manifest["settings"]["event_subscriptions"]["request_url"]).path
    harness = AppHarness(make_settings(f"sqlite:///{tmp_path}/im.db", fake_slack), fake_slack, background=False)
    try:
        for command in manifest_commands(manifest):
            answer = harness.slack.post(sr.slash_command("help", command=command), path=path)
            assert answer.status_code == 200, (command, answer.status_code, answer.text)
        for event_type in manifest_events(manifest):
            answer = harness.slack.post(_mention(event_type), content_type="application/json", path=path)
            assert answer.status_code == 200, (event_type, answer.status_code, answer.text)

        assert "/incident" not in manifest_commands(manifest)
        answer = harness.slack.post(sr.slash_command("help", command="/incident"), path=path)
        assert answer.status_code == 404, answer.text
        for event_type in ("reaction_added", "member_joined_channel"):
            assert event_type not in manifest_events(manifest)
            answer = harness.slack.post(_mention(event_type), content_type="application/json", path=path)
            assert answer.status_code == 404, (event_type, answer.text)
    finally:
        harness.stop()


# -- scopes against the Web API methods the code calls --------------------------------------------

SLACK_IMPORT = re.compile(r"^\s*(from|import)\s+slack_(sdk|bolt)\b", re.M)
# self._call("chat.postMessage", ...), possibly with the method name on the next line
CALL_HELPER = re.compile(r"\b_call\(\s*[\"']([A-Za-z]+(?:\.[A-Za-z]+)+)[\"']")
# client.views_open(...), self.client.chat_postMessage(...)
CLIENT_METHOD = re.compile(r"\bclient\.([a-z]+(?:_[A-Za-z]+)+)\(")


def slack_sources() -> dict[Path, str]:
    """Every module under bot/ that imports slack_sdk or slack_bolt: the only ones holding a Slack client."""
    sources = {p: p.read_text() for p in sorted(BOT.rglob("*.py"))}
    return {p: text for p, text in sources.items() if SLACK_IMPORT.search(text)}


def called_methods() -> dict[str, list[str]]:
    """Web API method -> where it is called (file:line)."""
    found: dict[str, list[str]] = {}
    for path, text in slack_sources().items():
        for pattern, to_method in ((CALL_HELPER, lambda m: m), (CLIENT_METHOD, lambda m: m.replace("_", "."))):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.setdefault(to_method(match.group(1)), []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_the_method_scan_sees_every_way_the_code_calls_slack() -> None:
    """The regexes above are the whole story only if nothing calls Slack another way."""
    for path, text in slack_sources().items():
        assert ".api_call(" not in text, f"{path}: api_call() is not covered by the method scan"
        for match in re.finditer(r"getattr\(\s*self\.client\b", text):
            assert "def _call(" in text, f"{path}: dynamic client call outside _call()"
    methods = called_methods()
    assert {"chat.postMessage", "views.open", "users.info"} <= set(methods), methods  # the scan is not vacuous


def bot_scope_alternatives(method: str) -> list[str]:
    """methods/<method>.json lists the bot scopes that each allow the call (any one is enough)."""
    path = METHODS / f"{method}.json"
    assert path.is_file(), f"{method} is called but {path} does not exist (typo, or not a Web API method?)"
    scopes = json.loads(path.read_text()).get("scopes") or {}
    return [s["name"] for s in scopes.get("bot", [])]


def public_channels_only() -> bool:
    text = (BOT / "slack" / "delivery.py").read_text()
    create = re.search(r"_call\(\s*\"conversations\.create\"[^)]*\)", text)
    return create is not None and "is_private=False" in create.group(0)


def minimum_covers(needs: dict[str, set[str]]) -> list[set[str]]:
    """The smallest scope sets granting every method at least one of its alternatives."""
    needs = {m: alts for m, alts in needs.items() if alts}
    universe = sorted(set().union(*needs.values())) if needs else []
    for size in range(len(universe) + 1):
        covers = [set(c) for c in itertools.combinations(universe, size) if all(alts & set(c) for alts in needs.values())]
        if covers:
            return covers
    raise AssertionError(f"no scope set covers {needs}")


@needs_shared
def test_bot_scopes_are_exactly_what_the_called_methods_need(manifest: dict[str, Any]) -> None:
    scopes = manifest_scopes(manifest)
    assert len(scopes) == len(set(scopes)), f"duplicate scopes: {scopes}"
    methods = called_methods()

    needs: dict[str, set[str]] = {}
    for method in methods:
        alternatives = set(bot_scope_alternatives(method))
        if method == "conversations.open":
            # the one DM: the new owner is told directly (a 1:1 conversation, so im:write of the alternatives)
            assert "im:write" in alternatives
            alternatives = {"im:write"}
        elif method.startswith("conversations."):
            # groups:/im:/mpim: scopes are for private channels and DMs; the war room is created public
            # (a private incidents channel is the one exception: groups:history among the extras below).
            assert public_channels_only(), "conversations.create no longer passes is_private=False: revisit the scopes"
            alternatives = {s for s in alternatives if s.startswith("channels:")}
        needs[method] = alternatives
    assert needs["views.open"] == set(), "views.open needs no scope (the trigger_id authorises it)"

    covers = minimum_covers(needs)
    assert len(covers) == 1, f"several equally small scope sets fit, pick one and say why: {covers}"
    api_scopes = covers[0]

    # Documented extras: Slack's scope rules for these are not in methods/*.json.
    extras = set()
    delivery = (BOT / "slack" / "delivery.py").read_text()
    # chat:write.public: the root message is posted to IM_SLACK_CHANNEL (or the declaring channel), which the
    # bot joins only to look for its own message after an unknown outcome (conversations.join, in _join);
    # without this scope every ordinary chat.postMessage there would answer not_in_channel.
    assert "chat.postMessage" in methods and "self.settings.slack_channel" in delivery
    assert [where.split(":")[0] for where in methods.get("conversations.join", [])] == ["bot/slack/delivery.py"]
    assert "def _join(" in delivery, "the bot joins channels for another reason now: chat:write.public may be unneeded"
    extras.add("chat:write.public")
    # users:read.email is also what makes users.info include profile.email (stored for PagerDuty's From);
    # users.lookupByEmail needs it anyway (in api_scopes below).
    assert "users.info" in methods and re.search(r"profile\.get\(\s*\"email\"\s*\)", delivery)
    # groups:history: the bot reads back the incidents channel (conversations.history/replies, to find its own
    # message after a post with an unknown outcome), and that channel may be private.
    assert {"conversations.history", "conversations.replies"} <= set(methods)
    assert "groups:history" in bot_scope_alternatives("conversations.history")
    extras.add("groups:history")

    registered_events = manifest_events(manifest)
    unknown = registered_events - set(EVENT_SCOPES)
    assert not unknown, f"add the scope for {unknown} to EVENT_SCOPES"
    event_scopes = {EVENT_SCOPES[e] for e in registered_events}
    command_scopes = {"commands"} if manifest_commands(manifest) else set()

    expected = api_scopes | extras | event_scopes | command_scopes
    declared = set(scopes)
    assert not expected - declared, f"missing scopes: {sorted(expected - declared)} (methods: {methods})"
    assert not declared - expected, f"scopes nothing uses: {sorted(declared - expected)}"

    # For the reader: what it comes to today.
    assert api_scopes == {
        "chat:write",
        "channels:manage",
        "users:read",
        "channels:history",
        "channels:join",
        "channels:read",
        "users:read.email",
        "im:write",
        "usergroups:read",
        "files:write",
        "files:read",
    }
