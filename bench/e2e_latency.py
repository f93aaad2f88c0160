"""End-to-end relay latency with both fakes answering at once, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.e2e_latency [--samples 200] [--warmup 10]
                                          [--postgres postgresql://postgres@127.0.0.1:5432/test]

  * PagerDuty -> Slack: a signed `incident.annotated` webhook POSTed to im, until the fake Slack receives
    the chat.postMessage thread reply carrying that note;
  * Slack -> PagerDuty: a signed Acknowledge button click POSTed to im, until the fake PagerDuty receives
    the PUT /incidents/{id} that acknowledges it.

Samples run one at a time (latency with nothing else queued, nothing rate limited). Prints p50/p99 per
direction and database; asserts nothing. Goal: p99 < 100 ms each.

Layout: this process runs the client and both fakes (FakeSlack and FakePagerDuty, spec checks off:
latency only), each recording when a request arrives; im runs in a child process with production
settings (`Runtime(im)`: settings.workers threads, the 1 s poll as fallback only), so a figure well under
a second shows the workers were woken by the commit, not by polling. With --postgres a database
im_bench_<hex> is created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, Child, pct, serve_if_asked, serve_im_paging
from bench.pagerduty_sync import WEBHOOK_SECRET
from bench.slack_ack_latency import BOT_TOKEN, SIGNING_SECRET

PD_KEY = "pd-bench-key"
CHANNEL = "C0INCIDENT"
USER = "U0LAN0Z89"
NO_SPEC = Path("/nonexistent-shared")  # the fakes' request/answer validation is not what is measured
GOAL_MS = 100.0


# ====================================================================== child: im


def serve_im(database_url: str, slack_url: str, pd_url: str) -> None:
    serve_im_paging(database_url, slack_url, pd_url, PD_KEY, IM_SLACK_CHANNEL=CHANNEL)


# ====================================================================== this process: fakes and client


class Arrivals:
    """When each request reached a fake (perf_counter), with what it said."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str, Any]] = []
        self.lock = threading.Lock()

    def add(self, what: str, detail: Any) -> None:
        at = time.perf_counter()
        with self.lock:
            self.seen.append((at, what, detail))

    def wait(self, since: int, match: Callable[[str, Any], bool], timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = next((at for at, what, detail in self.seen[since:] if match(what, detail)), None)
            if found is not None:
                return found
            time.sleep(0.0005)
        raise TimeoutError("the fake never received the expected request")

    def mark(self) -> int:
        with self.lock:
            return len(self.seen)


def start_fakes() -> tuple[Any, Any, Arrivals, Arrivals]:
    from tests.fakes.pagerduty_api import FakePagerDuty
    from tests.fakes.slack_api import FakeSlack

    slack = FakeSlack(bot_token=BOT_TOKEN, shared_dir=None).start()
    slack.add_channel(CHANNEL, "incidents", members=[USER])
    slack.add_user(USER, "alice", email="alice@example.com", real_name="Alice Doe")
    slack_seen = Arrivals()
    handle_api = slack.handle_api

    def recorded_api(method: str, args: dict[str, Any], auth: str | None):  # type: ignore[no-untyped-def]
        slack_seen.add(method, args)
        return handle_api(method, args, auth)

    slack.handle_api = recorded_api  # type: ignore[method-assign,assignment]

    pd = FakePagerDuty(api_key=PD_KEY, shared_dir=NO_SPEC)
    pd.add_user("PUOPS01", "Ops Robot", "ops@example.com")
    pd.add_user("PUALICE", "Alice Doe", "alice@example.com")
    pd.add_escalation_policy("PESC001", "Default", oncall_user_ids=["PUOPS01"])
    pd.add_service("PGEN001", "General Service", "PESC001")
    pd.add_service("PDAT001", "Database Service", "PESC001")
    pd_seen = Arrivals()
    serve = pd._serve

    def recorded_serve(handler):  # type: ignore[no-untyped-def]
        pd_seen.add(handler.command.upper(), handler.path.split("?", 1)[0])
        return serve(handler)

    pd._serve = recorded_serve  # type: ignore[method-assign]
    pd.start()
    return slack, pd, slack_seen, pd_seen


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def settle(seen: Arrivals, quiet: float = 0.05) -> None:
    """Until the fake has heard nothing for `quiet` seconds: the last sample's tail (root update) is done."""
    while True:
        before = seen.mark()
        time.sleep(quiet)
        if seen.mark() == before:
            return


def reply_with(text: str) -> Callable[[str, Any], bool]:
    def match(method: str, args: Any) -> bool:
        return method == "chat.postMessage" and bool(args.get("thread_ts")) and text in str(args.get("text"))

    return match


def put_to(path: str) -> Callable[[str, Any], bool]:
    return lambda method, got: method == "PUT" and got == path


def pagerduty_to_slack(app_url: str, slack: Any, pd: Any, slack_seen: Arrivals, samples: int, warmup: int) -> list[float]:
    import httpx

    from integrations.pagerduty.api.webhook_signature import sign

    url = f"{app_url}/connectors/prod/webhook"
    remotes = [pd.trigger_incident(service_id="PDAT001", title=f"E2E from PagerDuty {n}", urgency="low") for n in range(4)]
    latencies: list[float] = []
    with httpx.Client(timeout=10) as http:

        def deliver(event_type: str, remote_id: str) -> None:
            raw = json.dumps(pd.build_event(event_type, remote_id), separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": sign(raw, WEBHOOK_SECRET)}
            answer = http.post(url, content=raw, headers=headers)
            assert answer.status_code == 202, answer.text

        for remote in remotes:
            deliver("incident.triggered", remote.id)
        wait_until(lambda: len(slack.messages(CHANNEL)) >= len(remotes), "the PagerDuty-born incidents' root messages")
        settle(slack_seen)
        for n in range(warmup + samples):
            remote = remotes[n % len(remotes)]
            text = f"e2e note {n} {uuid.uuid4().hex[:6]}"
            pd.add_incident_note(remote.id, text, user_id="PUALICE")
            since = slack_seen.mark()
            began = time.perf_counter()
            deliver("incident.annotated", remote.id)
            arrived = slack_seen.wait(since, reply_with(text))
            if n >= warmup:
                latencies.append(arrived - began)
            settle(slack_seen)
    return latencies


def slack_to_pagerduty(app_url: str, pd: Any, pd_seen: Arrivals, slack_seen: Arrivals, samples: int, warmup: int) -> list[float]:
    from bot.slack.render import ACK_ACTION
    from tests.fakes import slack_requests as sr

    client = sr.SlackClient(app_url, SIGNING_SECRET)
    try:
        first = len(pd.incidents) + 1  # PagerDuty-born incidents came first: im numbers follow them
        numbers = list(range(first, first + warmup + samples))
        for n in numbers:
            answer = client.post(sr.slash_command(f'declare --sev SEV-3 --title "E2E from Slack {n}" --service db', user_id=USER))
            assert answer.status_code == 200, answer.text

        def pd_id(number: int) -> str | None:
            with pd._lock:
                return next((i.id for i in pd.incidents.values() if i.incident_key == f"im:prod:INC-{number}:db"), None)

        wait_until(lambda: all(pd_id(n) for n in numbers), "PagerDuty incidents for every declared incident")
        settle(pd_seen, 0.2)
        settle(slack_seen, 0.2)
        latencies: list[float] = []
        for k, number in enumerate(numbers):
            path = f"/incidents/{pd_id(number)}"
            since = pd_seen.mark()
            began = time.perf_counter()
            answer = client.post(sr.block_actions(ACK_ACTION, f"INC-{number}", user_id=USER))
            assert answer.status_code == 200, answer.text
            arrived = pd_seen.wait(since, put_to(path))
            if k >= warmup:
                latencies.append(arrived - began)
            settle(pd_seen)
            settle(slack_seen)
        return latencies
    finally:
        client.close()


def run(label: str, database_url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    slack, pd, slack_seen, pd_seen = start_fakes()
    child = Child("bench.e2e_latency", "im", database_url, slack.base_url, pd.base_url)
    try:
        results = {
            "PagerDuty webhook -> Slack thread reply": pagerduty_to_slack(
                child.url, slack, pd, slack_seen, args.samples, args.warmup
            ),
            "Slack button -> PagerDuty update": slack_to_pagerduty(child.url, pd, pd_seen, slack_seen, args.samples, args.warmup),
        }
    finally:
        child.stop()
        slack.stop()
        pd.stop()
    print(f"\n[{label}] end-to-end latency, {args.samples} samples each (+{args.warmup} warm-up), one at a time")
    print(f"  {'direction':<42} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  goal p99 < {GOAL_MS:.0f} ms")
    for name, values in results.items():
        p99 = pct(values, 99)
        verdict = "met" if p99 < GOAL_MS else "NOT met"
        print(f"  {name:<42} {pct(values, 50):>8.1f} {p99:>8.1f} {max(values) * 1000:>8.1f}  {verdict}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="measured relays per direction (200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured relays first (10)")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (a database is created and dropped)")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    serve_if_asked(args.serve, {"im": serve_im})

    sys.path.insert(0, str(ROOT))
    began = time.monotonic()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; im in a child process (Runtime defaults: "
        "workers woken by commits, 1 s poll fallback); fakes and client in this process",
        flush=True,
    )
    from bench.faults import database  # a database of the run's own on PostgreSQL, dropped after

    for label, postgres in [("sqlite", None), *([("postgresql", args.postgres)] if args.postgres else [])]:
        with tempfile.TemporaryDirectory(prefix="im-bench-e2e-") as tmpdir, database(postgres, Path(tmpdir)) as url:
            run(label, url, args)
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
