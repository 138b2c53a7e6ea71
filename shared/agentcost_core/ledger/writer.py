"""The bounded background writer that keeps ledger inserts off the hot path.

Producers append to a deque (one atomic operation under the GIL) and wake the writer
thread, which drains in batches. ``flush()`` drains what is queued under the same lock the
writer holds while it writes, so when ``flush()`` returns every event enqueued before it is
stored. When the queue is full, producers wait up to ``block_s`` for room and then drop the
event, counting it and logging once per burst: losing a record beats stalling a user's agent.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from typing import Callable, Sequence

from ..events import CostEvent

logger = logging.getLogger("agentcost.ledger")

# Every live writer (its own thread keeps it alive, even when its Ledger is gone): flushed at exit.
_WRITERS: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_WRITERS):
        try:
            writer.flush()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


class BackgroundWriter:
    def __init__(
        self,
        write: Callable[[Sequence[CostEvent]], None],
        *,
        max_queue: int = 100_000,
        batch_size: int = 2_000,
        interval_s: float = 0.2,
        block_s: float = 5.0,
        name: str = "agentcost-ledger-writer",
    ) -> None:
        self._write = write
        self._queue: deque[CostEvent] = deque()
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._quiet_below = min(batch_size - 1, max_queue)  # see put
        self._interval_s = interval_s
        self._block_s = block_s
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._io_lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        self.write_errors = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _WRITERS.add(self)

    # --- producers ----------------------------------------------------------------------
    def put(self, event: CostEvent) -> None:
        q = self._queue
        if len(q) < self._quiet_below:  # the usual case: room in the queue, no full batch to wake for
            q.append(event)
            return
        if len(q) >= self._max_queue and not self._wait_for_room():
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.error("agentcost ledger queue full: %d event(s) dropped so far", self.dropped)
            return
        q.append(event)
        if len(q) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _wait_for_room(self) -> bool:
        self._wake.set()
        with self._room:
            return self._room.wait_for(lambda: len(self._queue) < self._max_queue, timeout=self._block_s)

    @property
    def pending(self) -> int:
        return len(self._queue)

    # --- the writer ---------------------------------------------------------------------
    def _drain(self) -> int:
        """Write everything queued, in batches. Caller holds ``_io_lock``."""
        q = self._queue
        n = 0
        while q:
            batch = []
            pop = q.popleft
            try:
                for _ in range(min(len(q), self._batch_size)):
                    batch.append(pop())
            except IndexError:  # pragma: no cover - another drainer emptied it
                pass
            if not batch:
                break
            try:
                self._write(batch)
                self.written += len(batch)
            except Exception:
                self.write_errors += 1
                logger.exception("agentcost ledger write failed; %d event(s) lost", len(batch))
            n += len(batch)
            with self._room:
                self._room.notify_all()
        return n

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            with self._io_lock:
                self._drain()

    def flush(self) -> None:
        with self._io_lock:
            self._drain()

    def close(self) -> None:
        _WRITERS.discard(self)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()
