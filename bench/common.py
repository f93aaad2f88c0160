"""What both benchmarks share: servers in child processes, serving on a free port, percentiles."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def ready(url: str) -> None:
    """In a child: say where we serve, then live until the parent closes our stdin. Every server's
    start-up heap is frozen first, as `im serve` does (bot.server.settle_heap), references included."""
    from bot.server import settle_heap

    settle_heap()
    sys.stdout.write(f"READY {url}\n")
    sys.stdout.flush()
    sys.stdin.read()
    os._exit(0)  # daemon threads (outbox workers mid-batch, fake servers' sleeps) need not finish


def run_threads(worker: Callable[[], None], threads: int, start: threading.Barrier) -> float:
    """Run `worker` on `threads` threads released together by `start` (a barrier of threads + 1, the
    caller included); the wall time from the release until the last one ends."""
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - began


def serve_if_asked(serve: list[str] | None, servers: dict[str, Callable[..., None]]) -> None:
    """In a child started by `Child(module, kind, *args)`: run server `kind` with `args` (it never returns)."""
    if serve:
        kind, *rest = serve
        if kind in servers:
            servers[kind](*rest)
        raise SystemExit(f"unknown server kind {kind}")


def serve_im_paging(database_url: str, slack_url: str, pd_url: str, pd_key: str, **settings: Any) -> None:
    """In a child: im with production defaults (settings.workers threads woken by commits, 1 s poll) and a
    bidirectional PagerDuty connector "prod" at `pd_url` (service db -> PDAT001, anything else PGEN001)."""
    from bench.pagerduty_sync import SECRET_KEY, WEBHOOK_SECRET
    from bench.slack_ack_latency import BOT_TOKEN, SIGNING_SECRET
    from bot.server import Runtime, create_app
    from bot.wiring import build
    from integrations.pagerduty.plugin import registry_for
    from tests.harness import make_settings

    im = build(
        make_settings(
            database_url,
            None,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack_url,
            IM_SECRET_KEY=SECRET_KEY,
            **settings,
        )
    )
    registry = registry_for(im)
    config = {
        "base_url": pd_url,
        "api_key": pd_key,
        "sync_direction": "bidirectional",
        "custom": {"service_id": "PGEN001", "from_email": "ops@example.com", "service_mappings": {"db": "PDAT001"}},
    }
    registry.add("prod", "pagerduty", config)
    registry.set_webhook("prod", subscription_id=None, secret_list=[WEBHOOK_SECRET], enabled=True)
    server = served(create_app(im, Runtime(im)))
    ready(server.url)


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
