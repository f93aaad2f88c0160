"""Slack event retries and many simultaneous requests, over real HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import select

from bot.domain.models import Incident, TimelineEvent
from bot.slack import render
from tests.harness import AppHarness


def mention(app: AppHarness, text: str, *, event_id: str, thread_ts: str | None, retry: int | None = None):  # type: ignore[no-untyped-def]
    event = {
        "type": "app_mention",
        "user": "U0BOB0001",
        "text": f"<@U0BOT00001> {text}",
        "ts": f"{time.time():.6f}",
        "channel": "C0INCIDENT",
        "event_ts": f"{time.time():.6f}",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    body = {
        "token": "verification_token",
        "team_id": "T0001",
        "api_app_id": "A0APP00001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
    }
    headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
    return app.slack.post(json.dumps(body).encode(), content_type="application/json", headers=headers)


def test_mention_in_thread_acts_once_even_when_slack_retries(app: AppHarness) -> None:
    app.command('declare --sev SEV-3 --title "Search slow" --service search')
    app.wait_idle()
    root = app.fake.messages("C0INCIDENT")[0]
    assert mention(app, "note rebuilt the index", event_id="Ev0001", thread_ts=root.ts).status_code == 200
    assert mention(app, "note rebuilt the index", event_id="Ev0001", thread_ts=root.ts, retry=1).status_code == 200
    assert mention(app, "note rebuilt the index", event_id="Ev0001", thread_ts=root.ts, retry=2).status_code == 200
    app.wait_idle()
    _, events = app.im.incidents.timeline(1)
    assert [e.text for e in events if e.kind == "note"] == ["rebuilt the index"]
    notes = [r for r in app.fake.replies("C0INCIDENT", root.ts) if "rebuilt the index" in r.text]
    assert len(notes) == 1
    assert len(app.fake.ephemerals) == 1 and "Note added to INC-1" in app.fake.ephemerals[0]["text"]
    # a mention outside any incident thread explains what is missing
    mention(app, "ack", event_id="Ev0002", thread_ts=None)
    app.wait_idle()
    assert "--incident is required" in app.fake.ephemerals[-1]["text"]
    assert app.fake.violations == []


def test_many_simultaneous_commands_and_clicks(app: AppHarness) -> None:
    n = 30
    with ThreadPoolExecutor(max_workers=12) as pool:
        declares = list(
            pool.map(
                lambda i: app.command(f'declare --sev SEV-3 --title "load {i}" --service svc{i % 3}', user_id="U0BOB0001"),
                range(n),
            )
        )
    assert all(r.status_code == 200 for r in declares), [r.text for r in declares if r.status_code != 200]
    texts = [r.json()["text"] for r in declares]
    assert all("declared" in t for t in texts), [t for t in texts if "declared" not in t]
    refs = sorted(int(t.split()[0].removeprefix("INC-")) for t in texts)
    assert refs == list(range(1, n + 1)), "every declare got its own number"

    with ThreadPoolExecutor(max_workers=12) as pool:
        clicks = list(pool.map(lambda i: app.click(render.ACK_ACTION, f"INC-{i}"), range(1, n + 1)))
        notes = list(pool.map(lambda i: app.command(f"note --incident INC-{1 + i % 5} note {i}"), range(n)))
    assert all(r.status_code == 200 for r in clicks + notes)
    assert all("Note added" in r.json()["text"] for r in notes), [r.text for r in notes]
    with app.im.store.read() as session:
        statuses = {i.status for i in session.exec(select(Incident))}
        note_count = len(session.exec(select(TimelineEvent).where(TimelineEvent.kind == "note")).all())
    assert statuses == {"mitigated"} and note_count == n
    app.wait_idle(timeout=60)
    assert len(app.fake.messages("C0INCIDENT")) == n
    assert app.fake.violations == []
