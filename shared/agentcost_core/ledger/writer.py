"""The bounded background writer that keeps ledger inserts off the caller's thread.

Producers append to a deque; the writer thread stores it in batches of at most ``batch_size``.
It writes as soon as a batch is full and at the latest ``interval_s`` after the queue stopped
being empty (a time-based flush), then keeps writing batch after batch while events are queued,
taking and releasing its lock per batch. So an event is committed within about ``interval_s`` plus
the time to write what was queued before it, even next to a CPU-bound recording thread (the
backends write hundreds of rows per statement, so the writer needs the GIL only a few times per
batch). ``flush()`` stores the events queued when it is called — not those appended while it
runs, so it returns even while producers keep recording.

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
        when_empty: Callable[[], None] | None = None,
        name: str = "agentcost-ledger-writer",
    ) -> None:
        """``write`` stores a batch (it should not raise; what it raises is logged and counted in
        :attr:`write_errors`). ``when_empty`` runs, under the writer's lock, each time the queue
        has been stored to the last event (the spool truncates its file there)."""
        self._write = write
        self._queue: deque[CostEvent] = deque()
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._full_queue_wait_s = full_queue_wait_s
        self._when_empty = when_empty
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._io_lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        self.write_errors = 0
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
    def _write_batch(self, limit: int) -> int:
        """Store up to ``limit`` queued events (at most one batch). Caller holds ``_io_lock``."""
        batch: list[CostEvent] = []
        queue = self._queue
        while queue and len(batch) < limit:
            batch.append(queue.popleft())
        if batch:
            try:
                self._write(batch)
            except Exception:
                self.write_errors += 1
                logger.exception("agentcost ledger write failed; %d event(s) lost", len(batch))
            with self._room:
                self._room.notify_all()
        if not queue and self._when_empty is not None:
            self._when_empty()
        return len(batch)

    def _run(self) -> None:
        while not self._closed:
            if len(self._queue) < self._batch_size:
                # a time-based flush: a partial batch waits at most one interval
                self._wake.wait(self._interval_s)
                self._wake.clear()
            with self._io_lock:
                self._write_batch(self._batch_size)

    def flush(self) -> None:
        """Store every event queued before this call."""
        with self._io_lock:
            left = len(self._queue)
            while left > 0:
                written = self._write_batch(min(left, self._batch_size))
                if not written:
                    break
                left -= written

    def close(self) -> None:
        _WRITERS.discard(self)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
        with self._io_lock:
            while self._write_batch(self._batch_size):
                pass
