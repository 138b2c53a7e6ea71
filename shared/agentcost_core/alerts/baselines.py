"""Spend over time for one key (an agent and feature), in minute buckets: the recent window (the
last 15 minutes) and the baseline before it (the rest of the last 24 hours), kept as running
totals so adding a call and reading the averages cost O(1) amortized."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

__all__ = ["SpendWindow"]

_ZERO = Decimal(0)


class SpendWindow:
    """``recent`` covers ``[now - window, now]``, ``baseline`` ``[now - horizon, now - window)``,
    both in whole minutes of epoch time; ``first`` is the earliest minute ever added (how much
    history the baseline has)."""

    __slots__ = ("_baseline", "_recent", "baseline_count", "baseline_sum", "first", "horizon", "recent_count",
                 "recent_sum", "window")  # fmt: skip

    def __init__(self, *, window_minutes: int, horizon_minutes: int) -> None:
        self.window = window_minutes
        self.horizon = horizon_minutes
        self._recent: deque[list] = deque()  # [minute, count, sum], oldest first
        self._baseline: deque[list] = deque()
        self.recent_count = 0
        self.recent_sum = _ZERO
        self.baseline_count = 0
        self.baseline_sum = _ZERO
        self.first: int | None = None

    def advance(self, minute: int) -> None:
        """Move buckets that left the recent window into the baseline; drop those past the horizon."""
        edge = minute - self.window
        while self._recent and self._recent[0][0] < edge:
            bucket = self._recent.popleft()
            self.recent_count -= bucket[1]
            self.recent_sum -= bucket[2]
            self._baseline.append(bucket)
            self.baseline_count += bucket[1]
            self.baseline_sum += bucket[2]
        oldest = minute - self.horizon
        while self._baseline and self._baseline[0][0] < oldest:
            bucket = self._baseline.popleft()
            self.baseline_count -= bucket[1]
            self.baseline_sum -= bucket[2]

    def add(self, minute: int, cost: Decimal) -> None:
        """Count one call at ``minute`` (a call older than the newest bucket joins the newest)."""
        self.advance(minute)
        if self.first is None or minute < self.first:
            self.first = minute
        if self._recent and self._recent[-1][0] >= minute:
            self._recent[-1][1] += 1
            self._recent[-1][2] += cost
        else:
            self._recent.append([minute, 1, cost])
        self.recent_count += 1
        self.recent_sum += cost

    @property
    def count(self) -> int:
        return self.recent_count + self.baseline_count

    @property
    def average(self) -> Decimal | None:
        """Mean cost per call over the whole horizon (None without calls)."""
        n = self.count
        return (self.recent_sum + self.baseline_sum) / n if n else None

    def baseline_minutes(self, minute: int) -> int:
        """How many minutes of history the baseline covers at ``minute``."""
        if self.first is None:
            return 0
        start = max(self.first, minute - self.horizon)
        return max(0, minute - self.window - start)

    @property
    def idle(self) -> bool:
        return not self._recent and not self._baseline
