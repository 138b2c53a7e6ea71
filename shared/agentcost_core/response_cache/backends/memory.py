"""In-process backend: a bounded LRU (``memory://``, ``memory://?max_entries=N``)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..entries import CacheEntry
from .base import CacheBackend

__all__ = ["MemoryBackend"]


class MemoryBackend(CacheBackend):
    """Least recently used entries go first once ``max_entries`` is reached. Payloads are kept as
    given (no serialization): adapters hand back copies."""

    serializes = False

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.url = f"memory://?max_entries={max_entries}"
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()

    def get(self, scope: str, key: str, now: float) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is None:
                return None
            if entry.expired(now):
                del self._entries[(scope, key)]
                return None
            self._entries.move_to_end((scope, key))
            return entry

    def put(self, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[(entry.scope, entry.key)] = entry
            self._entries.move_to_end((entry.scope, entry.key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def candidates(self, scope: str, now: float) -> list[CacheEntry]:
        with self._lock:
            return [
                e for (s, _), e in self._entries.items() if s == scope and e.vector is not None and not e.expired(now)
            ]

    def invalidate(self, tag: str) -> int:
        with self._lock:
            doomed = [k for k, e in self._entries.items() if tag in e.tags]
            for k in doomed:
                del self._entries[k]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
