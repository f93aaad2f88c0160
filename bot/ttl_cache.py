"""A small time-to-live cache for values read on hot paths (connector configs, opened secrets, remote
lookups). Entries expire after `ttl` seconds of monotonic time; `clear()` forgets everything at once
(a change made in this process is then seen immediately; other processes see it within `ttl`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, *, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V], *, fresh: bool = False) -> V:
        """The cached value, or `load()`'s (stored) when missing, expired or `fresh` is asked for."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and not fresh and now - entry[0] < self.ttl:
            return entry[1]
        value = load()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded: a cache, never a leak
            self._entries[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
