"""Who may deliver to a connector's webhook, and how often: checked before a request's body is read.

Source networks: IM_WEBHOOK_ALLOWED_NETWORKS (off when unset). The address checked is the TCP peer's;
with IM_TRUST_FORWARDED_FOR=true it is the last entry of X-Forwarded-For instead, the address that the
one proxy in front of us saw (earlier entries are the client's to write, so they are never trusted).

Rate: a token bucket per connector, IM_WEBHOOK_MAX_PER_SECOND tokens a second, holding one second's
worth (at least one). It is counted in this process: with several replicas each has its own bucket, so
the fleet admits up to replicas x the setting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from bot.config import Network, Settings

Address = IPv4Address | IPv6Address
MAX_BUCKETS = 1024  # names come from the URL, so anyone can make up new ones: the map stays bounded


class TokenBucket:
    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.at = now

    def take(self, now: float) -> float:
        """0 when a token was taken; otherwise the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.at) * self.rate >= self.capacity


class RateLimiter:
    """One bucket per key. Thread-safe."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[key] = TokenBucket(self.rate, now)
            self._buckets.move_to_end(key)
            return bucket.take(now)

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < MAX_BUCKETS:
            return
        # a full bucket is the same as a new one, so forgetting it loses nothing
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
        while len(self._buckets) >= MAX_BUCKETS:
            self._buckets.popitem(last=False)


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    retry_after: int | None = None


def client_address(peer: str | None, forwarded_for: str | None, *, trust_forwarded_for: bool) -> Address | None:
    text = peer
    if trust_forwarded_for and forwarded_for and forwarded_for.strip():
        text = forwarded_for.split(",")[-1].strip()
    try:
        address = ip_address((text or "").strip("[]"))
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class WebhookGuard:
    def __init__(self, networks: list[Network], *, trust_forwarded_for: bool, max_per_second: float) -> None:
        self.networks = networks
        self.trust_forwarded_for = trust_forwarded_for
        self.limiter = RateLimiter(max_per_second)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookGuard:
        return cls(
            settings.webhook_networks,
            trust_forwarded_for=settings.trust_forwarded_for,
            max_per_second=settings.webhook_max_per_second,
        )

    def allowed(self, address: Address | None) -> bool:
        if not self.networks:
            return True
        return address is not None and any(address in network for network in self.networks)

    def check(self, connector: str, peer: str | None, forwarded_for: str | None) -> Refusal | None:
        """None when the delivery may go on; otherwise what to answer."""
        if not self.allowed(client_address(peer, forwarded_for, trust_forwarded_for=self.trust_forwarded_for)):
            return Refusal(403, "source address not allowed")
        wait = self.limiter.admit(connector)
        if wait > 0:
            return Refusal(429, "too many deliveries", retry_after=max(1, math.ceil(wait)))
        return None
