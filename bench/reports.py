"""Report figures on a big store: `im report` for a year (json, pdf) and the hot read paths.

    .venv/bin/python -m bench.reports [--incidents 100000] [--events 2000000] [--db /tmp/im-bench-reports.db]
                                      [--postgres postgresql://postgres@127.0.0.1:5432/test] [--keep]

Seeds the store with bulk Core inserts (incidents over the last 400 days, a few still open, 3% reopened;
timeline events spread over them), then times, each in a child process (peak memory from
resource.getrusage there): `im report --format json` and `--format pdf` for the last 365 days; and, in
this process on a warm app: `im list` (its default page, and --limit 100), `im status INC-n`, the Slack
`/im status --incident INC-n` path and the Slack answer to `/im report` (signed requests to the served
app). Prints figures; asserts nothing. Goals: json < 5 s, pdf < 15 s, memory < 500 MB, reads < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
SERVICES = [f"svc-{i:02d}" for i in range(30)]
SEVERITIES = ["SEV-1", "SEV-2", "SEV-3", "SEV-4"]


def seed(url: str, incidents: int, events: int) -> None:
    from bot.domain.models import Incident, TimelineEvent
    from bot.store import Store

    store = Store(url)
    store.upgrade()
    rng = random.Random(7)
    now = datetime.now(UTC)
    inc_table, ev_table = Incident.__table__, TimelineEvent.__table__  # type: ignore[attr-defined]
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for number in range(1, incidents + 1):
        declared = now - timedelta(seconds=rng.uniform(0, 400 * 86400))
        ack = declared + timedelta(seconds=rng.expovariate(1 / 600))
        resolved = ack + timedelta(seconds=rng.expovariate(1 / 7200))
        still_open = number > incidents - 20
        batch.append(
            {
                "id": number,
                "title": f"Incident {number}",
                "severity": rng.choice(SEVERITIES),
                "status": "open" if still_open else "closed",
                "services": rng.sample(SERVICES, rng.choice((1, 1, 1, 2))),
                "declared_by": "cli:bench",
                "declared_origin": "cli",
                "declared_at": declared,
                "acknowledged_at": None if still_open else ack,
                "mitigated_at": None if still_open else ack,
                "resolved_at": None if still_open else resolved,
                "closed_at": None if still_open else resolved,
                "reopened_at": resolved if rng.random() < 0.03 else None,
                "status_changed_at": declared,
                "updated_at": declared,
            }
        )
        if len(batch) == 10_000:
            with store.core() as conn:
                conn.execute(insert(inc_table), batch)
            batch = []
    if batch:
        with store.core() as conn:
            conn.execute(insert(inc_table), batch)
    print(f"seeded {incidents} incidents in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    per = max(1, events // incidents)
    rows: list[dict[str, Any]] = []
    done = 0
    for number in range(1, incidents + 1):
        for k in range(per):
            rows.append(
                {
                    "incident_id": number,
                    "kind": "note",
                    "origin": "cli",
                    "actor": "cli:bench",
                    "at": now - timedelta(days=1, seconds=k),
                    "text": "step",
                    "data": {},
                }
            )
        if len(rows) >= 50_000:
            with store.core() as conn:
                conn.execute(insert(ev_table), rows)
            done += len(rows)
            rows = []
    if rows:
        with store.core() as conn:
            conn.execute(insert(ev_table), rows)
        done += len(rows)
    print(f"seeded {done} timeline events in {time.perf_counter() - started:.1f} s", flush=True)
    store.dispose()


def run_child(url: str, argv: list[str]) -> dict[str, float]:
    """`im <argv>` in a fresh process: wall time there, and its peak resident memory."""
    code = (
        "import resource, sys, time, json\n"
        "t = time.perf_counter()\n"
        "from bot.main import main\n"
        f"rc = main({argv!r})\n"
        "u = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t, 'cpu': u.ru_utime + u.ru_stime,"
        " 'maxrss_mb': u.ru_maxrss / 1024}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_"))}
    env |= {
        "IM_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "IM_SLA_ACK": "SEV-1=5m,SEV-2=15m,SEV-3=1h",
        "IM_SLA_RESOLVE": "SEV-1=1h,SEV-2=4h",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    figures = json.loads(done.stderr.strip().splitlines()[-1])
    if figures["rc"] != 0:
        raise RuntimeError(done.stderr)
    return figures


def timed(fn: Any, rounds: int = 20) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def reads(url: str, number: int) -> None:
    from bot.domain.incidents import Actor
    from bot.domain.models import Origin
    from commands.context import Context
    from commands.run import execute
    from tests.fakes.slack_api import FakeSlack
    from tests.harness import BOT_TOKEN, AppHarness, make_settings

    fake = (
        FakeSlack(bot_token=BOT_TOKEN, validate=False)
        if "validate" in FakeSlack.__init__.__code__.co_varnames
        else FakeSlack(bot_token=BOT_TOKEN)
    )
    fake.start()
    fake.add_channel("C0INCIDENT", "incidents", members=["U0LAN0Z89"])
    fake.add_user("U0LAN0Z89", "alice", email="alice@example.com", real_name="Alice Doe")
    app = AppHarness(make_settings(url, fake), fake, background=False)
    try:
        ctx = Context(im=app.im, actor=Actor(Origin.CLI, "bench", "bench"), frontend="cli", prog="im")
        for label, fn in (
            ("im list (still open + newest 20)", lambda: execute(ctx, ["list"])),
            ("im list --limit 100", lambda: execute(ctx, ["list", "--limit", "100"])),
            (f"im status INC-{number}", lambda: execute(ctx, ["status", "--incident", f"INC-{number}"])),
            ("im status (not closed)", lambda: execute(ctx, ["status"])),
            (f"/im status --incident INC-{number} (Slack, HTTP)", lambda: app.command(f"status --incident INC-{number}")),
            # the answer only: the report is computed by a worker after it (not running here)
            ("/im report --since 365d (Slack ack, HTTP)", lambda: app.command("report --since 365d --format json")),
        ):
            median, worst = timed(fn)
            print(f"  {label:<46} median {median:6.1f} ms  max {worst:6.1f} ms  (goal < 50 ms)")
    finally:
        app.stop()
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    parser.add_argument(
        "--postgres", default=None, help="use this PostgreSQL server instead (a database of our own, dropped after)"
    )
    parser.add_argument("--keep", action="store_true", help="keep an existing seeded SQLite file")
    args = parser.parse_args()
    if args.postgres:
        url = own_database(args.postgres)
        try:
            seed(url, args.incidents, args.events)
            measure(url, args)
        finally:
            drop_database(args.postgres, url)
        return
    path = Path(args.db or Path(tempfile.gettempdir()) / "im-bench-reports.db")
    url = f"sqlite:///{path}"
    if not (args.keep and path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        seed(url, args.incidents, args.events)
    measure(url, args)


def own_database(admin_url: str) -> str:
    """A database of our own on that server (nothing else there is touched)."""
    from sqlalchemy import create_engine, text

    from bot.store import normalise_url

    name = f"im_bench_reports_{os.getpid()}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text

    from bot.store import normalise_url

    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def measure(url: str, args: argparse.Namespace) -> None:
    out = Path(tempfile.mkdtemp())
    since = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
    load = os.getloadavg()[0]
    print(
        f"store: {url.split('@')[-1]}  ({args.incidents} incidents, {args.events} events); {os.cpu_count()} cores, load {load:.1f}"
    )
    for fmt, goal in (("json", 5), ("pdf", 15)):
        target = out / f"year.{fmt}"
        started = time.perf_counter()
        figures = run_child(url, ["report", "--start", since, "--tz", "UTC", "--format", fmt, "--output", str(target)])
        wall = time.perf_counter() - started
        print(
            f"  im report --format {fmt:<4} (365 days)  {figures['seconds']:5.2f} s in the command, {wall:5.2f} s with start-up,"
            f" {figures['cpu']:5.2f} s CPU"
            f" (goal < {goal} s); peak memory {figures['maxrss_mb']:.0f} MB (goal < 500 MB); {target.stat().st_size // 1024} KB"
        )
    reads(url, args.incidents // 2)
    print(f"  (this process: peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
