"""The fault-injection suite of tests/test_faults.py at bench size, printing its figures.

    .venv/bin/python -m bench.faults [--incidents 1000] [--seed 20261124] [--scenario mixed|flood|sigkill ...]
                                     [--postgres postgresql://postgres@127.0.0.1:5432/test [--postgres-only]]

The scenarios are tests/fault_support.py's, run as they are (the same workload, fakes, faults and invariants):
a mixed workload from Slack and the terminal, a shuffled webhook flood with 20% duplicates, and `im serve`
SIGKILLed mid-stream; both fakes fail 30% of calls until every job has been tried once, then quiet. Prints,
per scenario: duplicates (PagerDuty, Slack roots, replies), missing posts, status mismatches, 5xx, dead
letters, time to quiet, calls made and faults injected per fake. Exits 1 when an invariant broke.
Runs on SQLite (a temporary file); with --postgres, in a database im_bench_<hex> created and dropped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from bot.store import normalise_url
from tests.fault_support import SEED, Figures, api_violations, killed_mid_stream, mixed_workload, two_fakes, webhook_flood

SCENARIOS = ("mixed", "flood", "sigkill")


@contextmanager
def database(postgres: str | None, folder: Path) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{folder / 'im.db'}"
        return
    name = f"im_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(postgres), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(scenario: str, incidents: int, seed: int, postgres: str | None) -> Figures:
    with (
        tempfile.TemporaryDirectory(prefix=f"im-faults-{scenario}-") as tmp,
        database(postgres, Path(tmp)) as url,
        two_fakes() as (slack, pd),
    ):
        chosen: Callable[[], Figures] = {
            "mixed": lambda: mixed_workload(url, slack, pd, incidents, seed),
            "flood": lambda: webhook_flood(url, slack, pd, incidents, seed),
            "sigkill": lambda: killed_mid_stream(Path(tmp), url, slack, pd, incidents, seed),
        }[scenario]
        figures = chosen()
        violations = api_violations(slack, pd)
        if violations:
            figures.details.append(f"{len(violations)} API description violations in the fakes' records, e.g.")
            figures.details += [f"  {v[:300]}" for v in violations[:3]]
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: all three")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--postgres-only", action="store_true", help="with --postgres: skip the SQLite runs")
    args = parser.parse_args(argv)
    if args.postgres_only and not args.postgres:
        parser.error("--postgres-only needs --postgres URL")
    os.environ.setdefault("IM_FAULTS_RATE_LIMITS", "off")  # tests/fault_support.py im_env: see there
    logging.basicConfig(level=logging.CRITICAL)  # the faults make the app log a great deal; the figures say it
    backends: list[str | None] = ([] if args.postgres_only else [None]) + ([args.postgres] if args.postgres else [])
    broken = False
    for backend in backends:
        print(f"# {'PostgreSQL' if backend else 'SQLite'}, {args.incidents} incidents, seed {args.seed}", flush=True)
        for scenario in args.scenario or SCENARIOS:
            started = time.monotonic()
            figures = run(scenario, args.incidents, args.seed, backend)
            print(figures.report(), f"\n  wall time: {time.monotonic() - started:.0f} s", flush=True)
            broken = broken or bool(figures.broken())
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
