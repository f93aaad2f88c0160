"""Slack addresses as plain strings (stdlib only: the terminal's fast `im status` shows them too)."""

from __future__ import annotations


def thread_url(channel: str, ts: str) -> str:
    """The permalink of a message (an incident's root message and its thread)."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"
