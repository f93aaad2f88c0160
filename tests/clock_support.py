"""What the clock tests share: the served app driven at frozen times (slash commands signed with the
real time, which Bolt checks), the outbox delivered by the test, and replicas ticking at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import freezegun.api
from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory

from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.scheduler import Clocks
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeMessage, FakeSlack
from tests.harness import AppHarness, make_settings

CHANNEL = "C0INCIDENT"
OWNER = "U0BOB0001"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = Actor(Origin.SLACK, "U0LAN0Z89", "alice")

Clock = FrozenDateTimeFactory | StepTickTimeFactory


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def date(when: datetime) -> str:
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def serve(database_url: str, fake: FakeSlack, **clock_settings: str) -> AppHarness:
    settings = make_settings(database_url, fake, IM_SLACK_CHANNEL=CHANNEL, **clock_settings)
    return AppHarness(settings, fake, background=False)  # the test delivers the outbox itself, at frozen times


def signed(app: AppHarness, body: bytes) -> None:
    """A signed Slack request, signed with the real time: Bolt checks it against the real clock."""
    assert app.slack.post(body, timestamp=int(freezegun.api.real_time())).status_code == 200
    app.runtime.dispatcher.drain()


def command(app: AppHarness, text: str) -> None:
    signed(app, sr.slash_command(text))


def race(replicas: list[Clocks]) -> list[str]:
    """Every replica ticks at once (plain threads: freezegun keeps real time inside concurrent.futures)."""
    barrier = threading.Barrier(len(replicas))
    done: list[list[str]] = [[] for _ in replicas]

    def run(i: int) -> None:
        barrier.wait()
        done[i] = replicas[i].tick()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(line for lines in done for line in lines)


def tick_at(clock: Clock, seconds: float, *replicas: Clocks) -> list[str]:
    clock.move_to(at(seconds))
    return race(list(replicas))


def root(fake: FakeSlack, ref: str = "INC-1") -> FakeMessage:
    [message] = [m for m in fake.messages(CHANNEL) if m.text.startswith(f"{ref} ")]
    return message


def clock_line(fake: FakeSlack) -> str:
    """The root message's clock line."""
    blocks: list[dict[str, Any]] = root(fake).blocks or []
    [clock] = [b for b in blocks if b.get("block_id") == "sla_clock"]
    text: str = clock["elements"][0]["text"]
    return text


def replies(fake: FakeSlack, needle: str, ref: str = "INC-1") -> list[FakeMessage]:
    return [r for r in fake.replies(CHANNEL, root(fake, ref).ts) if needle in r.text]
