"""`im list` shows a bounded page by default: every incident still being worked on, and the newest 20."""

from __future__ import annotations

from pathlib import Path

from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.wiring import build
from tests.harness import make_settings
from tests.test_cli import USER, Im, assert_usage_error, ids


def seed(cli: Im, count: int) -> None:
    """`count` incidents written in-process (what is under test is the terminal reading them): INC-2 is
    still open, INC-3 mitigated, every other one closed."""
    app = build(make_settings(cli.url))
    carol = Actor(Origin.CLI, USER)
    for n in range(1, count + 1):
        app.incidents.declare(title=f"Incident {n}", severity="SEV-3", services=["web"], actor=carol)
        if n == 3:
            app.incidents.transition(n, "acknowledge", actor=carol)
        elif n != 2:
            app.incidents.transition(n, "close", actor=carol)
    app.store.dispose()


def test_list_defaults_to_the_open_ones_and_the_newest_20(tmp_path: Path) -> None:
    cli = Im(tmp_path)
    seed(cli, 30)
    default, limited, everything, filtered = cli.many(
        ("list", "--json"),
        ("list", "--limit", "5", "--json"),
        ("list", "--all", "--json"),
        ("list", "--status", "closed", "--json"),
    )
    newest = [f"INC-{n}" for n in range(30, 10, -1)]
    assert ids(default) == [*newest, "INC-3", "INC-2"]
    assert default.json()["title"] == "22 incident(s): every one still open and the latest 20 (--limit N or --all for more)"
    assert ids(limited) == [*newest[:5], "INC-3", "INC-2"]
    assert ids(everything) == [f"INC-{n}" for n in range(30, 0, -1)]
    assert everything.json()["title"] == "30 incident(s)"
    # a filter is the reader's own choice: the newest 20 that match, nothing added
    assert ids(filtered) == [f"INC-{n}" for n in range(30, 10, -1)]
    assert filtered.json()["title"] == "20 incident(s): the newest 20 (--limit N or --all for more)"


def test_list_limit_is_checked(tmp_path: Path) -> None:
    cli = Im(tmp_path)
    both, zero = cli.many(("list", "--all", "--limit", "5"), ("list", "--limit", "0"))
    assert_usage_error(both, "usage: im list")
    assert "give --all or --limit, not both" in both.err
    assert_usage_error(zero, "usage: im list")
    assert "--limit must be 1 or more" in zero.err
