"""The bounded background writer that keeps ledger inserts off the caller's thread.

Producers append to a deque and wake the writer thread, which stores the queue in batches.
``flush()`` drains what is queued under the same lock the writer holds while it writes, so
when ``flush()`` returns every event enqueued before it is stored.

When the queue is full (the backend is slower than the producers, or stalled):

* a call from a thread that runs an asyncio event loop never waits: the event is dropped;
* a call from any other thread waits up to ``full_queue_wait_s`` for room, then drops the event.

Every dropped event is counted in :attr:`BackgroundWriter.dropped` (``Ledger.dropped``) and the
first drop logs one warning: losing a record beats stalling a user's agent or event loop.
"""

from __future__ import annotations

import asyncio
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


def on_event_loop() -> bool:
    """True when the calling thread is running an asyncio event loop right now."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class BackgroundWriter:
    def __init__(
        self,
        write: Callable[[Sequence[CostEvent]], None],
        *,
        max_queue: int = 100_000,
        batch_size: int = 2_000,
        interval_s: float = 0.2,
        full_queue_wait_s: float = 5.0,
        name: str = "agentcost-ledger-writer",
    ) -> None:
        self._write = write
        self._queue: deque[CostEvent] = deque()
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._full_queue_wait_s = full_queue_wait_s
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
        """Queue ``event``; when the queue is full, apply the policy in the module docstring."""
        if len(self._queue) >= self._max_queue and not self._wait_for_room():
            self._drop()
            return
        self._queue.append(event)
        if len(self._queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _wait_for_room(self) -> bool:
        self._wake.set()
        if on_event_loop() or self._full_queue_wait_s <= 0:
            return False
        with self._room:
            return self._room.wait_for(lambda: len(self._queue) < self._max_queue, timeout=self._full_queue_wait_s)

    def _drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1:
            logger.warning(
                "agentcost ledger queue full (%d events): dropping events rather than blocking; "
                "Ledger.dropped counts them",
                self._max_queue,
            )

    @property
    def pending(self) -> int:
        return len(self._queue)

    # --- the writer ---------------------------------------------------------------------
    def _drain(self) -> None:
        """Write everything queued, in batches. Caller holds ``_io_lock``."""
        while self._queue:
            batch: list[CostEvent] = []
            while self._queue and len(batch) < self._batch_size:
                batch.append(self._queue.popleft())
            try:
                self._write(batch)
                self.written += len(batch)
            except Exception:
                self.write_errors += 1
                logger.exception("agentcost ledger write failed; %d event(s) lost", len(batch))
            with self._room:
                self._room.notify_all()

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
