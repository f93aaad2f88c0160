"""What storing logs for `im logs` costs the Slack ack path: im with the log shipper on vs off.

    .venv/bin/python -m bench.log_shipping [--requests 200] [--warmup 20] [--levels INFO,DEBUG]

For each log level (INFO is `im serve`'s default; DEBUG logs every SQL statement, the worst case) im is
served twice in its own process (SQLite, logs written to /dev/null as `im serve` writes them to stderr):
IM_LOG_MAX_RECORDS=0 (no shipper) and the default (shipper on). The same signed `/im declare` and
Acknowledge requests as bench/slack_ack_latency.py are sent one at a time; p50/p99 are printed with
the ratio on/off (over every run, alternated), and how many rows the shipper stored. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Child, pct, ready, serve_if_asked, served
from bench.slack_ack_latency import BOT_TOKEN, SIGNING_SECRET, ack_body_for, acknowledged, declare_body, declared_ref, run_round

ROOT = Path(__file__).resolve().parents[1]


def serve_im(database_url: str, slack_url: str, level: str, max_records: str) -> None:
    from bot.logging_setup import configure
    from bot.server import Runtime, create_app
    from bot.wiring import build
    from tests.harness import make_settings

    settings = make_settings(
        database_url,
        None,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_url,
        IM_LOG_LEVEL=level,
        IM_LOG_MAX_RECORDS=max_records,
    )
    configure(settings, default_level="INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    im = build(settings)
    runtime = Runtime(im)
    server = served(create_app(im, runtime, start_background=True))
    ready(server.url)


def measure(level: str, on: bool, slack: Child, tmp: Path, args: argparse.Namespace) -> tuple[list[float], int]:
    tmp.mkdir(exist_ok=True)
    db = tmp / f"im-{level}-{'on' if on else 'off'}.db"
    server = Child("bench.log_shipping", "im", f"sqlite:///{db}", slack.url, level, "100000" if on else "0")
    try:
        declares = run_round(server.url, declare_body, n=args.requests, warmup=args.warmup, threads=1, check=declared_ref)
        acks = run_round(
            server.url,
            ack_body_for(declares.refs),
            n=min(args.requests, len(declares.refs) - args.warmup),
            warmup=0,
            threads=1,
            check=acknowledged,
        )
        time.sleep(1.0)  # the shipper's last batch
    finally:
        server.stop()
    with sqlite3.connect(db) as conn:
        stored = conn.execute("select count(*) from log_entry").fetchone()[0]
    return declares.latencies + acks.latencies, stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_shipping", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="measured declares (and as many acks) per run (200)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured declares first (20)")
    parser.add_argument("--levels", default="INFO,DEBUG", help="IM_LOG_LEVEL values to compare at (INFO,DEBUG)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, alternated (2)")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    serve_if_asked(args.serve, {"im": serve_im})

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.requests} declares + acks per run, sequential, SQLite")
    slack = Child("bench.slack_ack_latency", "fake-slack", "0.05", quiet=True)
    try:
        with tempfile.TemporaryDirectory(prefix="im-bench-logs-") as tmpdir:
            print(f"{'level':<6} {'shipper':<8} {'p50 ms':>8} {'p99 ms':>8} {'rows stored':>12}")
            for level in args.levels.split(","):
                figures: dict[bool, list[float]] = {False: [], True: []}
                for round_ in range(args.rounds):  # alternated, so a warming machine favours neither
                    for on in (False, True) if round_ % 2 == 0 else (True, False):
                        latencies, stored = measure(level, on, slack, Path(tmpdir) / f"r{round_}", args)
                        figures[on] += latencies
                        print(
                            f"{level:<6} {'on' if on else 'off':<8} {pct(latencies, 50):>8.2f} {pct(latencies, 99):>8.2f} {stored:>12}"
                        )
                (p50_off, p99_off), (p50_on, p99_on) = ((pct(figures[on], 50), pct(figures[on], 99)) for on in (False, True))
                print(f"{level:<6} ratio on/off: p50 {p50_on / p50_off:.2f}x, p99 {p99_on / p99_off:.2f}x")
    finally:
        slack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
