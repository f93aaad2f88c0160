"""Whole-process start-up of the terminal: `im --help`, `im status`, `im status INC-1` against `python -c pass`.

    .venv/bin/python -m bench.cli_startup [--runs 21] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Each command runs `--runs` times, interleaved with the reference so load from other processes hits them
alike; medians (and minima) are printed with the ratio to the reference. A database with one incident
is made first (current schema, so no migration runs in the timed commands). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"im --help": 0.15, "im status": 0.25}


def environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_", "PAGERDUTY_"))}
    env |= {"IM_DATABASE_URL": database_url, "IM_ACTOR": "bench", "PYTHONPATH": str(ROOT)}
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def measure(label: str, database_url: str, runs: int, cwd: Path) -> None:
    env = environment(database_url)
    im = [sys.executable, "-m", "bot.main"]
    subprocess.run(
        [*im, "declare", "--sev", "SEV-2", "-t", "bench", "-s", "db"], env=env, cwd=cwd, check=True, capture_output=True
    )
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "im --help": [*im, "--help"],
        "im status": [*im, "status"],
        "im status INC-1": [*im, "status", "--incident", "INC-1"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():  # warm the file cache
        timed(argv, env, cwd)
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(timed(argv, env, cwd))
    reference = statistics.median(times["python -c pass"])
    print(f"\n{label}: {runs} runs each, interleaved")
    print(f"{'command':<20} {'median s':>9} {'min s':>7} {'x pass':>7}  goal")
    for name, values in times.items():
        median = statistics.median(values)
        goal = GOALS.get(name.removesuffix(" INC-1"))
        verdict = "" if goal is None else f"<= {goal:.2f} s: {'met' if median <= goal else 'NOT met'}"
        print(f"{name:<20} {median:>9.3f} {min(values):>7.3f} {median / reference:>6.1f}x  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (21)")
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL (a database is created and dropped)")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="im-cli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        measure("SQLite", f"sqlite:///{tmp / 'im.db'}", args.runs, tmp)
        if args.postgres:
            from sqlalchemy import create_engine, text

            from bot.store import normalise_url

            name = f"im_cli_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(normalise_url(args.postgres), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                measure("PostgreSQL", f"{args.postgres.rsplit('/', 1)[0]}/{name}", args.runs, tmp)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
