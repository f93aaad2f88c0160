"""What both benchmarks share: servers in child processes, serving on a free port, percentiles."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ready(url: str) -> None:
    """In a child: say where we serve, then live until the parent closes our stdin."""
    sys.stdout.write(f"READY {url}\n")
    sys.stdout.flush()
    sys.stdin.read()
    os._exit(0)  # daemon threads (outbox workers mid-batch, fake servers' sleeps) need not finish


def served(asgi_app):  # type: ignore[no-untyped-def]
    """uvicorn in a thread on a free loopback port (TCP_NODELAY set, as `im serve` has)."""
    from tests.harness import ServedApp

    return ServedApp(asgi_app)


class Child:
    """`python -m <module> --serve ...` in its own process; stopped by closing its stdin."""

    def __init__(self, module: str, *args: str, quiet: bool = False) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_", "PAGERDUTY_")) or k.startswith("IM_BENCH_")
        }
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--serve", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            stderr=subprocess.DEVNULL if quiet else None,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"server {args[0] if args else module} did not start (exit {self.proc.poll()})")
        self.url = line.split(" ", 1)[1].strip()

    def ask(self, line: str) -> dict:  # type: ignore[type-arg]
        self.proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def stop(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(5)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of seconds, in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000
