"""Slack ack latency over real HTTP on loopback: im vs bare Bolt apps, plus `im serve` idle memory.

    .venv/bin/python -m bench.slack_ack_latency [--requests 300] [--warmup 30] [--concurrency 8]
                                                [--postgres postgresql://postgres@127.0.0.1:5432/test]

Prints figures; asserts nothing.

Layout (one process per role, so no server shares a GIL with the load generator or with another server):
  * this process: the client only (httpx, keep-alive; sequential, then N client threads);
  * a child serving tests.fakes.slack_api.FakeSlack(response_delay=2.0) (spec checks off: latency only);
  * one child per app under test, each served by uvicorn in a thread on a socket bound beforehand, as
    tests/harness.py's ServedApp does (with TCP_NODELAY, as `im serve` has):
      - im: bot.server.create_app + Runtime (2 outbox worker threads, running, pointed at the slow fake);
      - bare-default / bare-pbr: a bare Bolt App (listeners only call ack()) behind a copy of bot/server.py's
        Starlette route (body -> BoltRequest -> App.dispatch in run_in_threadpool).  Bolt's own starlette
        adapter is NOT used: it calls App.dispatch on the event loop thread.
Apps are measured one after another; each child is ended when its rounds are done.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Child, pct, ready, served

ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench-token"
DECLARE_TEXT = 'declare --sev SEV-2 --title "Database slow" --service db'
GOAL = "goal: im p99 < default bare p99 and <= 2x process_before_response bare p99"


# ====================================================================== children (servers)


def serve_fake_slack(delay: float) -> None:
    from tests.fakes.slack_api import FakeSlack

    fake = FakeSlack(bot_token=BOT_TOKEN, shared_dir=None, response_delay=delay)
    fake.start()
    fake.add_channel("C0INCIDENT", "incidents", members=["U0LAN0Z89"])
    fake.add_user("U0LAN0Z89", "alice", email="alice@example.com", real_name="Alice Doe")
    started = [0]
    lock = threading.Lock()
    handle_api = fake.handle_api

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            started[0] += 1
        return handle_api(*args, **kwargs)

    fake.handle_api = counted  # type: ignore[method-assign]
    sys.stdout.write(f"READY {fake.base_url}\n")
    sys.stdout.flush()
    for line in sys.stdin:  # "stats" -> one JSON line; EOF -> exit
        if line.strip() == "stats":
            with lock, fake._lock:
                done = len(fake.calls)
                stats = {"started": started[0], "answered": done, "in_flight": started[0] - done}
            sys.stdout.write(json.dumps(stats) + "\n")
            sys.stdout.flush()
    os._exit(0)


def serve_im(database_url: str, slack_url: str) -> None:
    from bot.server import Runtime, create_app
    from bot.wiring import build
    from tests.harness import make_settings

    settings = make_settings(
        database_url, None, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack_url
    )
    im = build(settings)
    runtime = Runtime(im)  # production defaults: settings.workers threads, poll 1 s
    server = served(create_app(im, runtime, start_background=True))
    ready(server.url)


def build_bare_app(slack_url: str, process_before_response: bool):  # type: ignore[no-untyped-def]
    from slack_bolt import Ack, App
    from slack_bolt.request import BoltRequest
    from slack_sdk import WebClient
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    bolt = App(
        client=WebClient(token=BOT_TOKEN, base_url=slack_url, timeout=10),
        signing_secret=SIGNING_SECRET,
        process_before_response=process_before_response,
        token_verification_enabled=False,
    )

    def command(ack: Ack) -> None:
        ack()

    def action(ack: Ack) -> None:
        ack()

    bolt.command("/im")(command)
    bolt.action("incident_ack")(action)

    async def slack_events(request: Request) -> Response:  # same as bot/server.py
        body = (await request.body()).decode("utf-8")
        bolt_request = BoltRequest(body=body, query=request.url.query, headers=dict(request.headers))
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return Response(
            content=bolt_response.body,
            status_code=bolt_response.status,
            headers={k: v[0] for k, v in bolt_response.headers.items() if v and k.lower() != "content-length"},
        )

    return Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"])])


def serve_bare(slack_url: str, process_before_response: bool) -> None:
    server = served(build_bare_app(slack_url, process_before_response))
    ready(server.url)


# ====================================================================== client


def signed(body: bytes) -> dict[str, str]:
    from tests.fakes.slack_requests import sign

    return {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SIGNING_SECRET)}


def declare_body(_i: int) -> bytes:
    from tests.fakes.slack_requests import slash_command

    return slash_command(DECLARE_TEXT)


def ack_body_for(refs: list[str]) -> Callable[[int], bytes]:
    from tests.fakes.slack_requests import block_actions

    def body(i: int) -> bytes:
        return block_actions("incident_ack", refs[i] if refs else "INC-1")

    return body


@dataclass
class Round:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    refs: list[str] = field(default_factory=list)
    first: float | None = None  # the very first request of the round (seconds), warm-up or not
    lock: threading.Lock = field(default_factory=threading.Lock)


def _one(http, url: str, body: bytes, check: Callable[[str], str | None] | None, out: Round, record: bool) -> None:  # type: ignore[no-untyped-def]
    headers = signed(body)  # signing is client work: outside the timed span
    t0 = time.perf_counter()
    try:
        response = http.post(url, content=body, headers=headers)
        ok = response.status_code == 200
        text = response.text
    except Exception:
        ok, text = False, ""
    elapsed = time.perf_counter() - t0
    ref = check(text) if (ok and check) else None
    with out.lock:
        if out.first is None:
            out.first = elapsed
        if record:
            out.latencies.append(elapsed)
        if not ok or (check is not None and ref is None):
            out.errors += 1
        if ref:
            out.refs.append(ref)


def run_round(
    base: str,
    make_body: Callable[[int], bytes],
    *,
    n: int,
    warmup: int,
    threads: int,
    check: Callable[[str], str | None] | None = None,
    offset: int = 0,
) -> Round:
    """`warmup` + `n` requests; bodies make_body(offset + k). threads == 1: strictly one at a time."""
    import httpx

    url = base + "/slack/events"
    out = Round()
    with httpx.Client(timeout=30) as http:
        for k in range(warmup):
            _one(http, url, make_body(offset + k), check, out, record=False)
    offset += warmup
    if threads <= 1:
        with httpx.Client(timeout=30) as http:
            for k in range(n):
                _one(http, url, make_body(offset + k), check, out, record=True)
        return out
    counter = iter(range(n))
    counter_lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        with httpx.Client(timeout=30) as http:
            http.get(base + "/", timeout=5)  # open the keep-alive connection before the barrier (404 is fine)
            start.wait()
            while True:
                with counter_lock:
                    k = next(counter, None)
                if k is None:
                    return
                _one(http, url, make_body(offset + k), check, out, record=True)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return out


_REF = re.compile(r"(INC-\d+) declared")


def declared_ref(text: str) -> str | None:
    match = _REF.search(text)
    return match.group(1) if match else None


def acknowledged(text: str) -> str | None:
    return "ok" if text == "" else None  # the Acknowledge button's ack has an empty body


# ====================================================================== figures


@dataclass
class Row:
    scenario: str
    app: str  # im-sqlite / im-postgresql / bare-default / bare-pbr
    kind: str  # command / action
    mode: str  # seq / cN
    result: Round


def outbox_counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    from bot.store import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select status, count(*) from outbox_job group by status")).all()
        return {str(status): int(count) for status, count in rows}
    finally:
        engine.dispose()


def measure_im(
    label: str, database_url: str, slack: Child, args: argparse.Namespace, rows: list[Row], background: list[str]
) -> None:
    t0 = time.monotonic()
    server = Child("bench.slack_ack_latency", "im", database_url, slack.url)
    try:
        modes = [("seq", 1)] + ([(f"c{args.concurrency}", args.concurrency)] if args.concurrency > 1 else [])
        for mode, threads in modes:
            warm = args.warmup if mode == "seq" else 0
            before = slack.ask("stats")
            declares = run_round(server.url, declare_body, n=args.requests, warmup=warm, threads=threads, check=declared_ref)
            rows.append(Row(f"{label} /im declare", label, "command", mode, declares))
            refs = declares.refs  # each click acknowledges a different, open incident
            acks = run_round(
                server.url,
                ack_body_for(refs),
                n=min(args.requests, max(0, len(refs) - warm)),
                warmup=warm,
                threads=threads,
                check=acknowledged,
            )
            rows.append(Row(f"{label} Acknowledge button", label, "action", mode, acks))
            after = slack.ask("stats")
            background.append(
                f"{label} {mode}: fake Slack Web API calls started during the round {after['started'] - before['started']}, "
                f"answered {after['answered'] - before['answered']}, in flight at its end {after['in_flight']}"
            )
        counts = outbox_counts(database_url)
    finally:
        server.stop()
    background.append(f"{label}: outbox jobs when the app was stopped {counts}  (app up {time.monotonic() - t0:.1f}s)")


def measure_bare(label: str, pbr: bool, slack_url: str, args: argparse.Namespace, rows: list[Row]) -> None:
    server = Child("bench.slack_ack_latency", "bare-pbr" if pbr else "bare-default", slack_url)
    try:
        modes = [("seq", 1)] + ([(f"c{args.concurrency}", args.concurrency)] if args.concurrency > 1 else [])
        for mode, threads in modes:
            warm = args.warmup if mode == "seq" else 0
            rows.append(
                Row(
                    f"{label} /im command",
                    label,
                    "command",
                    mode,
                    run_round(server.url, declare_body, n=args.requests, warmup=warm, threads=threads),
                )
            )
            rows.append(
                Row(
                    f"{label} block_actions",
                    label,
                    "action",
                    mode,
                    run_round(server.url, ack_body_for([]), n=args.requests, warmup=warm, threads=threads),
                )
            )
    finally:
        server.stop()


def print_table(rows: list[Row]) -> None:
    def p99_of(app: str, kind: str, mode: str) -> float | None:
        for row in rows:
            if (row.app, row.kind, row.mode) == (app, kind, mode):
                return pct(row.result.latencies, 99)
        return None

    header = f"{'scenario':<34} {'mode':<5} {'n':>5} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'p99/default':>12} {'p99/pbr':>8}"
    print()
    print(header)
    print("-" * len(header))
    for mode in dict.fromkeys(r.mode for r in rows):
        for row in (r for r in rows if r.mode == mode):
            lat = row.result.latencies
            p50, p99 = pct(lat, 50), pct(lat, 99)
            r_def = r_pbr = ""
            if row.app.startswith("im-"):
                d, b = p99_of("bare-default", row.kind, mode), p99_of("bare-pbr", row.kind, mode)
                r_def = f"{p99 / d:.2f}x" if d else "-"
                r_pbr = f"{p99 / b:.2f}x" if b else "-"
            print(
                f"{row.scenario:<34} {mode:<5} {len(lat):>5} {row.result.errors:>4} {p50:>8.2f} {p99:>8.2f} {r_def:>12} {r_pbr:>8}"
            )
    print()
    firsts = [
        f"{r.app} {r.kind} {r.result.first * 1000:.0f} ms"
        for r in rows
        if r.mode == "seq" and r.kind == "command" and r.result.first is not None
    ]
    print("first request after start (warm-up, not in the table): " + "; ".join(firsts))
    print()
    print(GOAL)
    for row in rows:
        if not row.app.startswith("im-"):
            continue
        p99 = pct(row.result.latencies, 99)
        d, b = p99_of("bare-default", row.kind, row.mode), p99_of("bare-pbr", row.kind, row.mode)
        if d is None or b is None:
            continue
        verdict = "met" if (p99 < d and p99 <= 2 * b) else "NOT met"
        print(f"  {row.scenario:<34} {row.mode:<5} p99 {p99:7.2f} ms  vs default {d:6.2f}  vs 2x pbr {2 * b:6.2f}  -> {verdict}")


# ====================================================================== `im serve` idle memory


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def im_serve_idle_rss(slack_url: str, tmp: Path, idle: float = 3.0) -> float | None:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_", "PAGERDUTY_"))}
    env |= {
        "IM_DATABASE_URL": f"sqlite:///{tmp / 'im-serve.db'}",
        "IM_PORT": str(port),
        "IM_HOST": "127.0.0.1",
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": slack_url,
    }
    exe = ROOT / ".venv" / "bin" / "im"
    for attempt in ("as is", "with PYTHONPATH"):
        if attempt == "with PYTHONPATH":
            env["PYTHONPATH"] = str(ROOT)
        log = tmp / "im-serve.log"
        with log.open("w") as err:
            proc = subprocess.Popen([str(exe), "serve"], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err)
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - t0 > 30:
                print("im serve: /healthz did not answer 200 within 30 s")
                proc.terminate()
                proc.wait(10)
                return None
            time.sleep(0.05)
        if proc.returncode is None:
            break
        lines = log.read_text().strip().splitlines()
        print(f"im serve ({attempt}, cwd {tmp}) exited with {proc.returncode}: {lines[-1] if lines else '?'}")
    else:
        return None
    try:
        started = time.monotonic() - t0
        time.sleep(idle)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
        print(f"im serve: /healthz 200 after {started:.2f}s; idle {idle:.0f}s; pid {proc.pid}")
        return kib / 1024
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ====================================================================== main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slack_ack_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per scenario and round (300)")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests before each sequential scenario (30)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads in the concurrent round; <=1 skips it (8)")
    parser.add_argument("--postgres", metavar="URL", help="also run im on PostgreSQL (a database is created and dropped)")
    parser.add_argument("--slack-delay", type=float, default=2.0, help="fake Slack Web API answer delay, seconds (2.0)")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        kind, *rest = args.serve
        if kind == "fake-slack":
            serve_fake_slack(float(rest[0]))
        elif kind == "im":
            serve_im(rest[0], rest[1])
        elif kind in ("bare-default", "bare-pbr"):
            serve_bare(rest[0], kind == "bare-pbr")
        raise SystemExit(f"unknown server kind {kind}")

    sys.path.insert(0, str(ROOT))
    began = time.monotonic()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.requests} requests per scenario "
        f"(+{args.warmup} warm-up), concurrent round: {args.concurrency if args.concurrency > 1 else 'off'} threads; "
        f"fake Slack Web API delay {args.slack_delay}s",
        flush=True,
    )
    slack = Child(
        "bench.slack_ack_latency", "fake-slack", str(args.slack_delay), quiet=True
    )  # quiet: broken pipes when an app child ends
    rows: list[Row] = []
    background: list[str] = []
    pg_admin = pg_name = None
    try:
        with tempfile.TemporaryDirectory(prefix="im-bench-") as tmpdir:
            tmp = Path(tmpdir)
            measure_bare("bare-default", False, slack.url, args, rows)
            measure_bare("bare-pbr", True, slack.url, args, rows)
            measure_im("im-sqlite", f"sqlite:///{tmp / 'im.db'}", slack, args, rows, background)
            if args.postgres:
                from sqlalchemy import create_engine, text

                from bot.store import normalise_url

                pg_name = f"im_bench_{uuid.uuid4().hex[:8]}"
                pg_admin = create_engine(normalise_url(args.postgres), isolation_level="AUTOCOMMIT")
                with pg_admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
                measure_im("im-postgresql", f"{args.postgres.rsplit('/', 1)[0]}/{pg_name}", slack, args, rows, background)
            print_table(rows)
            print()
            print("background work while im was measured:")
            for line in background:
                print("  " + line)
            print()
            rss = im_serve_idle_rss(slack.url, tmp)
            if rss is not None:
                print(f"im serve idle VmRSS: {rss:.1f} MiB")
    finally:
        if pg_admin is not None and pg_name is not None:
            from sqlalchemy import text

            with pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            pg_admin.dispose()
        slack.stop()
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
