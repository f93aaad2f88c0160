"""`im connector add pagerduty NAME` without --config, on a real terminal (a pseudo-terminal): it asks
for each field as the spec shows, hides the key as it is typed, and stores the connector."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

from sqlmodel import select as sql_select

from bot.connectors.models import Connector
from bot.store import Store
from tests.pd_support import SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]


def read_until(fd: int, text: str, timeout: float = 20.0) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {text!r} on the terminal; it showed {seen.decode(errors='replace')!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_connector_add_prompts_for_each_field(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/im.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_"))}
    env |= {"IM_DATABASE_URL": url, "IM_SECRET_KEY": SECRET_KEY, "PYTHONPATH": str(ROOT), "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's user runs im
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "bot.main", "connector", "add", "pagerduty", "prod-pagerduty"], env)
    shown = ""
    answers = [
        ("API Key:", "u+secret-key-typed-here"),
        ("API Base URL [https://api.pagerduty.com]:", ""),
        ("Default Service ID (e.g. PXXXXXX):", "PABC123"),
        ("From Email (a PagerDuty user):", "ops@example.com"),
        ("Escalation Policy ID (optional):", ""),
        ("Sync Direction (bidirectional, outbound, inbound) [outbound]:", "bidirectional"),
    ]
    for prompt, answer in answers:
        shown += read_until(fd, prompt)
        os.write(fd, answer.encode() + b"\n")
    shown += read_until(fd, "Next: im connector test prod-pagerduty")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert "u+secret-key-typed-here" not in shown, "the key is not echoed"
    assert "Connector prod-pagerduty (pagerduty) added: bidirectional, every 5m" in shown
    store = Store(url)
    try:
        with store.read() as session:
            row = session.exec(sql_select(Connector)).one()
    finally:
        store.dispose()
    assert row.config["custom"]["service_id"] == "PABC123" and row.config["sync_direction"] == "bidirectional"
    assert row.api_key.startswith("fernet2:") and "secret-key" not in row.api_key
