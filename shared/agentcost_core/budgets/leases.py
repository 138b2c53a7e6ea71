"""How a hold ends when no settle or release ever comes: leases, their renewal, and tasks.

A call's reservation normally ends in ``settle`` or ``release``. Two things can take that signal
away: the process dies mid-call (a crash, a kill, a lost host), or the call's asyncio task is
cancelled on a path that never reports back (LangChain does not call ``on_llm_error`` when the
outer task is cancelled). :class:`OpenReservations` covers both for one enforcer:

* **Leases.** In a shared store (SQLite, Redis, PostgreSQL) each reservation is a lease: its hold
  expires ``lease_seconds`` after it was made or last renewed, and the store sweeps expired holds
  away. While a call is alive (its :class:`~agentcost_core.budgets.Reservation` is still referenced
  by the code running it) a daemon thread, one per enforcer and started with the first lease,
  renews it every ``lease_seconds / 3``. A dead process renews nothing, so no hold outlives its call
  by more than ``lease_seconds``.
* **Tasks.** A reservation made inside an asyncio task is released when that task finishes without
  having settled or released it (a done-callback on the task; the release runs off the loop).

Each reservation ends exactly once: :meth:`OpenReservations.close` decides who ends it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .outage_log import OUTAGES
from .stores.base import BudgetStoreUnavailable, Claim, CounterStore, Lease, takes_leases

if TYPE_CHECKING:
    from .reservation import Reservation

__all__ = ["OpenReservations", "leased"]

logger = logging.getLogger("agentcost.budgets")


def release_claims(store: CounterStore, claims: Sequence[Claim], lease_id: str | None) -> None:
    """Release ``claims`` on ``store``, by their lease when the store takes leases."""
    if lease_id is not None and leased(store):
        store.release(claims, lease_id)
    else:
        store.release(claims)


def leased(store: CounterStore) -> bool:
    """True when reservations in ``store`` are leases (shared stores that keep leased holds)."""
    return takes_leases(store)


class OpenReservations:
    """The reservations of one enforcer that are neither settled nor released yet."""

    def __init__(
        self,
        lease_seconds: float,
        clock: Callable[[], float],
        abandon: Callable[[asyncio.AbstractEventLoop, list[Reservation]], None],
    ) -> None:
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._abandon = abandon  # ends the reservations of a task that finished without ending them
        self._lock = threading.Lock()
        self._leases: weakref.WeakValueDictionary[str, Reservation] = weakref.WeakValueDictionary()
        self._by_task: dict[asyncio.Task[Any], dict[int, Reservation]] = {}
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._renewer_pid = 0  # a child process forked from ours has no renewer thread: it starts its own

    # --- leases ----------------------------------------------------------------------------
    def new_lease_id(self) -> str:
        return uuid.uuid4().hex

    def lease(self, res: Reservation, now: float) -> Lease:
        """The lease to reserve ``res`` under, from ``now``; ``res`` is renewed from here on."""
        assert res.lease_id is not None
        with self._lock:
            self._leases[res.lease_id] = res
            if self._renewer is None or self._renewer_pid != os.getpid():
                self._start_renewer()
        return Lease(res.lease_id, now + self.lease_seconds)

    def _start_renewer(self) -> None:
        me = weakref.ref(self)
        period = self.lease_seconds / 3
        stop = self._stop

        def loop() -> None:
            while not stop.wait(period):
                keeper = me()
                if keeper is None:
                    return
                keeper.renew()
                del keeper

        first = self._renewer is None
        self._renewer = threading.Thread(target=loop, name="agentcost-lease-renewer", daemon=True)
        self._renewer_pid = os.getpid()
        self._renewer.start()
        if first:
            weakref.finalize(self, stop.set)  # the enforcer is gone: so is its renewer

    def renew(self) -> int:
        """Push the lease of every live open reservation ``lease_seconds`` past now (the renewer
        thread calls this every ``lease_seconds / 3``); returns how many were renewed."""
        with self._lock:
            live = list(self._leases.values())
        expires = self.clock() + self.lease_seconds
        renewed = 0
        for res in live:
            if res.done:
                continue
            for store, claims, _ in list(res.groups):
                if not leased(store):
                    continue
                try:
                    if store.renew(claims, res.lease_id, expires):  # type: ignore[arg-type]
                        renewed += 1
                    elif not res.done:
                        logger.warning(
                            "agentcost: the lease of a running call in %r had already expired: its hold is "
                            "gone (the call outlived lease_seconds without a renewal)", store,
                        )  # fmt: skip
                except BudgetStoreUnavailable as e:  # the store is down: the next renewal tries again
                    OUTAGES.failed(store, "could not renew a budget lease", e, level=logging.ERROR)
                except Exception as e:
                    logger.error("agentcost: could not renew a budget lease in %r: %r", store, e)
        return renewed

    def stop(self) -> None:
        self._stop.set()

    # --- tasks -----------------------------------------------------------------------------
    def track_task(self, res: Reservation) -> None:
        """Tie ``res`` to the asyncio task running here, if any: released if that task ends first.
        Called on the event loop's thread (a worker thread has no current task: nothing to do)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop in this thread
            return
        if task is None:
            return
        with self._lock:
            if res.done:
                return
            held = self._by_task.get(task)
            first = held is None
            if held is None:
                held = self._by_task[task] = {}
            held[id(res)] = res
            res.task = task
        if first:
            task.add_done_callback(self._task_done)

    def untrack(self, res: Reservation) -> None:
        """``res`` is about to be ended by its own code (e.g. a settle handed to a worker thread):
        the end of its task must no longer release it."""
        with self._lock:
            self._untrack(res)

    def _untrack(self, res: Reservation) -> None:
        task, res.task = res.task, None
        if task is not None:
            held = self._by_task.get(task)
            if held is not None:
                held.pop(id(res), None)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        with self._lock:
            held = self._by_task.pop(task, {})
            left = [r for r in held.values() if not r.done]
            for r in held.values():
                r.task = None
        if left:
            logger.info("agentcost: releasing %d reservation(s) of a task that ended without settling them", len(left))
            self._abandon(task.get_loop(), left)

    # --- ending ----------------------------------------------------------------------------
    def close(self, res: Reservation) -> bool:
        """Mark ``res`` ended; True for the one caller that should settle or release it."""
        with self._lock:
            if res.done:
                return False
            res.done = True
            self._untrack(res)
            if res.lease_id is not None:
                self._leases.pop(res.lease_id, None)
            return True
