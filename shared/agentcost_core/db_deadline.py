"""A client-side deadline for a blocking database call: cut its socket when the time is up.

Shared by every PostgreSQL client of agentcost: the budget store and the ledger.

A stalled PostgreSQL server (a paused process, a link that stopped forwarding) keeps its TCP
connection open and acknowledged: no socket timeout, TCP keepalive or ``tcp_user_timeout`` fires,
and ``statement_timeout`` is enforced by the server that is not running. Only the client can give
up. While a call runs inside :meth:`Watchdog.armed`, one daemon thread (per process, started with
the first alarm) watches its deadline; when it passes, the thread shuts the connection's socket
down (``shutdown(SHUT_RDWR)`` on a duplicate of its descriptor): the blocked call fails at once,
the connection is broken (its pool drops it and the next call opens a fresh one), and the server,
when it runs again, sees the connection closed and rolls back whatever transaction was open on it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Alarm", "Watchdog"]


class Alarm:
    """One armed call: its deadline (``time.monotonic()``) and whether the watchdog cut it."""

    __slots__ = ("deadline", "fileno", "fired")

    def __init__(self, deadline: float, fileno: int) -> None:
        self.deadline = deadline
        self.fileno = fileno
        self.fired = False


def _cut(fileno: int) -> None:
    try:
        sock = socket.socket(fileno=os.dup(fileno))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()  # closes the duplicate only; the connection's own descriptor stays for its owner


class Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._alarms: set[Alarm] = set()
        self._pid = 0  # the process the thread runs in (a forked child starts its own)

    @contextmanager
    def armed(self, fileno: int, deadline: float) -> Iterator[Alarm]:
        """Cut the socket ``fileno`` if the block has not ended by ``deadline`` (monotonic)."""
        alarm = Alarm(deadline, fileno)
        with self._cond:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._alarms = set()
                threading.Thread(target=self._watch, name="agentcost-db-deadline", daemon=True).start()
            self._alarms.add(alarm)
            self._cond.notify()
        try:
            yield alarm
        finally:
            with self._cond:  # disarmed before the caller may close (and the OS reuse) the descriptor
                self._alarms.discard(alarm)

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                soonest = None
                for alarm in list(self._alarms):
                    if alarm.deadline <= now:
                        self._alarms.discard(alarm)
                        alarm.fired = True
                        _cut(alarm.fileno)
                    elif soonest is None or alarm.deadline < soonest:
                        soonest = alarm.deadline
                self._cond.wait(None if soonest is None else soonest - now)


#: The one watchdog of this process (its thread sleeps until an armed call needs it).
WATCHDOG = Watchdog()
