"""The in-process counter store: one lock, a dict of counters. Threads and asyncio tasks of one
process share it; it needs no server and never fails, so it has no failure mode to choose."""

from __future__ import annotations

import threading
from typing import Sequence

from .base import ZERO, Claim, Counters, CounterStore, ReserveResult, Vector, add, fits

__all__ = ["MemoryStore"]


class MemoryStore(CounterStore):
    """``memory://``: counters for this process only. Periods roll over by key (the key names
    its day / month), and expired keys are dropped as new ones arrive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, Counters] = {}
        self._expires: dict[str, float] = {}
        self._reserves = 0  # every 1,000 reservations, expired keys of every scope are dropped

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._counters)})"

    def reserve(self, claims: Sequence[Claim], now: float) -> ReserveResult:
        with self._lock:
            self._reserves += 1
            if self._reserves % 1000 == 0:
                self._sweep(now)
            current = [self._get(c.key, now) for c in claims]
            working: dict[str, Counters] = {}  # a key named twice in one call holds both amounts
            after = []
            for i, (counters, claim) in enumerate(zip(current, claims)):
                counters = working.get(claim.key, counters)
                dim = fits(counters, claim)
                if dim is not None:
                    return ReserveResult(False, tuple(current), i, dim)
                new = working[claim.key] = Counters(counters.spent, add(counters.held, claim.amounts), counters.started or now)
                after.append(new)
            for claim in claims:
                self._counters[claim.key] = working[claim.key]
                if claim.ttl is not None:
                    self._expires[claim.key] = now + claim.ttl
            return ReserveResult(True, tuple(after))

    async def areserve(self, claims: Sequence[Claim], now: float) -> ReserveResult:
        return self.reserve(claims, now)  # a lock held for microseconds: no thread hop

    def settle(self, claims: Sequence[Claim], actual: Vector) -> tuple[Counters, ...]:
        with self._lock:
            out = []
            for claim in claims:
                c = self._counters.get(claim.key) or Counters()
                held = add(c.held, claim.amounts, -1)
                new = Counters(add(c.spent, actual), tuple(max(h, 0) for h in held), c.started)  # type: ignore[arg-type]
                self._counters[claim.key] = new
                out.append(new)
            return tuple(out)

    async def asettle(self, claims: Sequence[Claim], actual: Vector) -> tuple[Counters, ...]:
        return self.settle(claims, actual)

    async def arelease(self, claims: Sequence[Claim]) -> tuple[Counters, ...]:
        return self.settle(claims, ZERO)

    def read(self, key: str) -> Counters:
        with self._lock:
            return self._counters.get(key) or Counters()

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._counters.clear()
                self._expires.clear()
            else:
                self._counters.pop(key, None)
                self._expires.pop(key, None)

    def _sweep(self, now: float) -> None:
        """Drop every expired key with nothing held (per-run and per-session keys pile up otherwise)."""
        for key in [k for k, exp in self._expires.items() if exp <= now]:
            c = self._counters.get(key)
            if c is None or not any(c.held):
                self._counters.pop(key, None)
                self._expires.pop(key, None)

    def _get(self, key: str, now: float) -> Counters:
        exp = self._expires.get(key)
        if exp is not None and exp <= now:
            self._counters.pop(key, None)
            self._expires.pop(key, None)
        return self._counters.get(key) or Counters()
