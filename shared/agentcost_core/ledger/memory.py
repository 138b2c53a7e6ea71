"""``memory://``: a list in this process; for tests and throwaway runs."""

from __future__ import annotations

import threading
from typing import Any, Iterator, Sequence

from ..events import CostEvent
from .base import FILTERABLE, LedgerBackend


class MemoryBackend(LedgerBackend):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._events: list[CostEvent] = []
        self._prompts: dict[str, Any] = {}  # event id -> PromptRecord
        self._lock = threading.Lock()

    def write_many(self, events: Sequence[CostEvent]) -> None:
        with self._lock:
            self._events.extend(events)

    def query(self, since: float | None = None, until: float | None = None, **filters: Any) -> Iterator[CostEvent]:
        for k in filters:
            if k not in FILTERABLE:
                raise ValueError(f"cannot filter on {k!r}; choose from {sorted(FILTERABLE)}")
        with self._lock:
            snapshot = sorted(self._events, key=lambda e: e.ts)
        for e in snapshot:
            if since is not None and e.ts < since:
                continue
            if until is not None and e.ts >= until:
                continue
            if all(getattr(e, k) == v for k, v in filters.items()):
                yield e

    def count(self, since: float | None = None, until: float | None = None, **filters: Any) -> int:
        if since is None and until is None and not filters:
            return len(self._events)
        return super().count(since, until, **filters)

    def prune(self, before_ts: float) -> int:
        with self._lock:
            kept = [e for e in self._events if e.ts >= before_ts]
            n = len(self._events) - len(kept)
            self._events[:] = kept
        self.prune_prompts(before_ts)
        return n

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._prompts.clear()

    def write_prompts(self, records: Sequence[Any]) -> None:
        with self._lock:
            for r in records:
                self._prompts[r.event_id] = r

    def prompt(self, event_id: str) -> Any:
        with self._lock:
            return self._prompts.get(event_id)

    def prune_prompts(self, before_ts: float) -> int:
        with self._lock:
            old = [k for k, r in self._prompts.items() if r.ts < before_ts]
            for k in old:
                del self._prompts[k]
        return len(old)
