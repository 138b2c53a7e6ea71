"""A reading kept fresh by a background thread, so the thread that asks never does the I/O.

One daemon thread per owner, started on first use and stopped by :meth:`Refresher.close` (or when
the owner is garbage-collected: the thread holds it only weakly). It reads when asked
(:meth:`request`) and, on its own, once the last reading is ``period`` old by the owner's clock.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

__all__ = ["Refresher"]

logger = logging.getLogger(__name__)


class Refresher:
    """``Refresher(read, period=5.0, clock=time.monotonic, name=...)``; ``read`` is a bound method
    of the owner, held weakly. ``period=0``: read only when asked."""

    def __init__(self, read: Callable[[], None], *, period: float, clock: Callable[[], float], name: str) -> None:
        self._read = weakref.WeakMethod(read)  # type: ignore[arg-type]
        self._period = period
        self._clock = clock
        self._name = name
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wanted = False
        self._busy = False
        self._closed = False
        self._read_at: float | None = None  # the clock when the last reading started
        self.count = 0  # readings completed

    def start(self) -> None:
        """Start the thread (once); the first reading is asked for at once, unless the owner has
        just read (:meth:`read_elsewhere`)."""
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._wanted = self._read_at is None
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        with self._cond:
            return self._thread is not None and self._thread.is_alive() and not self._closed

    def stale(self) -> bool:
        """No reading yet, or the last one is ``period`` old."""
        with self._cond:
            return self._read_at is None or self._clock() - self._read_at >= self._period

    def read_elsewhere(self, started: float) -> None:
        """The owner read on its own thread (from ``started`` by its clock): the next background
        reading is due a period after that, not at once."""
        with self._cond:
            if self._read_at is None or started > self._read_at:
                self._read_at = started

    def request(self) -> None:
        """Ask for a reading now (non-blocking); nothing more when one is already under way."""
        with self._cond:
            if not self._busy:
                self._wanted = True
                self._cond.notify_all()

    def wait(self, *, after: int, timeout: float | None) -> bool:
        """Wait until more than ``after`` readings completed (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count > after or self._closed, timeout) and self.count > after

    def close(self, timeout: float | None = 1.0) -> None:
        """Stop the thread; a reading under way finishes on its own (at most the source timeout)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._wanted:
                    if not self._cond.wait(self._period or None) and self._due():
                        break
                if self._closed:
                    return
                self._wanted = False
                self._busy = True
                started = self._clock()
            read = self._read()
            if read is None:  # the owner is gone
                return
            try:
                read()
            except Exception as e:  # noqa: BLE001 - the owner reports its own errors; never die
                logger.error("%s: background reading failed: %r", self._name, e)
            finally:
                del read
                with self._cond:
                    self._busy = False
                    self._read_at = started
                    self.count += 1
                    self._cond.notify_all()

    def _due(self) -> bool:
        return self._period > 0 and (self._read_at is None or self._clock() - self._read_at >= self._period)
