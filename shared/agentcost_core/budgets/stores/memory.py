"""The in-process counter store: one lock, a dict of counters. Threads and asyncio tasks of one
process share it; it needs no server and never fails, so it has no failure mode to choose."""

from __future__ import annotations

import heapq
import threading
import time
from typing import Sequence

from .base import ZERO, Claim, Counters, CounterStore, Lease, ReserveResult, Vector, add, fits

__all__ = ["MemoryStore"]

_HELD_RECHECK = 60.0  # seconds before a key past its period but still held is looked at again


class MemoryStore(CounterStore):
    """``memory://``: counters for this process only. Periods roll over by key (the key names
    its day / month). A key whose period has ended (its ``ttl`` has passed: the day, the month, a
    run's day or a session's 7 idle days) is dropped at the next reservation after that moment,
    unless a reservation still holds on it (then at the next check, a minute later);
    :meth:`key_count` tells how many keys are kept."""

    leases = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, Counters] = {}
        self._expires: dict[str, float] = {}
        #: When keys' periods end: a heap of (expiry, key), at most one live entry per key (the one
        #: ``_queued`` names); an entry whose key was extended since is moved on when it comes up.
        self._ends: list[tuple[float, str]] = []
        self._queued: dict[str, float] = {}
        #: Leased holds: key -> lease id -> (amounts, expires); and per key, the earliest expiry.
        self._holds: dict[str, dict[str, tuple[Vector, float]]] = {}
        self._next_expiry: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._counters)})"

    def reserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        with self._lock:
            if self._ends and self._ends[0][0] <= now:
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
                    if claim.key not in self._queued:
                        self._queue(claim.key, now + claim.ttl)
                if lease is not None:
                    holds = self._holds.setdefault(claim.key, {})
                    amounts = add(holds[lease.id][0], claim.amounts) if lease.id in holds else claim.amounts
                    holds[lease.id] = (amounts, lease.expires)
                    self._next_expiry[claim.key] = min(self._next_expiry.get(claim.key, lease.expires), lease.expires)
            return ReserveResult(True, tuple(after))

    async def areserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        return self.reserve(claims, now, lease)  # a lock held for microseconds: no thread hop

    def settle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        with self._lock:
            out = []
            for claim in claims:
                c = self._counters.get(claim.key)
                if c is None:  # settled after its period was dropped: the key ends a period from now
                    c = Counters()
                    if claim.ttl is not None:
                        self._expires[claim.key] = time.time() + claim.ttl
                        self._queue(claim.key, self._expires[claim.key])
                held = add(c.held, self._take_hold(claim, lease_id), -1)
                new = Counters(add(c.spent, actual), tuple(max(h, 0) for h in held), c.started)  # type: ignore[arg-type]
                self._counters[claim.key] = new
                out.append(new)
            return tuple(out)

    async def asettle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        return self.settle(claims, actual, lease_id)

    async def arelease(self, claims: Sequence[Claim], lease_id: str | None = None) -> tuple[Counters, ...]:
        return self.settle(claims, ZERO, lease_id)

    def renew(self, claims: Sequence[Claim], lease_id: str, expires: float) -> bool:
        renewed = False
        with self._lock:
            for claim in claims:
                holds = self._holds.get(claim.key)
                if holds and lease_id in holds:
                    holds[lease_id] = (holds[lease_id][0], expires)
                    renewed = True
        return renewed

    def _take_hold(self, claim: Claim, lease_id: str | None) -> Vector:
        """What settling ``claim`` takes off ``held``: its lease's hold (once), or its amounts."""
        if lease_id is None:
            return claim.amounts
        holds = self._holds.get(claim.key)
        taken = holds.pop(lease_id, None) if holds else None
        if holds is not None and not holds:
            del self._holds[claim.key]
            self._next_expiry.pop(claim.key, None)
        return ZERO if taken is None else taken[0]

    def _sweep_leases(self, key: str, now: float) -> None:
        """Take the expired leases of ``key`` off its held amounts."""
        if self._next_expiry.get(key, now + 1) > now:
            return
        holds = self._holds[key]
        c = self._counters.get(key) or Counters()
        held = c.held
        for lease_id, (amounts, expires) in list(holds.items()):
            if expires <= now:
                held = add(held, amounts, -1)
                del holds[lease_id]
        self._counters[key] = Counters(c.spent, tuple(max(h, 0) for h in held), c.started)  # type: ignore[arg-type]
        if holds:
            self._next_expiry[key] = min(exp for _, exp in holds.values())
        else:
            del self._holds[key]
            del self._next_expiry[key]

    def read(self, key: str, now: float | None = None) -> Counters:
        with self._lock:
            if key in self._next_expiry:
                self._sweep_leases(key, time.time() if now is None else now)
            return self._counters.get(key) or Counters()

    def key_count(self, now: float | None = None) -> int:
        """How many counter keys this store keeps, once the keys whose period ended by ``now``
        (default: the wall clock) are dropped."""
        now = time.time() if now is None else now
        with self._lock:
            self._sweep(now)
            return len(self._counters)

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._counters.clear()
                self._expires.clear()
                self._holds.clear()
                self._next_expiry.clear()
                self._ends.clear()
                self._queued.clear()
            else:
                self._drop(key)

    def _queue(self, key: str, when: float) -> None:
        self._queued[key] = when
        heapq.heappush(self._ends, (when, key))

    def _sweep(self, now: float) -> None:
        """Drop every key whose period ended by ``now`` and that nothing holds on (per-run and
        per-session keys would pile up otherwise); a key still held is looked at again in a minute."""
        ends = self._ends
        while ends and ends[0][0] <= now:
            when, key = heapq.heappop(ends)
            if self._queued.get(key) != when:
                continue  # a stale entry: the key was dropped or queued again since
            del self._queued[key]
            exp = self._expires.get(key)
            if exp is None:
                continue
            if exp > now:  # extended since it was queued
                self._queue(key, exp)
                continue
            c = self._counters.get(key)
            if c is not None and any(c.held):
                self._queue(key, now + _HELD_RECHECK)
            else:
                self._drop(key)

    def _drop(self, key: str) -> None:
        self._counters.pop(key, None)
        self._expires.pop(key, None)
        self._holds.pop(key, None)
        self._next_expiry.pop(key, None)
        self._queued.pop(key, None)  # its heap entry is stale now

    def _get(self, key: str, now: float) -> Counters:
        exp = self._expires.get(key)
        if exp is not None and exp <= now:
            self._drop(key)  # its period is over: a fresh key, its leases with it
        elif key in self._next_expiry:
            self._sweep_leases(key, now)
        return self._counters.get(key) or Counters()
