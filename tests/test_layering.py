"""The design's layering, checked on the source, module by module.

Imports run one way: core (domain, store, outbox, read models) <- commands <- adapters (Slack,
terminal, PagerDuty) <- the app's wiring and server. Adapters never import each other; PagerDuty's API
layer imports nothing of the app at all; the core knows no vendor library.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (module prefix, layer). The longest matching prefix decides; every app module must match one.
LAYERS: list[tuple[str, str]] = [
    ("bot.clock", "core"),
    ("bot.config", "core"),
    ("bot.logging_setup", "core"),
    ("bot.log_store", "core"),  # the table `im logs` reads
    ("bot.log_shipper", "core"),  # the handler that fills it, off the hot path
    ("bot.store", "core"),
    ("bot.store_driver", "core"),  # SQLite driver writes for ingest hot paths
    ("bot.store_head", "core"),  # HEAD_REVISION and the default database, without SQLAlchemy
    ("bot.ttl_cache", "core"),
    ("bot.app", "core"),
    ("bot.domain", "core"),
    ("bot.workers", "core"),
    ("bot.pacing", "core"),
    ("bot.scheduler", "core"),
    ("bot.sla", "core"),
    ("bot.sla_clocks", "core"),  # the clocks as plain data (the fast `im status` computes them too)
    ("bot.reminders", "core"),
    ("bot.reports", "core"),  # report figures, postmortem drafts and their renderers
    ("bot.connectors", "core"),  # the vendor-neutral connector table, sealed secrets, the interval claim
    ("commands", "commands"),
    ("commands.cli", "terminal"),
    ("bot.slack", "slack"),
    ("integrations.pagerduty", "pagerduty"),
    ("integrations.pagerduty.api", "pagerduty-api"),
    ("integrations", "pagerduty"),
    ("integrations.alerts", "alerts"),  # alert intake from monitoring (Events API v2, Alertmanager)
    ("bot", "wiring"),  # bot.wiring, bot.main, bot.server, bot.serve_commands, bot.tables, bot.migrations
]

# what each layer may import from the app
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "commands": {"core", "commands"},
    "terminal": {"core", "commands", "terminal"},
    "slack": {"core", "commands", "slack"},
    "pagerduty": {"core", "commands", "pagerduty", "pagerduty-api"},
    "pagerduty-api": {"pagerduty-api"},
    "alerts": {"core", "commands", "alerts"},
    "wiring": {"core", "commands", "terminal", "slack", "pagerduty", "pagerduty-api", "alerts", "wiring"},
}

# libraries a layer must not touch
FORBIDDEN_LIBRARIES: dict[str, tuple[str, ...]] = {
    "core": ("slack_sdk", "slack_bolt", "httpx", "starlette", "uvicorn"),
    "commands": ("slack_sdk", "slack_bolt", "httpx", "starlette", "uvicorn"),
    "terminal": ("slack_sdk", "slack_bolt", "httpx", "starlette", "uvicorn"),
    "pagerduty": ("slack_sdk", "slack_bolt"),
    "alerts": ("slack_sdk", "slack_bolt"),
    "pagerduty-api": ("slack_sdk", "slack_bolt", "sqlmodel", "sqlalchemy", "starlette"),
}

APP_PACKAGES = ("bot", "commands", "integrations")


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for prefix, layer in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), layer)
    return best[1] if best else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from integrations.pagerduty import mapping` imports the module integrations.pagerduty.mapping
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def app_files() -> list[Path]:
    return sorted(p for package in APP_PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert [module_name(p) for p in app_files() if layer_of(module_name(p)) is None] == []


def test_imports_run_one_way() -> None:
    broken = []
    for file in app_files():
        layer = layer_of(module_name(file))
        assert layer is not None
        for name in sorted(imports(file)):
            top = name.split(".")[0]
            if top in APP_PACKAGES:
                target = layer_of(name)
                if target is not None and target not in ALLOWED[layer]:
                    broken.append(f"{file.relative_to(ROOT)} ({layer}) imports {name} ({target})")
            elif any(name == lib or name.startswith(lib + ".") for lib in FORBIDDEN_LIBRARIES.get(layer, ())):
                broken.append(f"{file.relative_to(ROOT)} ({layer}) imports {name}")
    assert broken == []


def test_the_rule_catches_an_upward_import() -> None:
    """The checker itself: the domain importing the Slack adapter, or PagerDuty's API importing the app, is caught."""
    assert layer_of("bot.domain.incidents") == "core" and "slack" not in ALLOWED["core"]
    assert layer_of("integrations.pagerduty.api.client") == "pagerduty-api" and "core" not in ALLOWED["pagerduty-api"]
    assert layer_of("integrations.pagerduty.outbound") == "pagerduty" and "slack" not in ALLOWED["pagerduty"]
    assert layer_of("commands.cli") == "terminal" and "wiring" not in ALLOWED["terminal"]
    assert layer_of("bot.server") == "wiring"
