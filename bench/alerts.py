"""Alert intake costs, over real HTTP on loopback.

    .venv/bin/python -m bench.alerts [--requests 2000] [--warmup 100] [--concurrency 8]
                                     [--alerts 10000] [--services 50] [--storm-cap 1000]
                                     [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                     [--only intake|storm] [--no-sqlite]

1. Intake: `POST /alerts/{source}` (Events API v2 triggers, distinct dedup keys) against the bare
   HMAC+insert endpoint that bench.pagerduty_sync measures for webhooks (same bodies count, same client,
   measured one after the other). im runs without workers here, so the figure is the endpoint's alone.
2. Storm: `--alerts` events for `--services` services (40 dedup keys a service, the rest repeats) sent
   as fast as the client threads go, 429s retried after their Retry-After, into an im whose workers run;
   then waits for the outbox to drain and counts incidents, alerts and how often each was seen.

Prints figures; asserts nothing. SQLite always (a temporary file); with --postgres the same again in a
database im_bench_<hex> created for the run and dropped afterwards.
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

from bench.common import Child, pct, ready, run_threads, served
from bench.pagerduty_sync import Round, build_bodies
from bench.pagerduty_sync import run_round as run_bare_round

SECRET_KEY = "bench-im-secret-key-0123456789abcdef"
SOURCE = "bench"
GOAL = "goal: >= 70% of bare throughput"
KEYS_PER_SERVICE = 40


def serve_im(database_url: str, workers: str, cap: str, key_file: str) -> None:
    from bot.server import Runtime, create_app
    from bot.wiring import build
    from integrations.alerts.plugin import sources_for
    from tests.harness import make_settings

    im = build(make_settings(database_url, None, IM_SECRET_KEY=SECRET_KEY, IM_ALERTS_MAX_PER_SECOND=cap, IM_WORKERS="2"))
    _, key = sources_for(im).add(SOURCE, "events-v2", service=None)
    Path(key_file).write_text(key)
    server = served(create_app(im, Runtime(im), start_background=workers == "workers"))
    ready(server.url)


def trigger(key: str, dedup: str, service: str) -> bytes:
    body = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {"summary": f"{dedup} failing", "source": "host-1", "severity": "error", "component": service},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def send_all(base: str, bodies: list[bytes], threads: int, *, retry_429: bool) -> Round:
    import httpx

    url = f"{base}/alerts/{SOURCE}"
    out = Round()
    counter = iter(range(len(bodies)))
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        with httpx.Client(timeout=30) as http:
            http.get(base + "/", timeout=5)
            start.wait()
            while True:
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                while True:
                    t0 = time.perf_counter()
                    try:
                        answer = http.post(url, content=bodies[k], headers={"content-type": "application/json"})
                        status = answer.status_code
                    except Exception:
                        status, answer = 0, None
                    with out.lock:
                        out.latencies.append(time.perf_counter() - t0)
                        out.statuses[status] = out.statuses.get(status, 0) + 1
                    if status == 429 and retry_429 and answer is not None:
                        time.sleep(float(answer.headers.get("retry-after", "1")))
                        continue
                    break

    out.wall = run_threads(worker, threads, start)
    return out


def im_child(database_url: str, workers: bool, cap: float) -> tuple[Child, str]:
    key_file = tempfile.mktemp(prefix="im-bench-key-")
    child = Child("bench.alerts", database_url, "workers" if workers else "none", str(cap), key_file)
    key = Path(key_file).read_text()
    os.unlink(key_file)
    return child, key


def intake(label: str, database_url: str, args: argparse.Namespace) -> None:
    child, key = im_child(database_url, workers=False, cap=100000)
    try:
        bodies = [trigger(key, f"svc{i % 50}/k{i}", f"svc{i % 50}") for i in range(args.requests + args.warmup)]
        send_all(child.url, bodies[: args.warmup], 1, retry_429=False)
        im_round = send_all(child.url, bodies[args.warmup :], args.concurrency, retry_429=False)
    finally:
        child.stop()
    bare = Child("bench.pagerduty_sync", "bare", database_url)
    try:
        bare_round = run_bare_round(
            bare.url, build_bodies(args.requests + args.warmup), warmup=args.warmup, threads=args.concurrency
        )
    finally:
        bare.stop()
    print(
        f"\n[{label}] 1. intake: {args.requests} Events API v2 triggers (+{args.warmup} warm-up), {args.concurrency} client threads"
    )
    print(f"  {'app':<12} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    rates = {}
    for name, r in (("im /alerts", im_round), ("bare hmac", bare_round)):
        rates[name] = len(r.latencies) / r.wall if r.wall else float("nan")
        print(
            f"  {name:<12} {rates[name]:>11.0f} {pct(r.latencies, 50):>8.2f} {pct(r.latencies, 99):>8.2f} "
            f"{max(r.latencies) * 1000:>8.2f}  {dict(sorted(r.statuses.items()))}"
        )
    share = rates["im /alerts"] / rates["bare hmac"] * 100
    print(
        f"  im: {share:.0f}% of bare throughput, p99 {pct(im_round.latencies, 99):.2f} ms ({GOAL}: {'met' if share >= 70 else 'NOT met'})"
    )


def storm(label: str, database_url: str, args: argparse.Namespace) -> None:
    child, key = im_child(database_url, workers=True, cap=args.storm_cap)
    try:
        bodies = []
        for i in range(args.alerts):
            service = i % args.services
            bodies.append(trigger(key, f"svc{service}/k{(i // args.services) % KEYS_PER_SERVICE}", f"svc{service}"))
        sent = send_all(child.url, bodies, args.concurrency, retry_429=True)
        t0 = time.perf_counter()
        waited = wait_drained(database_url, timeout=args.drain_timeout)
        figures = storm_figures(database_url)
    finally:
        child.stop()
    accepted = sent.statuses.get(202, 0)
    print(
        f"\n[{label}] 2. storm: {args.alerts} alerts for {args.services} services, per-source cap "
        f"{args.storm_cap:g}/s (429s retried after Retry-After)"
    )
    print(f"  sent in {sent.wall:.1f} s ({args.alerts / sent.wall:.0f}/s); answers {dict(sorted(sent.statuses.items()))}")
    print(f"  outbox drained {time.perf_counter() - t0 + 0:.1f} s after the last answer ({'yes' if waited else 'NO: timed out'})")
    print(
        f"  incidents {figures['incidents']} (services with more than one: {figures['duplicate_services']}); "
        f"alerts {figures['alerts']}; triggers counted {figures['counted']} of {accepted} accepted; "
        f"intake rows {figures['intake']} (unapplied {figures['unapplied']}); dead jobs {figures['dead']}"
    )
    lost = accepted - figures["counted"]
    print(
        f"  goal: <= {args.services} incidents, every alert counted, 0 lost, 0 duplicate incidents: "
        f"{'met' if figures['incidents'] <= args.services and lost == 0 and figures['duplicate_services'] == 0 else 'NOT met'}"
        f" (lost {lost})"
    )


def _query(database_url: str, run: Callable) -> dict:  # type: ignore[type-arg]
    from sqlalchemy import create_engine

    from bot.store import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return run(conn)
    finally:
        engine.dispose()


def wait_drained(database_url: str, timeout: float) -> bool:
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _query(
            database_url,
            lambda c: {
                "n": c.execute(
                    text(
                        "select count(*) from outbox_job where destination='alerts' and kind='apply' and status in ('pending','running')"
                    )
                ).scalar_one()
            },
        )["n"]
        if left == 0:
            return True
        time.sleep(0.5)
    return False


def storm_figures(database_url: str) -> dict[str, int]:
    from sqlalchemy import text

    def run(c) -> dict[str, int]:  # type: ignore[no-untyped-def]
        one = lambda sql: int(c.execute(text(sql)).scalar_one() or 0)  # noqa: E731
        return {
            "incidents": one("select count(*) from incident"),
            "duplicate_services": one(
                "select count(*) from (select service from alert group by service having count(distinct incident_id) > 1) s"
            ),
            "alerts": one("select count(*) from alert"),
            "counted": one("select sum(count) from alert"),
            "intake": one("select count(*) from alert_intake"),
            "unapplied": one("select count(*) from alert_intake where processed_at is null"),
            "dead": one("select count(*) from outbox_job where status = 'dead'"),
        }

    return _query(database_url, run)


def databases(args: argparse.Namespace) -> list[tuple[str, str, Callable[[], None]]]:
    found = []
    tmp = tempfile.mkdtemp(prefix="im-bench-alerts-")
    parts = [args.only] if args.only else ["intake", "storm"]
    for part in [] if args.no_sqlite else parts:
        found.append((f"sqlite {part}", f"sqlite:///{tmp}/{part}.db", lambda: None))
    if args.postgres:
        from sqlalchemy import create_engine, text

        for part in parts:
            name = f"im_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(
                args.postgres.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))

            def drop(name: str = name, admin=admin) -> None:  # type: ignore[no-untyped-def]
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

            found.append((f"postgresql {part}", f"{args.postgres.rsplit('/', 1)[0]}/{name}", drop))
    return found


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_im(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.alerts")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--alerts", type=int, default=10000)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--storm-cap", type=float, default=1000.0, help="IM_ALERTS_MAX_PER_SECOND during the storm")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--postgres")
    parser.add_argument("--only", choices=["intake", "storm"], help="run one part (default: both)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (with --postgres)")
    args = parser.parse_args()
    for label, url, drop in databases(args):
        try:
            (intake if label.endswith("intake") else storm)(label, url, args)
        finally:
            drop()


if __name__ == "__main__":
    main()
