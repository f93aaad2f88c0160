"""Slack mrkdwn: the one place text we did not write is made inert, and the only builders of markup.

Invariant: every piece of text from people or PagerDuty joins a mrkdwn string through `escape`
(`&`, `<`, `>` become entities, so `<!channel>` or `<https://evil|click>` shows as typed and pings
or links nothing). Mentions, channel links and links we mean are built here from a Slack ID we hold
or a URL we checked; anything that fails the check is shown as escaped text instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")
_UNSAFE_IN_URL = re.compile(r"[|<>\s\x00-\x1f\x7f]")


def escape(text: str | None, limit: int | None = None) -> str:
    """`text` as mrkdwn that means only itself; cut to `limit` characters without splitting an entity."""
    out = (text or "").translate(_ENTITIES)
    if limit is None or len(out) <= limit:
        return out
    cut = out[:limit]
    amp = cut.rfind("&")
    return cut[:amp] if amp != -1 and ";" not in cut[amp:] else cut


def user(user_id: str) -> str:
    """`<@U…>`: a mention of the Slack user we know by this ID (anything else is shown, not mentioned)."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else escape(f"@{user_id}")


def channel(channel_id: str) -> str:
    """`<#C…>`: a link to a channel we know by this ID."""
    return f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else escape(f"#{channel_id}")


def safe_url(url: str | None) -> bool:
    """An http(s) URL with a host and nothing that could end or split a `<url|label>` token."""
    if not url or _UNSAFE_IN_URL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def link(url: str | None, label: str) -> str:
    """`<url|label>` with the label escaped; a URL that is not safe leaves the label as plain text."""
    if not safe_url(url):
        return escape(label)
    assert url is not None
    return f"<{escape(url)}|{escape(label)}>"


def join(parts: Iterable[str], separator: str, limit: int) -> str:
    """Whole mrkdwn parts joined while they fit in `limit`: a cut never leaves half a link or entity."""
    out = ""
    for part in parts:
        candidate = f"{out}{separator}{part}" if out else part
        if len(candidate) > limit:
            break
        out = candidate
    return out
