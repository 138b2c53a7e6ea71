"""Reservations a shared store gave up on, cancelled once the store answers again.

A reserve that runs out of time on the client may still reach the server and be applied later: a
paused server reads the request from its socket when it resumes, a stalled link delivers it late.
Nobody would ever settle or release that hold (the caller was told the store is unavailable), so it
would sit there until its lease expires. To prevent that, a store that gives up on a leased reserve
records it here, and :class:`PendingCancels` sends a **cancel** for that lease id: release its hold
if the server has applied it; if not, make sure a late apply is not kept (Redis leaves a tombstone
the reserve script checks; in PostgreSQL the late transaction holds the row locks the cancel waits
for, so the cancel runs after it). A cancel is idempotent, so sending one twice, or for a reserve
that never reached the server, changes nothing.

Cancels are retried from a daemon thread every ``retry_every`` seconds while any is pending, and
dropped once their lease has expired (the store sweeps an expired hold by itself). The thread ends
when nothing is pending.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .base import Claim

__all__ = ["CANCEL_HORIZON", "PendingCancels"]

#: Seconds a cancel for a failed settle or release is retried (the store does not know the lease's
#: expiry there; leases last ``lease_seconds``, 120 s by default, after their last renewal).
CANCEL_HORIZON = 600.0

logger = logging.getLogger("agentcost.budgets")


@dataclass(frozen=True, slots=True)
class _Cancel:
    claims: tuple[Claim, ...]
    lease_id: str
    expires: float  # the lease's expiry (wall clock): after it, the store sweeps the hold anyway


class PendingCancels:
    """The cancels one store still has to deliver; ``send(claims, lease_id, expires)`` delivers one
    (and raises when the store cannot be reached)."""

    def __init__(self, send: Callable[[Sequence[Claim], str, float], object], *, retry_every: float = 0.2) -> None:
        self._send = send
        self.retry_every = retry_every
        self._lock = threading.Lock()
        self._pending: dict[str, _Cancel] = {}
        self._worker: threading.Thread | None = None
        self._pid = os.getpid()

    def __len__(self) -> int:
        self._check_fork()
        with self._lock:
            return len(self._pending)

    def add(self, claims: Sequence[Claim], lease_id: str, expires: float) -> None:
        """Cancel lease ``lease_id``'s reservation on ``claims`` as soon as the store answers (until
        ``expires``, when the store sweeps its hold by itself)."""
        self._check_fork()
        with self._lock:
            self._pending[lease_id] = _Cancel(tuple(claims), lease_id, expires)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._retry, name="agentcost-budget-cancels", daemon=True)
                self._worker.start()

    def flush(self) -> int:
        """Send every pending cancel now; returns how many are still pending (the store is still
        unreachable)."""
        self._check_fork()
        with self._lock:
            pending = list(self._pending.values())
        now = time.time()
        for cancel in pending:
            if cancel.expires > now:
                try:
                    self._send(cancel.claims, cancel.lease_id, cancel.expires)
                except Exception:  # still down: the next round tries again
                    break
            with self._lock:
                self._pending.pop(cancel.lease_id, None)
        with self._lock:
            return len(self._pending)

    def _retry(self) -> None:
        stop = threading.Event()  # never set: a plain interruptible wait between rounds
        while True:
            if self.flush() == 0:
                with self._lock:
                    if not self._pending:  # checked under the lock add() starts a new worker under
                        self._worker = None
                        return
            stop.wait(self.retry_every)

    def _check_fork(self) -> None:
        """A child process has no retry thread and must not send its parent's cancels."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._pending = {}
            self._worker = None
            self._pid = os.getpid()
