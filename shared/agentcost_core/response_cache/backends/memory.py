"""In-process backend: a bounded LRU (``memory://``, ``memory://?max_entries=N``)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..entries import CacheEntry
from ..vector_index import VectorIndex
from .base import CacheBackend

__all__ = ["MemoryBackend"]


class MemoryBackend(CacheBackend):
    """Least recently used entries go first once ``max_entries`` is reached. Payloads are kept as
    given (no serialization): adapters hand back copies. Entries with a vector are also indexed by
    (scope, context) partition, kept in step with every put, eviction, expiry and invalidation."""

    serializes = False

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.url = f"memory://?max_entries={max_entries}"
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()
        self._partitions: dict[tuple[str, str], VectorIndex] = {}

    def get(self, scope: str, key: str, now: float) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is None:
                return None
            if entry.expired(now):
                self._remove((scope, key))
                return None
            self._entries.move_to_end((scope, key))
            return entry

    def put(self, entry: CacheEntry) -> None:
        with self._lock:
            if (entry.scope, entry.key) in self._entries:
                self._remove((entry.scope, entry.key))
            self._entries[(entry.scope, entry.key)] = entry
            if entry.vector is not None and entry.context is not None:
                index = self._partitions.get((entry.scope, entry.context))
                if index is None:
                    index = self._partitions[(entry.scope, entry.context)] = VectorIndex()
                index.add(entry.key, entry.vector, entry.text or "", entry.expires)
            while len(self._entries) > self.max_entries:
                self._remove(next(iter(self._entries)))

    def _remove(self, where: tuple[str, str]) -> None:
        entry = self._entries.pop(where)
        index = self._partitions.get((entry.scope, entry.context or ""))
        if index is not None:
            index.discard(entry.key)
            if not len(index):
                del self._partitions[(entry.scope, entry.context or "")]

    def partition(self, scope: str, context: str, now: float) -> VectorIndex:
        with self._lock:
            index = self._partitions.get((scope, context))
            return index if index is not None else VectorIndex()

    def invalidate(self, tag: str) -> int:
        with self._lock:
            doomed = [k for k, e in self._entries.items() if tag in e.tags]
            for k in doomed:
                self._remove(k)
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._partitions.clear()

    def count(self, now: float) -> int:
        with self._lock:
            return sum(1 for entry in self._entries.values() if not entry.expired(now))
