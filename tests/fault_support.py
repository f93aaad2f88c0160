"""Fault-injection scenarios, shared by tests/test_faults.py (small N, in CI) and bench/faults.py (N=1,000).

Each scenario drives the real entry points (signed Slack requests into the served app, the incident service
the terminal uses, signed PagerDuty webhooks) while both fakes fail a seeded share of calls, turns the faults
off, waits for quiet (no job pending), and measures the invariants into a `Figures`:

* one PagerDuty incident per incident_key, so one per (incident, service) and reopen generation;
* PagerDuty's status equals im's under `TO_PAGERDUTY_STATUS`, and the link shows PagerDuty's status;
  a PagerDuty incident of ours that is no longer linked (an earlier generation) is resolved;
* one Slack root per incident (marker `slack-root:N`), and its thread shows each timeline step after the
  declaration once (markers `slack-reply:<event id>`; a coalesced reply shows its lead's planned steps),
  none doubled, none missing;
* no 5xx from our endpoints, no dead-lettered job.

A test asserts `figures.broken() == []`; the bench prints the figures.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bot.app import Im
from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob
from bot.slack.delivery_batch import plan_step, reply_step
from bot.wiring import build
from integrations.pagerduty import mapping
from integrations.pagerduty.plugin import registry_for
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import PagerDutyLink
from tests.fakes import slack_requests as sr
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import BOT_USER_ID, FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, AppHarness, make_settings, reserve_socket, socket_url
from tests.pd_support import SECRET_KEY, connector_config, pagerduty_account

CHANNEL = "C0INCIDENT"
CONNECTOR = "prod"
SLACK_USERS = ("U0LAN0Z89", "U0BOB0001")
SERVICES = ("db", "api")
# How many incidents the CI suite runs (the bench passes its own N).
INCIDENTS = int(os.environ.get("FAULT_SUITE_INCIDENTS", "20"))
SEED = int(os.environ.get("FAULT_SUITE_SEED", "20261124"))
SHARE = 0.3  # of calls that meet a fault, on both fakes
SLACK_TIMEOUT, SLACK_LATE = 0.5, 1.0  # the client's timeout, and how late a "late" answer comes
PD_TIMEOUT, PD_LATE = "1s", 1.4
# What im calls on Slack while delivering (Bolt's one auth.test at start-up is left alone).
SLACK_METHODS = (
    "chat.postMessage",
    "chat.update",
    "users.info",
    "conversations.history",
    "conversations.replies",
    "conversations.join",
)


# -- the two fakes -------------------------------------------------------------------------------
def slack_workspace() -> FakeSlack:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start()
    fake.add_channel(CHANNEL, "incidents", members=[SLACK_USERS[0], BOT_USER_ID])
    fake.add_user(SLACK_USERS[0], "alice", email="alice@example.com", real_name="Alice Doe")
    fake.add_user(SLACK_USERS[1], "bob", email="bob@example.com", real_name="Bob Roe")
    return fake


def faults_on(slack: FakeSlack, pd: FakePagerDuty, seed: int, share: float = SHARE) -> None:
    slack.inject_faults(seed=seed, rate=share, methods=set(SLACK_METHODS), late_by=SLACK_LATE)
    pd.fail_share(share, seed=seed + 1, late_by=PD_LATE)


def faults_off(slack: FakeSlack, pd: FakePagerDuty) -> None:
    slack.inject_faults(seed=0, rate=0)
    pd.fail_share(0, seed=0)


def im_env(database_url: str, slack: FakeSlack, public_url: str, workers: int = 4) -> dict[str, str]:
    """The environment of `im` (served, or `python -m bot.main serve`) in these scenarios."""
    return {
        "IM_DATABASE_URL": database_url,
        "IM_SECRET_KEY": SECRET_KEY,
        "IM_PUBLIC_URL": public_url,
        "IM_SLACK_CHANNEL": CHANNEL,
        "IM_SLACK_TIMEOUT_SECONDS": str(SLACK_TIMEOUT),
        "IM_WORKERS": str(workers),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        # production pacing by default, as `im serve` runs; bench.faults sets IM_FAULTS_RATE_LIMITS=off: the
        # fakes enforce no limits here (their 429s are drawn faults) and one channel at about a post a
        # second would make a 1000-incident run wait out Slack rather than recover
        "IM_RATE_LIMITS": os.environ.get("IM_FAULTS_RATE_LIMITS", ""),
    }


def add_connector(im: Im, pd: FakePagerDuty, *, webhook: bool = False) -> ConnectorRegistry:
    registry = registry_for(im)
    config = connector_config(pd)
    config["request_timeout"] = PD_TIMEOUT
    registry.add(CONNECTOR, "pagerduty", config)
    if webhook:
        registry.set_webhook(CONNECTOR, subscription_id=None, secret_list=["whsec-faults"], enabled=True)
    return registry


class World:
    """The app served in this process (uvicorn in a thread, its outbox workers running), both fakes, the
    PagerDuty connector, and what our endpoints answered."""

    def __init__(self, database_url: str, slack: FakeSlack, pd: FakePagerDuty, *, webhook: bool = False) -> None:
        sock = reserve_socket()
        self.url = socket_url(sock)
        self.slack, self.pd = slack, pd
        env = im_env(database_url, slack, self.url)
        settings = make_settings(database_url, slack, **{k: v for k, v in env.items() if k.startswith("IM_")})
        self.app = AppHarness(settings, slack, sock=sock)
        self.im = self.app.im
        self.registry = add_connector(self.im, pd, webhook=webhook)

    def stop(self) -> None:
        self.app.stop()


# -- the mixed workload --------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    n: int  # the incident's place in the plan (its declare op comes first)
    verb: str  # declare, note, ack, resolve, reopen
    via: str  # slack or terminal


def plan(incidents: int, seed: int) -> list[Op]:
    """Each incident's life (declare; notes, an ack, a resolve, now and then a reopen), from Slack or the
    terminal, the lives interleaved at random, each in its own order."""
    rng = random.Random(seed)
    lives: list[list[Op]] = []
    for n in range(incidents):
        verbs = ["declare", "note"]
        verbs += rng.choice([["ack", "note"], ["note", "ack"], ["ack"]])
        if rng.random() < 0.8:
            verbs.append("resolve")
            if rng.random() < 0.2:
                verbs += ["reopen", rng.choice(["ack", "resolve", "note"])]
        lives.append([Op(n, verb, rng.choice(["slack", "terminal"])) for verb in verbs])
    ops: list[Op] = []
    while lives:
        life = rng.choice(lives)
        ops.append(life.pop(0))
        if not life:
            lives.remove(life)
    return ops


class Driver:
    """Plays a plan: Slack ops as signed slash commands to `url`, terminal ops through the incident
    service (as `im` in a terminal does), and counts what our endpoint answered."""

    def __init__(self, im: Im, url: str, seed: int) -> None:
        self.im = im
        self.client = sr.SlackClient(url, SIGNING_SECRET)
        self.rng = random.Random(seed)
        self.ids: dict[int, int] = {}  # plan place -> incident id
        self.answers: Counter[int] = Counter()
        self.refused: list[str] = []  # commands im turned down (a bug in the plan if not empty)

    def close(self) -> None:
        self.client.close()

    def point_at(self, url: str) -> None:
        """The served app moved (a restarted process): send from now on to `url`."""
        self.client.close()
        self.client = sr.SlackClient(url, SIGNING_SECRET)

    def play(self, ops: list[Op]) -> None:
        for op in ops:
            if op.verb == "declare" or op.n in self.ids:
                self._slack(op) if op.via == "slack" else self._terminal(op)

    def _slack(self, op: Op) -> None:
        user = self.rng.choice(SLACK_USERS)
        if op.verb == "declare":
            services = ",".join(self._services())
            text = f'declare --sev {self.rng.choice(["SEV-3", "SEV-4"])} --title "fault {op.n}" --service {services}'
        else:
            ref = f"--incident INC-{self.ids[op.n]}"
            text = {
                "note": f"note {ref} look {op.n}.{self.rng.randint(0, 999)} <!channel> & co",
                "ack": f"ack {ref}",
                "resolve": f'resolve {ref} --note "fixed {op.n}"',
                "reopen": f'reopen {ref} --note "back {op.n}"',
            }[op.verb]
        answer = self.client.post(sr.slash_command(text, user_id=user))
        self.answers[answer.status_code] += 1
        said = answer.json().get("text", "") if answer.status_code == 200 else answer.text
        if op.verb == "declare":
            found = re.search(r"INC-(\d+) declared", said)
            if found is None:
                self.refused.append(f"{text!r}: {answer.status_code} {said[:200]}")
                return
            self.ids[op.n] = int(found.group(1))

    def _terminal(self, op: Op) -> None:
        actor = Actor(Origin.CLI, "carol", "Carol Lin")
        incidents = self.im.incidents
        if op.verb == "declare":
            sev = self.rng.choice(["SEV-3", "SEV-4"])
            incident = incidents.declare(title=f"fault {op.n}", severity=sev, services=self._services(), actor=actor)
            assert incident is not None
            self.ids[op.n] = incident.number
        elif op.verb == "note":
            incidents.add_note(self.ids[op.n], f"terminal look {op.n} <@U0BOB0001>", actor=actor)
        else:
            verb = {"ack": "acknowledge"}.get(op.verb, op.verb)
            note = {"resolve": f"fixed {op.n}", "reopen": f"back {op.n}"}.get(verb)
            incidents.transition(self.ids[op.n], verb, actor=actor, note=note)

    def _services(self) -> list[str]:
        return list(SERVICES) if self.rng.random() < 0.2 else [self.rng.choice(SERVICES)]


# -- quiet ----------------------------------------------------------------------------------------
def wait_tried(im: Im, timeout: float) -> None:
    """Until every job written so far has been tried at least once (under the faults still on), or `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with im.store.read() as session:
            untried = session.exec(
                select(OutboxJob).where(OutboxJob.status == JobStatus.PENDING, OutboxJob.attempts == 0).limit(1)
            ).first()
        if untried is None:
            return
        time.sleep(0.1)


def wait_quiet(im: Im, timeout: float) -> float | None:
    """Seconds until no job is pending or running (the workers deliver in their own threads or process);
    None when that did not happen within `timeout` (the figures then say how many jobs still wait)."""
    started = time.monotonic()
    while time.monotonic() - started <= timeout:
        with im.store.read() as session:
            if outbox.waiting_count(session) == 0:
                return time.monotonic() - started
        time.sleep(0.1)
    return None


# -- the invariants -------------------------------------------------------------------------------
def api_violations(*fakes: FakeSlack | FakePagerDuty) -> list[str]:
    """What the fakes found against the API descriptions. An answer written to a client that gave up waiting
    (its timeout, a killed process) meets a closed socket (a broken pipe, or a reset when the client's close
    came first): that is a fault playing out, not a violation. Under load a call the fake did not fault can
    outlast the client's timeout too."""
    found: list[str] = []
    for fake in fakes:
        found += fake.violations
        found += getattr(fake, "response_violations", [])
    return [v for v in found if "BrokenPipeError" not in v and "ConnectionResetError" not in v]


@dataclass
class Figures:
    scenario: str
    incidents: int = 0
    pd_duplicates: int = 0  # PagerDuty incidents beyond one per incident_key
    root_duplicates: int = 0  # Slack roots beyond one per incident
    reply_duplicates: int = 0  # thread replies beyond one per timeline step
    missing: int = 0  # roots or replies never posted
    mismatches: int = 0  # PagerDuty's status vs im's, or the link's view of it
    five_xx: int = 0
    dead_letters: int = 0
    time_to_quiet: float | None = 0.0  # None: not quiet when the wait ended
    waiting: int = 0  # jobs still pending or running then
    calls: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def broken(self) -> list[str]:
        counts = (
            "waiting",
            "pd_duplicates",
            "root_duplicates",
            "reply_duplicates",
            "missing",
            "mismatches",
            "five_xx",
            "dead_letters",
        )
        return [f"{name}={getattr(self, name)}" for name in counts if getattr(self, name)] + self.details[:20]

    def report(self) -> str:
        lines = [
            f"== {self.scenario}: {self.incidents} incidents",
            f"  duplicates: PagerDuty {self.pd_duplicates}, Slack roots {self.root_duplicates}, replies {self.reply_duplicates}",
            f"  missing posts: {self.missing}   status mismatches: {self.mismatches}",
            f"  5xx from im: {self.five_xx}   dead letters: {self.dead_letters}",
            f"  time to quiet: {self.time_to_quiet:.1f} s"
            if self.time_to_quiet is not None
            else f"  NOT QUIET: {self.waiting} jobs still waiting when the wait ended",
        ]
        lines += [
            f"  {fake}: {self.calls[fake]} calls, {self.faults.get(fake, 0)} faults injected" for fake in sorted(self.calls)
        ]
        lines += [f"  ! {d}" for d in self.details[:20]]
        return "\n".join(lines)


def measure(
    scenario: str,
    im: Im,
    slack: FakeSlack,
    pd: FakePagerDuty,
    answers: Counter[int],
    time_to_quiet: float | None,
    *,
    paged_by_im: bool = True,
) -> Figures:
    """The invariants after quiet. `paged_by_im` False (incidents born in PagerDuty): PagerDuty's side is
    checked by `flood_mismatches` instead."""
    figures = Figures(scenario, time_to_quiet=time_to_quiet)
    figures.five_xx = sum(count for status, count in answers.items() if status >= 500)
    with im.store.read() as session:
        dead = outbox.dead_jobs(session)
        links = list(session.exec(select(PagerDutyLink)))
    figures.dead_letters = len(dead)
    with im.store.read() as session:
        figures.waiting = outbox.waiting_count(session)
        waiting = session.exec(
            select(OutboxJob).where(col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING])).limit(20)
        ).all()
    figures.details += [f"waiting: job {j.id} {j.destination} {j.kind} INC-{j.incident_id} {j.status}" for j in waiting]
    figures.details += [f"dead: job {j.id} {j.destination} {j.kind} INC-{j.incident_id}: {j.last_error}" for j in dead]
    incidents = im.incidents.search(limit=1_000_000)
    figures.incidents = len(incidents)
    _check_slack(figures, im, slack, [i.number for i in incidents])
    if paged_by_im:
        _check_pagerduty(figures, im, pd, links)
    else:
        wrong = flood_mismatches(im, pd, links)
        figures.mismatches = len(wrong)
        figures.details += [f"not converged: {w}" for w in wrong]
    figures.calls = {"slack": len(slack.calls), "pagerduty": len(pd.requests)}
    figures.faults = {"slack": len(slack.faults), "pagerduty": len(pd.faults)}
    return figures


def _marker(message: Any) -> str | None:
    return ((message.metadata or {}).get("event_payload") or {}).get("key")


def _check_slack(figures: Figures, im: Im, slack: FakeSlack, incident_ids: list[int]) -> None:
    roots: dict[str, list[Any]] = {}
    for message in slack.messages(CHANNEL):
        roots.setdefault(_marker(message) or "", []).append(message)
    for n in incident_ids:
        mine = roots.get(f"slack-root:{n}", [])
        if len(mine) != 1:
            figures.root_duplicates += max(0, len(mine) - 1)
            figures.missing += 0 if mine else 1
            figures.details.append(f"INC-{n}: {len(mine)} root messages")
        _, events = im.incidents.timeline(n)
        wanted = {f"slack-reply:{e.id}" for e in events if e.kind != "declared"}
        posted = Counter(_marker(r) for root in mine for r in slack.replies(CHANNEL, root.ts))
        shown = _steps_shown(im, posted)
        doubled = sum(c - 1 for c in shown.values() if c > 1)
        missing = len(wanted - set(shown))
        figures.reply_duplicates += doubled
        figures.missing += missing
        if doubled or missing or set(shown) - wanted:
            figures.details.append(f"INC-{n}: replies {dict(posted)} show steps {dict(shown)}, for steps {sorted(wanted)}")


def _steps_shown(im: Im, posted: Counter[str | None]) -> Counter[str]:
    """The steps the thread's replies show: a reply shows its own step, and a coalesced reply (one posted
    for several steps queued behind it, bot/slack/delivery_batch.py) every step of its lead's plan."""
    shown: Counter[str] = Counter()
    for marker, count in posted.items():
        if not marker or not marker.startswith("slack-reply:"):
            shown[marker or "(no marker)"] += count
            continue
        lead = marker.removeprefix("slack-reply:")
        plan = outbox.step_done(im.store, plan_step(int(lead))) if lead.isdigit() else None
        for step in plan.value.split(",") if plan and plan.value else [lead]:
            shown[reply_step(int(step)) if step.isdigit() else f"slack-reply:{step}"] += count
    return shown


def _check_pagerduty(figures: Figures, im: Im, pd: FakePagerDuty, links: list[PagerDutyLink]) -> None:
    by_key: dict[str, list[Any]] = {}
    for remote in pd.incidents.values():
        by_key.setdefault(remote.incident_key or f"(no key) {remote.id}", []).append(remote)
    for key, same in by_key.items():
        if len(same) > 1:
            figures.pd_duplicates += len(same) - 1
            figures.details.append(f"{key}: {len(same)} PagerDuty incidents {[i.id for i in same]}")
    linked = {link.pd_incident_id: link for link in links if link.pd_incident_id}
    for remote in pd.incidents.values():
        link = linked.get(remote.id)
        if link is None:
            if remote.status != "resolved":  # ours, left behind by an earlier generation, or never linked
                figures.mismatches += 1
                figures.details.append(f"PagerDuty {remote.id} ({remote.incident_key}) {remote.status}, linked to nothing")
            continue
        im_status = im.incidents.get(link.incident_id).status
        want = mapping.TO_PAGERDUTY_STATUS[im_status]
        if (remote.status, link.status) != (want, want):
            figures.mismatches += 1
            figures.details.append(
                f"INC-{link.incident_id} {link.service}: im {im_status}, PagerDuty {remote.id} {remote.status}, link says {link.status}"
            )


# -- a shuffled, duplicated flood of webhook deliveries ---------------------------------------------
Delivery = tuple[str, str, str, datetime, dict[str, Any]]  # (event id, type, PagerDuty incident id, occurred_at, data)


def lifecycle(rng: random.Random) -> list[str]:
    steps = [rng.choice(["acknowledge", "reassign", "escalate"]) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.7:
        steps.append("resolve")
        if rng.random() < 0.3:
            steps += ["reopen", rng.choice(["acknowledge", "reassign", "escalate"])]
    return steps


def play(fake: FakePagerDuty, rng: random.Random, n: int, start: datetime) -> list[Delivery]:
    """Run one incident's life in the fake PagerDuty; -> the webhook events it made, each with its data
    as it was at that moment."""
    at = start
    inc = fake.trigger_incident(service_id=rng.choice(["PDAT001", "PAPI001"]), title=f"flood {n}", created_at=at)
    events: list[Delivery] = []

    def told(kind: str) -> None:
        data = fake.build_event(f"incident.{kind}", inc.id)["event"]["data"]
        events.append((f"EV{n:04d}{len(events):02d}", f"incident.{kind}", inc.id, at, data))

    told("triggered")
    for step in lifecycle(rng):
        at += timedelta(seconds=rng.randint(2, 90))
        if step == "acknowledge" and inc.status == "triggered":
            fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUCAROL", at=at)
            told("acknowledged")
        elif step in ("acknowledge", "reassign"):
            fake.reassign_incident(inc.id, [rng.choice(["PUALICE", "PUCAROL", "PUOPS01"])], agent_user_id="PUCAROL", at=at)
            told("reassigned")
        elif step == "escalate":
            fake.escalate_incident(inc.id, inc.escalation_level % 2 + 1, at=at)
            told("escalated")
        elif step == "resolve":
            fake.set_incident_status(inc.id, "resolved", agent_user_id="PUCAROL", at=at)
            told("resolved")
        elif step == "reopen":
            fake.set_incident_status(inc.id, "triggered", agent_user_id="PUCAROL", at=at)
            told("reopened")
    return events


def flood_deliveries(fake: FakePagerDuty, rng: random.Random, incidents: int, start: datetime) -> list[Delivery]:
    """`incidents` lives played in PagerDuty, their events shuffled, 20% of them delivered twice."""
    fake.escalation_policies["PESC001"].oncall_user_ids.append("PUALICE")
    fake.escalation_policies["PESCAPI"].oncall_user_ids.append("PUOPS01")
    events = [e for n in range(incidents) for e in play(fake, rng, n, start + timedelta(seconds=7 * n))]
    deliveries = events + rng.sample(events, len(events) // 5)
    rng.shuffle(deliveries)
    return deliveries


def send(fake: FakePagerDuty, url: str, secrets: list[str], deliveries: list[Delivery]) -> Counter[int]:
    answers: Counter[int] = Counter()
    for event_id, kind, pd_id, at, data in deliveries:
        answers[
            fake.send_webhook(url, kind, pd_id, secrets=secrets, event_id=event_id, occurred_at=at, data=data).status_code
        ] += 1
    return answers


def flood_mismatches(im: Im, fake: FakePagerDuty, links: list[PagerDutyLink]) -> list[tuple[str, str, str, str | None]]:
    """(PagerDuty id, its final status, im's status, the link's) for every incident that did not converge
    on PagerDuty's final state; a PagerDuty incident without a link counts too."""
    by_remote = {link.pd_incident_id: link for link in links}
    wrong: list[tuple[str, str, str, str | None]] = []
    for remote in fake.incidents.values():
        link = by_remote.get(remote.id)
        if link is None:
            wrong.append((remote.id, remote.status, "(no incident)", None))
            continue
        im_status = im.incidents.get(link.incident_id).status
        if (mapping.TO_PAGERDUTY_STATUS[im_status], link.status) != (remote.status, remote.status):
            wrong.append((remote.id, remote.status, im_status, link.status))
    return wrong


# -- scenarios --------------------------------------------------------------------------------------
@contextlib.contextmanager
def two_fakes() -> Iterator[tuple[FakeSlack, FakePagerDuty]]:
    slack, pd = slack_workspace(), pagerduty_account()
    try:
        yield slack, pd
    finally:
        slack.stop()
        pd.stop()


def mixed_workload(database_url: str, slack: FakeSlack, pd: FakePagerDuty, incidents: int, seed: int) -> Figures:
    """Declares, notes, acks, resolves (and a few reopens) from Slack and the terminal, with both fakes
    failing a share of calls; then faults off, quiet, and the invariants."""
    world = World(database_url, slack, pd)
    driver = Driver(world.im, world.url, seed)
    try:
        faults_on(slack, pd, seed)
        driver.play(plan(incidents, seed))
        wait_tried(world.im, timeout=30 + incidents / 5)
        faults_off(slack, pd)
        quiet = wait_quiet(world.im, timeout=120 + incidents)
        figures = measure("mixed workload", world.im, slack, pd, driver.answers, quiet)
        figures.details += [f"refused: {r}" for r in driver.refused]
        return figures
    finally:
        driver.close()
        world.stop()


def webhook_flood(database_url: str, slack: FakeSlack, pd: FakePagerDuty, incidents: int, seed: int) -> Figures:
    """PagerDuty lives delivered as webhooks, shuffled, 20% twice, with both fakes failing a share of the
    calls im makes meanwhile; then faults off, quiet, convergence on PagerDuty's final state."""
    world = World(database_url, slack, pd, webhook=True)
    try:
        rng = random.Random(seed)
        deliveries = flood_deliveries(pd, rng, incidents, start=utcnow().replace(microsecond=0) - timedelta(hours=3))
        calls_before = len(pd.requests)
        faults_on(slack, pd, seed)
        secrets = world.registry.webhook_secrets(world.registry.get(CONNECTOR))
        answers = send(pd, f"{world.url}/connectors/{CONNECTOR}/webhook", secrets, deliveries)
        wait_tried(world.im, timeout=30 + incidents / 5)
        faults_off(slack, pd)
        quiet = wait_quiet(world.im, timeout=120 + incidents)
        figures = measure("webhook flood", world.im, slack, pd, answers, quiet, paged_by_im=False)
        if len(world.im.incidents.search(limit=1_000_000)) != len(pd.incidents):
            figures.details.append("not one im incident per PagerDuty incident")
        echoes = [r for r in pd.requests[calls_before:] if r.method in ("POST", "PUT", "DELETE")]
        if echoes:
            figures.details.append(f"{len(echoes)} writes to PagerDuty for changes that came from it")
        return figures
    finally:
        world.stop()


def killed_mid_stream(
    tmp_path: Path, database_url: str, slack: FakeSlack, pd: FakePagerDuty, incidents: int, seed: int
) -> Figures:
    """`python -m bot.main serve` takes the first half of the workload under faults and is SIGKILLed while
    jobs are in flight; a new process takes over (the dead one's jobs at once) and the second half; then
    faults off, quiet, and the invariants."""
    from tests.test_serve import Server, wait_until

    env = im_env(database_url, slack, "http://127.0.0.1:9")  # no webhooks in this scenario
    im = build(make_settings(database_url, slack, **{k: v for k, v in env.items() if k.startswith("IM_")}))
    servers: list[Server] = []
    driver: Driver | None = None
    try:
        add_connector(im, pd)
        ops = plan(incidents, seed)
        half = len(ops) // 2
        servers.append(Server(tmp_path, "first", **env))
        driver = Driver(im, servers[0].url, seed)
        faults_on(slack, pd, seed)
        driver.play(ops[:half])
        in_flight = wait_until(lambda: _running(im), 30, "jobs in flight")
        servers[0].proc.kill()
        servers[0].proc.wait(10)
        servers.append(Server(tmp_path, "second", **env))
        driver.point_at(servers[1].url)
        driver.play(ops[half:])
        wait_tried(im, timeout=30 + incidents / 5)
        faults_off(slack, pd)
        quiet = wait_quiet(im, timeout=120 + incidents)
        figures = measure("SIGKILL mid-stream", im, slack, pd, driver.answers, quiet)
        figures.details += [f"refused: {r}" for r in driver.refused]
        if servers[1].stop() != 0 or "Traceback" in servers[1].stderr:
            figures.details.append(f"the second process did not stop cleanly:\n{servers[1].stderr[-2000:]}")
        figures.scenario += f" ({in_flight} jobs in flight at the kill)"
        return figures
    finally:
        if driver is not None:
            driver.close()
        for server in servers:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()
        im.store.dispose()


def _running(im: Im) -> int:
    with im.store.read() as session:
        return len(session.exec(select(OutboxJob).where(OutboxJob.status == JobStatus.RUNNING)).all())
