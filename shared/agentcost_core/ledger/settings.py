"""Checking a ledger's numeric settings at construction: a bad one fails loudly there, never later
in the writer thread (``flush_interval_s=float("inf")`` would make the thread's wait overflow)."""

from __future__ import annotations

import math
import threading

from ..errors import LedgerURLError

__all__ = ["check_count", "check_seconds"]


def check_seconds(name: str, value: object, *, zero_ok: bool = False) -> float:
    """``value`` as seconds: a finite number > 0 (``zero_ok``: >= 0), else :class:`LedgerURLError`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
        or value > threading.TIMEOUT_MAX  # ~292 years: beyond it a thread cannot wait that long
    ):
        wanted = ">= 0" if zero_ok else "> 0"
        raise LedgerURLError(f"ledger setting {name} must be a finite number of seconds {wanted}, got {value!r}")
    return float(value)


def check_count(name: str, value: object) -> int:
    """``value`` as a count: a whole number > 0, else :class:`LedgerURLError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LedgerURLError(f"ledger setting {name} must be a whole number > 0, got {value!r}")
    return value
