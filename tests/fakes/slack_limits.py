"""Slack's Web API rate limits, as the fake Slack enforces them when asked to.

`chat.postMessage`: about one message a second per channel, short bursts allowed. Every other method:
its tier (read from Slack's method reference, ``shared/slack/methods/<method>.json``: "Tier 3: 50+ per
minute"), per method and workspace; "special" methods other than chat.postMessage are not limited.
Each limit is a token bucket (rate, burst); beyond it Slack answers HTTP 429 ``ratelimited`` with
``Retry-After`` in whole seconds. The clock is injectable (seconds).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
_TIER = re.compile(r"Tier (\d)")


@dataclass
class SlackLimits:
    post_per_second: float = 1.0
    post_burst: float = 3.0
    tier_burst_share: float = 0.1  # of a tier's count per minute, at least 2
    clock: Callable[[], float] = time.monotonic
    methods_dir: Path | None = None  # shared/slack/methods
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, as of)
    _tiers: dict[str, int | None] = field(default_factory=dict)

    def tier(self, method: str) -> int | None:
        if method not in self._tiers:
            found = None
            path = self.methods_dir / f"{method}.json" if self.methods_dir else None
            if path is not None and path.is_file():
                label = (json.loads(path.read_text()).get("rate_limit") or {}).get("label", "")
                match = _TIER.search(label)
                found = int(match.group(1)) if match else None
            self._tiers[method] = found
        return self._tiers[method]

    def bucket(self, method: str, channel: str | None) -> tuple[str, float, float] | None:
        """(key, tokens a second, burst) of the limit a call falls under, or None."""
        if method == "chat.postMessage":
            return f"post:{channel}", self.post_per_second, self.post_burst
        tier = self.tier(method)
        if tier is None:
            return None
        count = TIER_PER_MINUTE[tier]
        return f"method:{method}", count / 60.0, max(2.0, round(count * self.tier_burst_share))

    def spend(self, method: str, channel: str | None) -> float | None:
        """Take a token for this call: None when it may go, else the seconds Slack asks to wait."""
        limit = self.bucket(method, channel)
        if limit is None:
            return None
        key, rate, burst = limit
        now = self.clock()
        tokens, since = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - since) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate
        self._buckets[key] = (tokens - 1, now)
        return None


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
