"""The unit tier: pure rules, no served app. Its tests take no per-test temporary directory."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the end-to-end tier's fixture of the same name: the developer's Slack/PagerDuty variables
    are still hidden, but without its per-test working directory (which costs more than a unit test);
    a test that reads `.env` changes directory itself."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "IM_", "PAGERDUTY_")):
            monkeypatch.delenv(name)
