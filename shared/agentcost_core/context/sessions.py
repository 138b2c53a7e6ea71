"""Per-conversation state with a bound: at most ``limit`` conversations are kept, the least recently
used is forgotten first. What is forgotten is rebuilt from its source when that conversation comes
back (the agent's state, or the message store), so a bound costs recomputation, never messages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

from ..errors import ConfigurationError

__all__ = ["SessionMap"]

V = TypeVar("V")


class SessionMap(Generic[V]):
    """A thread-safe least-recently-used map of at most ``limit`` entries."""

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"max_sessions must be an int >= 1, got {limit!r}")
        self.limit = limit
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, create: Callable[[], V]) -> V:
        """The entry of ``key`` (made with ``create()`` when absent), now the most recently used."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
                return value
        made = create()  # may do I/O (a session loaded from its store): outside the lock
        with self._lock:
            value = self._entries.setdefault(key, made)  # a concurrent creator may have won
            self._entries.move_to_end(key)
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)
            return value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries
