"""Work done off the call path: one daemon thread per outbox runs submitted jobs in order, from a
bounded queue. Submitting never blocks: when the queue is full the job is dropped and counted."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["Outbox"]

logger = logging.getLogger("agentcost.alerts")


class Outbox:
    """``Outbox(name, maxsize=1000)``: :meth:`submit` a job; :meth:`flush` waits for the jobs so far."""

    def __init__(self, name: str, *, maxsize: int = 1000) -> None:
        self.name = name
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._submitted = 0
        self._finished = 0
        #: Jobs dropped because the queue was full.
        self.dropped = 0

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job`` (True), or drop it when the queue is full (False, logged); never blocks."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.dropped += 1
                logger.warning("%s: queue full, an alert was dropped (%d so far)", self.name, self.dropped)
                return False
            self._submitted += 1
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far has run (True) or ``timeout`` seconds passed (False)."""
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception as e:  # noqa: BLE001 - a job reports its own failures; the thread never dies
                logger.error("%s: a job failed: %r", self.name, e)
            finally:
                with self._done:
                    self._finished += 1
                    self._done.notify_all()
