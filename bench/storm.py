"""A storm of incidents against fakes that enforce PagerDuty's and Slack's real rate limits.

    .venv/bin/python -m bench.storm [--incidents 1000] [--window 60] [--slack-channels 1] [--workers 2]
                                    [--pd-budget 960/60] [--postgres postgresql://postgres@127.0.0.1:5432/test]

N incidents are declared, evenly spread over `--window` seconds, by signed Slack slash commands
(`/im declare`, from one of K channels in turn: with IM_SLACK_CHANNEL unset each incident is announced in
the channel it was declared from); each is then acknowledged and given a note by two more slash commands,
sent as soon as its declaration is answered, and resolved (`resolve -n`, a resolution note) by a third
once the fake PagerDuty has its incident: a responder resolves what they were paged for, and im rightly
does not page for an incident that ended before its page went out. Every incident pages PagerDuty
service "db". The terminal path is not used (a process per command would measure process start-up).

Layout: this process runs the senders and both fakes, enforcing the limits: the fake PagerDuty allows
`--pd-budget` requests per key in any window (960 a minute, 429 with ratelimit-* headers beyond it); the
fake Slack allows chat.postMessage about 1/s per channel (burst 3) and every other method its tier
(chat.update Tier 3: 50/min), 429 with Retry-After beyond. im runs `im serve`'s Runtime in a child
process with production pacing (IM_RATE_LIMITS empty: the vendors' limits; `pagerduty=` set to the
budget when it is not the real one).

Prints: PagerDuty calls per minute (peak in any 60 s window), 429s from each fake, Slack calls per
channel per second (peak in any 1 s window), the time from the first declaration until each fake shows
every final state, the lower bound the limits allow and the ratio; then the correctness counts (lost,
doubled). Exits 1 when a correctness count is not 0 or the storm did not finish. With --postgres a
database im_bench_<hex> is created for the run and dropped afterwards.

Lower bounds (printed with their inputs):
  * PagerDuty: C = 5 calls per incident are necessary (create, acknowledge, note, resolve, the resolution
    note; the note linking the Slack thread waits for Slack and is not counted); at most L
    of them in any W seconds means the first and the C-th are at least W x (ceil(C / L) - 1) apart,
    and the last resolve cannot precede the last declaration (D s after the first):
        T_pd >= max(D, W x (ceil(C / L) - 1))
  * Slack: per channel, 2 posts per incident are necessary (its root, and one thread reply holding its
    steps, coalesced) at r = 1/s after a burst of b = 3; chat.update is not necessary (a root posted
    late shows the final state):  T_slack >= max(D, (2 x N_c - b) / r) for the busiest channel's N_c.
    The chat.update calls im did make are printed with the time Tier 3 needs for them: with several
    channels roots go out before their incident's last step, and those updates become the bound.
`--pd-budget 192/60` scales PagerDuty's limit to a smaller storm (200 incidents against a fifth of the
budget have the shape of 1,000 against all of it).
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, Child, pct, serve_if_asked, serve_im_paging
from bench.slack_ack_latency import BOT_TOKEN, SIGNING_SECRET

PD_KEY = "pd-bench-key"
USER = "U0LAN0Z89"
SERVICE = "db"
NO_SPEC = Path("/nonexistent-shared")  # request/answer validation costs CPU the fakes share with the senders
SHARED = ROOT.parent / "shared"
PD_GOAL = 1.2
POLL = 0.25  # seconds between looks at the fakes' state
REF = re.compile(r"INC-(\d+)")
ECHO = re.compile(r"\*(Reopened|Acknowledged|Resolved)\b[^*]*\* — .*\(PagerDuty\)$")


def channel_id(k: int) -> str:
    return f"C0STORM{k:03d}"


# ====================================================================== child: im


def serve_im(database_url: str, slack_url: str, pd_url: str, rate_limits: str, workers: str) -> None:
    # no IM_SLACK_CHANNEL: each root goes to the channel its incident was declared from
    serve_im_paging(database_url, slack_url, pd_url, PD_KEY, IM_RATE_LIMITS=rate_limits, IM_WORKERS=workers)


# ====================================================================== this process: fakes, senders, figures


def start_fakes(channels: int, pd_budget: tuple[int, float]) -> tuple[Any, Any]:
    from tests.fakes.pagerduty_api import FakePagerDuty
    from tests.fakes.slack_api import FakeSlack, resolve_slack_dir
    from tests.fakes.slack_limits import SlackLimits

    limits = SlackLimits(methods_dir=resolve_slack_dir(SHARED).resolve() / "methods")  # tiers from Slack's reference
    slack = FakeSlack(bot_token=BOT_TOKEN, shared_dir=None, limits=limits).start()
    slack.add_user(USER, "alice", email="alice@example.com", real_name="Alice Doe")
    for k in range(channels):
        slack.add_channel(channel_id(k), f"storm-{k}", members=[USER, slack.bot_user_id])
    pd = FakePagerDuty(api_key=PD_KEY, shared_dir=NO_SPEC, budget=pd_budget)
    pd.add_user("PUOPS01", "Ops Robot", "ops@example.com")
    pd.add_user("PUALICE", "Alice Doe", "alice@example.com")
    pd.add_escalation_policy("PESC001", "Default", oncall_user_ids=["PUOPS01"])
    pd.add_service("PGEN001", "General Service", "PESC001")
    pd.add_service("PDAT001", "Database Service", "PESC001")
    pd.start()
    return slack, pd


@dataclass
class Storm:
    """What the senders did: incident number -> (channel, note text), and when declarations went out."""

    incidents: dict[int, tuple[str, str]] = field(default_factory=dict)
    declared_at: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    sent: threading.Event = field(default_factory=threading.Event)  # every slash command answered
    sent_after: float = 0.0  # seconds from the start
    answered: list[float] = field(default_factory=list)  # seconds each slash command took to be answered
    lock: threading.Lock = field(default_factory=threading.Lock)


class Paged:
    """A responder resolves an incident once PagerDuty has paged them (im does not page for an incident that
    ended before its page went out, by design): `then(number, resolve)` runs `resolve` on `pool` once the
    fake PagerDuty has incident `number`."""

    def __init__(self, pd: Any, pool: ThreadPoolExecutor) -> None:
        self.pd, self.pool = pd, pool
        self.waiting: dict[int, Callable[[], None]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def then(self, number: int, action: Callable[[], None]) -> None:
        with self.lock:
            self.waiting[number] = action

    def _watch(self) -> None:
        while not self.stop.wait(0.1):
            with self.pd._lock:
                keys = [incident.incident_key for incident in self.pd.incidents.values()]
            numbers = {int(found.group(1)) for key in keys if (found := REF.search(key or ""))}
            with self.lock:
                ready = [self.waiting.pop(number) for number in numbers & set(self.waiting)]
            for action in ready:
                self.pool.submit(action)

    def pending(self) -> int:
        with self.lock:
            return len(self.waiting)


def send_storm(storm: Storm, app_url: str, pd: Any, n: int, window: float, channels: int, senders: int, began: float) -> None:
    from tests.fakes import slack_requests as sr

    local = threading.local()

    def client() -> Any:
        if not hasattr(local, "client"):
            local.client = sr.SlackClient(app_url, SIGNING_SECRET, timeout=30)
        return local.client

    def post(text: str, channel: str) -> str | None:
        sent = time.monotonic()
        try:
            answer = client().post(sr.slash_command(text, user_id=USER, channel_id=channel, channel_name=channel.lower()))
        except Exception as exc:  # a timeout: counted, the figures say what became of it
            with storm.lock:
                storm.failures.append(f"{text[:30]}: {exc!r}")
            return None
        with storm.lock:
            storm.answered.append(time.monotonic() - sent)
            if answer.status_code != 200:
                storm.failures.append(f"{text[:30]}: HTTP {answer.status_code}")
                return None
        return answer.text

    def one(i: int) -> None:
        channel = channel_id(i % channels)
        delay = began + i * window / n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with storm.lock:
            storm.declared_at.append(time.monotonic())
        answer = post(f'declare --sev SEV-3 --title "storm {i}" --service {SERVICE}', channel)
        found = REF.search(answer or "")
        if found is None:
            with storm.lock:
                storm.failures.append(f"declare storm {i}: no incident number in the answer: {(answer or '')[:80]}")
            return
        number = int(found.group(1))
        note = f"storm note {number} {uuid.uuid4().hex[:6]}"
        with storm.lock:
            storm.incidents[number] = (channel, note)
        post(f"ack -i INC-{number}", channel)
        post(f'note -i INC-{number} "{note}"', channel)

        def resolve() -> None:
            post(f'resolve -i INC-{number} -n "storm fix {number}"', channel)

        paged.then(number, resolve)

    with ThreadPoolExecutor(senders) as pool, ThreadPoolExecutor(4) as resolvers:
        paged = Paged(pd, resolvers)
        list(pool.map(one, range(n)))
        while paged.pending():
            time.sleep(0.2)
        time.sleep(0.3)  # the last page seen: its resolve submitted
        paged.stop.set()
    storm.sent_after = time.monotonic() - began
    storm.sent.set()


# -------------------------------------------------------------------- final states, as each fake shows them


def pd_state(pd: Any, storm: Storm) -> tuple[int, int, int]:
    """(incidents showing their final state, incident keys paged more than once, notes added twice)."""
    with pd._lock:
        by_key: dict[str, list[Any]] = defaultdict(list)
        for incident in pd.incidents.values():
            by_key[incident.incident_key].append(incident)
        final = doubled = twice = 0
        for number, (_, note) in list(storm.incidents.items()):  # senders still add while the storm runs
            found = by_key.get(f"im:prod:INC-{number}:{SERVICE}", [])
            doubled += len(found) > 1
            notes = sum(1 for i in found for n in i.notes if n.content.startswith(note))
            fixes = sum(1 for i in found for n in i.notes if f"storm fix {number}" in n.content)
            twice += notes > 1 or fixes > 1
            final += bool(found) and all(i.status == "resolved" for i in found) and notes >= 1 and fixes >= 1
    return final, doubled, twice


@dataclass
class SlackShown:
    final: int = 0  # incidents whose root says resolved and whose thread holds each of its steps
    roots_doubled: int = 0
    roots_missing: int = 0
    steps_doubled: int = 0  # a step in more than one reply
    steps_missing: int = 0
    out_of_order: int = 0  # channels whose roots are not in declaration order
    not_resolved: int = 0  # roots (im's own status) saying other than resolved, PagerDuty's final status
    echoes: int = 0  # status steps PagerDuty's side made in threads (a stale PagerDuty status applied back)
    echo_lines: list[str] = field(default_factory=list)


def step_marks(number: int, note: str) -> dict[str, re.Pattern[str]]:
    return {
        "acknowledged": re.compile(re.escape(f"*Acknowledged* — <@{USER}>")),
        "note": re.compile(re.escape(note)),
        "resolved": re.compile(re.escape(f"*Resolved: storm fix {number}*")),
    }


def slack_state(slack: Any, storm: Storm, channels: int) -> SlackShown:
    shown = SlackShown()
    with slack._lock:
        roots: dict[int, list[Any]] = defaultdict(list)
        replies: dict[tuple[str, str], list[str]] = defaultdict(list)
        for k in range(channels):
            numbers = []
            for message in slack.channels[channel_id(k)].messages:
                if message.thread_ts in (None, message.ts):
                    ref = REF.match(message.text)
                    if ref:
                        roots[int(ref.group(1))].append(message)
                        numbers.append(int(ref.group(1)))
                else:
                    replies[(message.channel, message.thread_ts)].append(message.text)
            shown.out_of_order += numbers != sorted(numbers)
    for number, (_, note) in list(storm.incidents.items()):  # senders still add while the storm runs
        found = roots.get(number, [])
        shown.roots_doubled += len(found) > 1
        shown.roots_missing += not found
        if not found:
            continue
        texts = replies.get((found[0].channel, found[0].ts), [])
        complete = found[0].text.endswith("(resolved)")
        shown.not_resolved += not complete
        echoes = [line for text in texts for line in text.split("\n") if ECHO.search(line)]
        shown.echoes += len(echoes)
        shown.echo_lines += echoes[: 2 - len(shown.echo_lines)]
        for pattern in step_marks(number, note).values():
            times = sum(1 for text in texts for line in text.split("\n") if pattern.search(line))
            shown.steps_doubled += times > 1
            complete = complete and times >= 1
        shown.final += complete
    return shown


# -------------------------------------------------------------------- figures


def peak_in_window(times: Iterable[float], window: float) -> int:
    """The most of `times` in any `window` seconds (windows starting at one of them)."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, at + window) - n for n, at in enumerate(ordered)), default=0)


