"""PagerDuty connector costs: webhook ingestion over real HTTP on loopback (im vs a bare endpoint), and the
number of PagerDuty API calls one reconciliation makes.

    .venv/bin/python -m bench.pagerduty_sync [--requests 2000] [--warmup 100] [--concurrency 8]
                                             [--incidents 10000] [--changed 100]
                                             [--postgres postgresql://postgres@127.0.0.1:5432/test]

Prints figures; asserts nothing. Always runs on SQLite (a temporary file); with --postgres it runs the same
again on PostgreSQL, in a database im_bench_<hex> created for the run and dropped afterwards.

Layout:
  * this process: the HTTP client (httpx, keep-alive, K threads), and part 3 (the reconciliation: the im
    domain and Reconciler in this process, FakePagerDuty served from a thread of this process);
  * one child process per app under test, each served by uvicorn in a thread of that child, on a socket
    bound beforehand with proto=IPPROTO_TCP (so asyncio sets TCP_NODELAY on accepted sockets, as
    tests/harness.py's ServedApp and `im serve` do):
      - im: bot.server.create_app(im, Runtime(im), start_background=False): the outbox workers and the
        connector scheduler are NOT started, so the figure is the webhook endpoint's alone (jobs stay pending);
      - bare: a Starlette route that only checks X-PagerDuty-Signature (hmac.compare_digest over the v1=
        values), reads the event id and inserts (event_id unique, body) in a table of the same database, in
        run_in_threadpool like im (SQLite: WAL + synchronous=NORMAL as im, writes serialised by a lock).
  The two apps are measured one after the other (the other is not running), with the same signed bodies.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bench.common import Child, pct, ready, run_threads, served

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "bench-im-secret-key-0123456789abcdef"
WEBHOOK_SECRET = "whsec"
CONNECTOR = "pd"
SYNC_CONNECTOR = "pd-sync"
SERVICE_ID = "PSERV01"
PD_CONFIG = {
    "api_key": "pd-key",
    "sync_direction": "bidirectional",
    "custom": {"service_id": SERVICE_ID, "from_email": "ops@example.com"},
}
BARE_TABLE = "bench_bare_delivery"
INGEST_GOAL = "goal: >= 85% of bare throughput, p99 < 25 ms"


# ====================================================================== children (servers)


def im_settings(database_url: str):  # type: ignore[no-untyped-def]
    from tests.harness import make_settings

    # the per-connector cap (IM_WEBHOOK_MAX_PER_SECOND, default 50/s) is a guard, not what is measured here
    return make_settings(database_url, None, IM_SECRET_KEY=SECRET_KEY, IM_WEBHOOK_MAX_PER_SECOND="100000")


def serve_im(database_url: str) -> None:
    from bot.server import Runtime, create_app
    from bot.wiring import build
    from integrations.pagerduty.plugin import registry_for

    im = build(im_settings(database_url))
    registry = registry_for(im)
    registry.add(CONNECTOR, "pagerduty", dict(PD_CONFIG))
    registry.set_webhook(CONNECTOR, subscription_id=None, secret_list=[WEBHOOK_SECRET], enabled=True)
    runtime = Runtime(im)
    server = served(create_app(im, runtime, start_background=False))  # endpoint only: no workers, no scheduler
    ready(server.url)


def build_bare_app(database_url: str):  # type: ignore[no-untyped-def]
    import hashlib
    import hmac
    from contextlib import nullcontext

    from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, event
    from sqlalchemy.exc import IntegrityError
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bot.store import normalise_url

    url = normalise_url(database_url)
    sqlite = url.startswith("sqlite")
    if sqlite:
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20)
    metadata = MetaData()
    table = Table(
        BARE_TABLE,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(200), nullable=False, unique=True),
        Column("body", Text, nullable=False),
    )
    metadata.create_all(engine)
    write_lock = threading.Lock() if sqlite else nullcontext()
    keys = [WEBHOOK_SECRET.encode()]

    def receive(body: bytes, header: str | None) -> tuple[int, dict[str, object]]:
        got = []
        for part in (header or "").split(","):
            scheme, sep, value = part.strip().partition("=")
            if sep and scheme.strip().lower() == "v1":
                got.append(value.strip().lower())
        want = [hmac.new(k, body, hashlib.sha256).hexdigest() for k in keys]
        if not any(g.isascii() and hmac.compare_digest(g, w) for g in got for w in want):
            return 401, {"error": "invalid signature"}
        event_id = json.loads(body)["event"]["id"]
        try:
            with write_lock, engine.begin() as conn:
                conn.execute(table.insert().values(event_id=event_id, body=body.decode("utf-8", "replace")))
        except IntegrityError:
            return 200, {"status": "duplicate", "event_id": event_id}
        return 202, {"status": "accepted", "event_id": event_id}

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        status, answer = await run_in_threadpool(receive, body, request.headers.get("x-pagerduty-signature"))
        return JSONResponse(answer, status_code=status)

    return Starlette(routes=[Route("/connectors/{name}/webhook", endpoint, methods=["POST"])])


def serve_bare(database_url: str) -> None:
    server = served(build_bare_app(database_url))
    ready(server.url)


# ====================================================================== client


def build_bodies(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """`count` distinct signed incident.acknowledged v3 deliveries, as FakePagerDuty would send them."""
    from integrations.pagerduty.api.webhook_signature import sign
    from tests.fakes.pagerduty_api import FakePagerDuty

    fake = FakePagerDuty().start()  # started: the envelopes carry its base_url
    try:
        fake.add_service(SERVICE_ID, "Database")
        fake.add_user("PUSER01", "Ops", "ops@example.com")
        incidents = [fake.trigger_incident(service_id=SERVICE_ID, title=f"Bench incident {i}") for i in range(50)]
        for inc in incidents:
            fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUSER01")
        run = uuid.uuid4().hex[:8].upper()
        out = []
        for i in range(count):
            envelope = fake.build_event("incident.acknowledged", incidents[i % len(incidents)].id, event_id=f"BENCH{run}{i:09d}")
            raw = json.dumps(envelope, separators=(",", ":")).encode()
            out.append(
                (
                    raw,
                    {
                        "Content-Type": "application/json; charset=utf-8",
                        "User-Agent": "PagerDuty-Webhook/V3.0",
                        "X-Webhook-Id": str(uuid.uuid4()),
                        "X-Webhook-Subscription": "PFAKESUB",
                        "X-PagerDuty-Signature": sign(raw, WEBHOOK_SECRET),
                    },
                )
            )
        return out
    finally:
        fake.stop()


@dataclass
class Round:
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if s == 202)


def run_round(base: str, bodies: list[tuple[bytes, dict[str, str]]], *, warmup: int, threads: int) -> Round:
    """bodies[:warmup] one at a time (not measured), then the rest from `threads` keep-alive clients."""
    import httpx

    url = f"{base}/connectors/{CONNECTOR}/webhook"
    with httpx.Client(timeout=30) as http:
        for raw, headers in bodies[:warmup]:
            http.post(url, content=raw, headers=headers)
    measured = bodies[warmup:]
    out = Round()
    counter = iter(range(len(measured)))
    counter_lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        with httpx.Client(timeout=30) as http:
            http.get(base + "/", timeout=5)  # open the keep-alive connection before the barrier (404 is fine)
            start.wait()
            while True:
                with counter_lock:
                    k = next(counter, None)
                if k is None:
                    return
                raw, headers = measured[k]
                t0 = time.perf_counter()
                try:
                    status = http.post(url, content=raw, headers=headers).status_code
                except Exception:
                    status = 0
                elapsed = time.perf_counter() - t0
                with out.lock:
                    out.latencies.append(elapsed)
                    out.statuses[status] = out.statuses.get(status, 0) + 1

    out.wall = run_threads(worker, threads, start)
    return out


def row_counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    from bot.store import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return {
                "webhook_delivery": conn.execute(text("select count(*) from webhook_delivery")).scalar_one(),
                "outbox_job(pagerduty-in)": conn.execute(
                    text("select count(*) from outbox_job where destination = :d"), {"d": f"pagerduty-in:{CONNECTOR}"}
                ).scalar_one(),
                BARE_TABLE: conn.execute(text(f"select count(*) from {BARE_TABLE}")).scalar_one(),
            }
    finally:
        engine.dispose()


def ingestion(label: str, database_url: str, bodies: list[tuple[bytes, dict[str, str]]], args: argparse.Namespace) -> None:
    rounds: dict[str, Round] = {}
    for app in ("im", "bare"):
        child = Child("bench.pagerduty_sync", app, database_url)
        try:
            rounds[app] = run_round(child.url, bodies, warmup=args.warmup, threads=args.concurrency)
        finally:
            child.stop()
    print(
        f"\n[{label}] 1-2. webhook ingestion: {args.requests} signed incident.acknowledged deliveries "
        f"(+{args.warmup} warm-up), {args.concurrency} keep-alive client threads"
    )
    print(f"  {'app':<6} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for app, r in rounds.items():
        rate = len(r.latencies) / r.wall if r.wall else float("nan")
        print(
            f"  {app:<6} {rate:>13.0f} {pct(r.latencies, 50):>8.2f} {pct(r.latencies, 99):>8.2f} "
            f"{max(r.latencies) * 1000:>8.2f}  {dict(sorted(r.statuses.items()))}"
        )
    im_r, bare_r = rounds["im"], rounds["bare"]
    share = (len(im_r.latencies) / im_r.wall) / (len(bare_r.latencies) / bare_r.wall) * 100
    p99 = pct(im_r.latencies, 99)
    verdict = "met" if share >= 85 and p99 < 25 else "NOT met"
    print(f"  im: {share:.0f}% of bare throughput, p99 {p99:.2f} ms  ({INGEST_GOAL}: {verdict})")
    counts = row_counts(database_url)
    print("  rows after the run (warm-up included): " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# ====================================================================== part 3: reconciliation


def reconciliation(label: str, database_url: str, args: argparse.Namespace) -> None:
    from collections import Counter

    from sqlalchemy import func, update
    from sqlmodel import col, select

    from bot.clock import utcnow
    from bot.connectors.models import Connector
    from bot.wiring import build
    from integrations.pagerduty.plugin import registry_for
    from integrations.pagerduty.reconcile import Reconciler
    from integrations.pagerduty.tables import PagerDutyLink
    from tests.fakes.pagerduty_api import FakePagerDuty

    fake = FakePagerDuty().start()
    im = None
    try:
        fake.add_service(SERVICE_ID, "Database")
        fake.add_user("PUSER01", "Ops", "ops@example.com")
        now = utcnow().replace(microsecond=0)
        t_load = time.perf_counter()
        loaded = fake.bulk_load(
            args.incidents, service_id=SERVICE_ID, created_at=now - timedelta(days=60), step=timedelta(seconds=30)
        )
        changes_from = now - timedelta(hours=1)
        stride = max(1, len(loaded) // max(1, args.changed))
        changed = loaded[::stride][: args.changed]
        for i, inc in enumerate(changed):
            fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUSER01", at=changes_from + timedelta(seconds=i))
        load_s = time.perf_counter() - t_load

        im = build(im_settings(database_url))
        registry = registry_for(im)
        registry.add(
            SYNC_CONNECTOR,
            "pagerduty",
            {
                "api_key": fake.api_key,
                "base_url": fake.base_url,
                "sync_direction": "bidirectional",
                "custom": {"service_id": SERVICE_ID, "from_email": "ops@example.com"},
            },
        )
        with im.store.transaction() as session:
            session.execute(
                update(Connector)
                .where(col(Connector.name) == SYNC_CONNECTOR)
                .values(last_sync_until=changes_from - timedelta(minutes=1))
            )
        reconciler = Reconciler(im, registry)

        def one_sync():  # type: ignore[no-untyped-def]
            before = len(fake.requests)
            t0 = time.perf_counter()
            result = reconciler.sync(SYNC_CONNECTOR)
            wall = time.perf_counter() - t0
            made = fake.requests[before:]
            return result, made, wall

        first, made1, wall1 = one_sync()
        second, made2, wall2 = one_sync()
        with im.store.read() as session:
            links = session.exec(
                select(func.count()).select_from(PagerDutyLink).where(col(PagerDutyLink.connector) == SYNC_CONNECTOR)
            ).one()

        goal = math.ceil(len(changed) / 100) + 1
        by_path = Counter(f"{r.method} {r.path}" for r in made1)
        print(
            f"\n[{label}] 3. reconciliation: FakePagerDuty with {len(fake.incidents)} incidents "
            f"({len(fake.log_entries)} log entries; loaded in {load_s:.1f}s), {len(changed)} acknowledged "
            f"after the connector's last_sync_until; sync_direction bidirectional"
        )
        print(
            f"  first sync:  changed incidents {len(changed)}; seen {first.seen}, applied {first.changed}, "
            f"errors {first.errors}{' (' + first.error + ')' if first.error else ''}"
        )
        print(
            f"               requests made {len(made1)} ({', '.join(f'{k} x{v}' for k, v in by_path.items()) or '-'}); "
            f"goal: <= ceil({len(changed)}/100) + 1 = {goal} -> {'met' if len(made1) <= goal else 'NOT met'}"
        )
        print(
            f"               wall {wall1 * 1000:.0f} ms (Reconciler's own duration_ms {first.duration_ms:.0f}); "
            f"im links to PagerDuty incidents now {links}"
        )
        print(
            f"  second sync: requests made {len(made2)}, seen {second.seen}, applied {second.changed}, "
            f"errors {second.errors}; wall {wall2 * 1000:.0f} ms (goal ~1 request)"
        )
        if fake.violations or fake.response_violations:
            print(f"  FakePagerDuty spec departures: {(fake.violations + fake.response_violations)[:3]}")
    finally:
        fake.stop()
        if im is not None:
            im.store.dispose()


# ====================================================================== main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pagerduty_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured webhook deliveries per app (2000)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured deliveries before each round (100)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (8)")
    parser.add_argument("--incidents", type=int, default=10_000, help="incidents in the fake PagerDuty (10000)")
    parser.add_argument("--changed", type=int, default=100, help="of which changed since the last sync (100)")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (a database is created and dropped)")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        kind, database_url = args.serve
        if kind == "im":
            serve_im(database_url)
        elif kind == "bare":
            serve_bare(database_url)
        raise SystemExit(f"unknown server kind {kind}")

    sys.path.insert(0, str(ROOT))
    began = time.monotonic()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; servers: uvicorn in a thread of a child process "
        f"each (one app at a time), client in this process; im served with start_background=False "
        f"(no outbox workers, no scheduler: the endpoint alone)",
        flush=True,
    )
    bodies = build_bodies(args.warmup + args.requests)
    print(f"{len(bodies)} signed bodies built before timing ({len(bodies[0][0])} bytes each)", flush=True)
    pg_admin = pg_name = None
    try:
        with tempfile.TemporaryDirectory(prefix="im-bench-pd-") as tmpdir:
            sqlite_url = f"sqlite:///{Path(tmpdir) / 'im.db'}"
            ingestion("sqlite", sqlite_url, bodies, args)
            reconciliation("sqlite", sqlite_url, args)
        if args.postgres:
            from sqlalchemy import create_engine, text

            from bot.store import normalise_url

            pg_name = f"im_bench_{uuid.uuid4().hex[:8]}"
            pg_admin = create_engine(normalise_url(args.postgres), isolation_level="AUTOCOMMIT")
            with pg_admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
            pg_url = f"{args.postgres.rsplit('/', 1)[0]}/{pg_name}"
            ingestion("postgresql", pg_url, bodies, args)
            reconciliation("postgresql", pg_url, args)
    finally:
        if pg_admin is not None and pg_name is not None:
            from sqlalchemy import text

            with pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            pg_admin.dispose()
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
