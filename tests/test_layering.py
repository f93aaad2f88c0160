"""The design's layering, checked on the source: the domain knows nothing of Slack or PagerDuty, the
PagerDuty integration knows nothing of Slack or of our app, and the command grammar no Slack."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RULES = {
    "bot/domain": ("slack_sdk", "slack_bolt", "integrations", "bot.slack", "bot.connectors", "commands", "httpx"),
    "integrations": ("slack_sdk", "slack_bolt", "bot", "commands", "sqlmodel", "sqlalchemy"),
    "commands/grammar.py": ("slack_sdk", "slack_bolt", "bot", "integrations"),
    "bot/slack": ("integrations", "bot.connectors"),
    "bot/connectors": ("slack_sdk", "slack_bolt", "bot.slack"),
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_each_layer_imports_only_what_it_may() -> None:
    broken = []
    for where, forbidden in RULES.items():
        target = ROOT / where
        files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
        assert files, f"nothing found at {where}"
        for file in files:
            for name in imports(file):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    broken.append(f"{file.relative_to(ROOT)} imports {name}")
    assert broken == []
