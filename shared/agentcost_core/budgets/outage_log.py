"""Logging a budget store outage without flooding the log.

While a shared store cannot be reached, every call that touches it fails the same way: under
``fail_open`` thousands of calls a minute go through unbudgeted. :data:`OUTAGES` writes one WARNING
per store per ``interval`` (60 s), counting the failures it did not write a line for, and one
WARNING when the store answers again, with the outage's total.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

__all__ = ["OUTAGES", "OutageLog"]

logger = logging.getLogger("agentcost.budgets")


@dataclass(slots=True)
class _Outage:
    last_line: float  # time.monotonic() of the last line written
    unlogged: int = 0  # failures since that line
    total: int = 0  # failures since the outage began


class OutageLog:
    """Per store: the first failure is logged, then at most one line per ``interval`` seconds."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._outages: weakref.WeakKeyDictionary[Any, _Outage] = weakref.WeakKeyDictionary()

    def call_failed(self, store: Any, what: str, error: Exception) -> None:
        """A settle or release that failed: an outage (``BudgetStoreUnavailable``) is logged once per
        store per interval, at ERROR (the store cancels the hold when it answers again); anything
        else is logged as it comes."""
        from .stores.base import BudgetStoreUnavailable

        if isinstance(error, BudgetStoreUnavailable):
            self.failed(store, what, error, level=logging.ERROR)
        else:
            logger.error("agentcost: %s in %r: %r", what, store, error)

    def failed(self, store: Any, what: str, error: BaseException | str, *, level: int = logging.WARNING) -> None:
        """``store`` failed a call; ``what`` says what that meant (e.g. "call allowed (fail_open)")."""
        now = time.monotonic()
        with self._lock:
            outage = self._outages.get(store)
            if outage is None:
                outage = self._outages[store] = _Outage(last_line=now)
                unlogged = 0
            elif now - outage.last_line >= self.interval:
                unlogged, outage.unlogged, outage.last_line = outage.unlogged, 0, now
            else:
                outage.unlogged += 1
                outage.total += 1
                return
            outage.total += 1
        more = f" ({unlogged} more failures of this store since the last line)" if unlogged else ""
        logger.log(level, "agentcost budget store unavailable, %s: %s%s", what, error, more)

    def answered(self, store: Any) -> None:
        """``store`` answered a call: if it was down, say so once, with the outage's count."""
        if not self._outages:  # the common case: no outage anywhere, nothing to look up
            return
        with self._lock:
            outage = self._outages.pop(store, None)
        if outage is not None:
            logger.warning("agentcost budget store %r answers again after %d failed call(s)", store, outage.total)

    def down(self, store: Any) -> bool:
        """True while ``store`` has failed a call and not answered one since."""
        with self._lock:
            return store in self._outages


#: The process' outage log (one line per store per interval, whichever enforcer saw the failure).
OUTAGES = OutageLog()