def per_bucket(times: Iterable[float], start: float, width: float) -> list[int]:
    """How many of `times` fell in each `width`-second bucket from `start`."""
    counts: Counter[int] = Counter(int((at - start) // width) for at in times)
    return [counts[b] for b in range(max(counts, default=-1) + 1)]


def outbox_tries(database_url: str) -> dict[str, tuple[int, int]]:
    """Jobs and tries by destination and kind, from im's database (waiting for a paced turn is no try)."""
    from sqlalchemy import create_engine, text

    from bot.store import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT destination, kind, COUNT(*), SUM(attempts) FROM outbox_job GROUP BY destination, kind")
            ).all()
    finally:
        engine.dispose()
    return {f"{row[0]} {row[1]}": (int(row[2]), int(row[3] or 0)) for row in rows}


def parse_budget(text: str) -> tuple[int, float]:
    count, _, seconds = text.partition("/")
    return int(count), float(seconds or 60)


def run(label: str, database_url: str, args: argparse.Namespace) -> bool:
    from tests.fakes.slack_limits import SlackLimits

    budget = parse_budget(args.pd_budget)
    rate_limits = "" if budget == (960, 60.0) else f"pagerduty={budget[0]}/{int(budget[1])}s"
    slack, pd = start_fakes(args.slack_channels, budget)
    child = Child("bench.storm", "im", database_url, slack.base_url, pd.base_url, rate_limits, str(args.workers))
    n, k = args.incidents, args.slack_channels
    try:
        began = time.monotonic()
        done: dict[str, float] = {}
        stop = threading.Event()

        storm = Storm()

        def watch() -> None:
            while not stop.wait(POLL):
                if not storm.sent.is_set():
                    continue  # nothing can be final before the last resolve is answered
                if "pd" not in done and pd_state(pd, storm)[0] == len(storm.incidents):
                    done["pd"] = time.monotonic() - began
                if "slack" not in done and slack_state(slack, storm, k).final == len(storm.incidents):
                    done["slack"] = time.monotonic() - began
                if len(done) == 2 or time.monotonic() - began > args.timeout:
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        sender = threading.Thread(target=send_storm, args=(storm, child.url, pd, n, args.window, k, args.senders, began))
        sender.start()
        while watcher.is_alive():
            watcher.join(10)
            with storm.lock:
                numbers = len(storm.incidents)
            print(
                f"  .. {time.monotonic() - began:5.0f} s: {numbers} declared, PagerDuty {pd_state(pd, storm)[0]} final, "
                f"Slack {slack_state(slack, storm, k).final} final",
                flush=True,
            )
        sender.join()
        sent = storm.sent_after
        stop.set()
        time.sleep(3)  # calls still under way (root updates) land before the counts are taken
    finally:
        child.stop()
        slack.stop()
        pd.stop()

    # ---- figures
    with pd._lock:
        pd_times = [r.at for r in pd.requests if r.at is not None and r.status != 429]
        pd_429 = sum(1 for r in pd.requests if r.status == 429)
        pd_429_times = [r.at for r in pd.requests if r.at is not None and r.status == 429]
        pd_kinds = Counter(f"{r.method} {r.template}" for r in pd.requests if r.status != 429)
    with slack._lock:
        calls = list(slack.calls)
        refused = list(slack.rate_limited)
    per_channel: dict[str, list[float]] = defaultdict(list)
    posts_per_channel: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        channel = call.args.get("channel")
        if channel and call.at is not None:
            per_channel[channel].append(call.at)
            if call.method == "chat.postMessage":
                posts_per_channel[channel].append(call.at)
    updates = [c.at for c in calls if c.method == "chat.update" and c.at is not None]
    slack_kinds = Counter(c.method for c in calls)
    limits = SlackLimits()

    pd_final, pd_doubled, notes_twice = pd_state(pd, storm)
    shown = slack_state(slack, storm, k)
    declared = sorted(storm.declared_at)
    span = declared[-1] - declared[0] if declared else 0.0
    got = len(storm.incidents)
    calls_needed = 5 * got
    pd_bound = max(span, budget[1] * (math.ceil(calls_needed / budget[0]) - 1))
    busiest = max(Counter(channel for channel, _ in storm.incidents.values()).values(), default=0)
    slack_bound = max(span, (2 * busiest - limits.post_burst) / limits.post_per_second)
    lost = (n - got) + (got - pd_final) + (got - shown.final)

    def ratio(key: str, bound: float) -> str:
        return f"{done[key]:.1f} s, lower bound {bound:.1f} s, ratio {done[key] / bound:.2f}x" if key in done else "NOT finished"

    pd_verdict = "met" if "pd" in done and done["pd"] / pd_bound <= PD_GOAL else "NOT met"
    print(f"\n[{label}] storm: {n} incidents declared over {span:.1f} s (goal {args.window:.0f} s) by signed Slack slash")
    print(f"  commands from {k} channel(s), each then acknowledged, noted and resolved by slash commands")
    print(
        f"  sent in {sent:.1f} s; slash command answers p50 {pct(storm.answered, 50):.0f} ms, p99 {pct(storm.answered, 99):.0f} ms"
    )
    print(f"  PagerDuty (budget {budget[0]} per {budget[1]:.0f} s per key)")
    print(
        f"    calls in any 60 s window, peak        {peak_in_window(pd_times, 60.0)}   (any {budget[1]:.0f} s: {peak_in_window(pd_times, budget[1])})"
    )
    print(f"    calls served / 429s received          {len(pd_times)} / {pd_429}")
    print(f"    calls per 20 s from the start         {per_bucket(pd_times, began, 20.0)}")
    if pd_429_times:
        print(f"    429s per 20 s from the start          {per_bucket(pd_429_times, began, 20.0)}")
    print(f"    calls by kind                         {dict(pd_kinds)}")
    print(f"    every final state shown after         {ratio('pd', pd_bound)}  (goal <= {PD_GOAL}x: {pd_verdict})")
    print(
        f"      bound = max(D, W x (ceil(C / L) - 1)) = max({span:.1f}, {budget[1]:.0f} x (ceil({calls_needed} / {budget[0]}) - 1))"
    )
    print(
        f"  Slack (chat.postMessage {limits.post_per_second:.0f}/s per channel, burst {limits.post_burst:.0f}; chat.update Tier 3, 50/min)"
    )
    print(
        f"    chat.postMessage per channel per s    peak {max((peak_in_window(t, 1.0) for t in posts_per_channel.values()), default=0)}"
    )
    print(
        f"    all calls per channel per s           peak {max((peak_in_window(t, 1.0) for t in per_channel.values()), default=0)}"
    )
    print(f"    chat.update in any 60 s window        peak {peak_in_window(updates, 60.0)}")
    print(
        f"    calls made / 429s received            {len(calls)} / {len(refused)}  (429s by method: {dict(Counter(c.method for c in refused))})"
    )
    posts = [at for times in posts_per_channel.values() for at in times]
    print(f"    chat.postMessage per 20 s             {per_bucket(posts, began, 20.0)}")
    print(f"    calls by method                       {dict(slack_kinds)}")
    update_bound = max(0.0, len(updates) - max(2.0, round(50 * limits.tier_burst_share))) / (50 / 60)
    print(f"    every final state shown after         {ratio('slack', slack_bound)}")
    print(
        f"      bound = max(D, (2 x N_c - b) / r) = max({span:.1f}, (2 x {busiest} - {limits.post_burst:.0f}) / {limits.post_per_second:.0f})"
    )
    print(f"      (the {len(updates)} chat.update im made take {update_bound:.0f} s at least at Tier 3; a root posted")
    print("       before its incident's last step needs one, so with more channels they bound the time)")
    tries = outbox_tries(database_url)
    print("  im's outbox: jobs / tries (waiting for a paced turn is no try)")
    print(f"    {', '.join(f'{kind} {jobs}/{n}' for kind, (jobs, n) in sorted(tries.items()))}")
    print("  correctness (each should be 0)")
    print(
        f"    incidents lost (not declared / not final in PagerDuty / not final in Slack)  {n - got} / {got - pd_final} / {got - shown.final}"
    )
    print(f"    PagerDuty incidents doubled (one per incident+service)   {pd_doubled}")
    print(f"    PagerDuty notes doubled                                 {notes_twice}")
    print(f"    Slack roots missing / doubled                           {shown.roots_missing} / {shown.roots_doubled}")
    print(f"    final statuses unequal (im's root not resolved)          {shown.not_resolved}")
    print(f"    status steps made by PagerDuty's side (stale echoes)    {shown.echoes}  {shown.echo_lines}")
    print(f"    steps in more than one thread reply                     {shown.steps_doubled}")
    print(f"    channels whose roots are out of declaration order       {shown.out_of_order}")
    print(f"    slash commands failed                                   {len(storm.failures)}  {storm.failures[:3]}")
    print(f"    API description violations (Slack)                      {len(slack.violations)}")
    broken = (
        lost + pd_doubled + notes_twice + shown.roots_doubled + shown.steps_doubled + shown.out_of_order + len(storm.failures)
    )
    return broken == 0 and len(done) == 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=1000, help="incidents declared (1000)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds the declarations are spread over (60)")
    parser.add_argument("--slack-channels", type=int, default=1, help="channels the incidents are declared from (1)")
    parser.add_argument("--pd-budget", default="960/60", help="PagerDuty requests per seconds per key (960/60)")
    parser.add_argument("--workers", type=int, default=2, help="im's outbox worker threads, IM_WORKERS (2, its default)")
    parser.add_argument("--senders", type=int, default=8, help="client threads sending slash commands (8)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds (3600)")
    parser.add_argument(
        "--postgres", metavar="URL", help="run on PostgreSQL instead of SQLite (a database is created and dropped)"
    )
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    serve_if_asked(args.serve, {"im": serve_im})

    sys.path.insert(0, str(ROOT))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; im in a child process, fakes and senders here", flush=True)
    from bench.faults import database

    label = "postgresql" if args.postgres else "sqlite"
    with tempfile.TemporaryDirectory(prefix="im-bench-storm-") as tmpdir, database(args.postgres, Path(tmpdir)) as url:
        ok = run(label, url, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
