"""Blocking work that only a running event loop can finish (a helper module beside conftest.py,
not a test module).

``gate.block()`` stands for blocking I/O (an embedding over HTTP, a stalled budget store): it waits
on a ``threading.Event`` that :func:`run_watched`'s heartbeat task sets only after it has itself
ticked a few times while the blocking call was in progress, i.e. after seeing that the event loop
kept running. Run on the loop, the call blocks the heartbeat too, so nobody opens the gate: it
gives up after ``timeout`` seconds (a guard against hanging, not a measure) and records that.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class Gate:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.entered = threading.Event()
        self.opened = threading.Event()
        #: Per blocking call: True when the heartbeat opened the gate (the loop kept running).
        self.released: list[bool] = []
        #: The threads the blocking calls ran in.
        self.threads: list[int] = []

    def block(self) -> None:
        self.threads.append(threading.get_ident())
        self.entered.set()
        self.released.append(self.opened.wait(self.timeout))
        self.opened.clear()

    @property
    def loop_kept_running(self) -> bool:
        return bool(self.released) and all(self.released)


async def run_watched(gate: Gate, work: Awaitable[T], ticks: int = 3) -> T:
    """Await ``work`` while a heartbeat opens ``gate`` for each blocking call, ``ticks`` loop turns
    after the call started."""
    task: asyncio.Future[Any] = asyncio.ensure_future(work)
    seen = 0
    while not task.done():
        if gate.entered.is_set():
            seen += 1
            if seen >= ticks:
                seen = 0
                gate.entered.clear()
                gate.opened.set()
        await asyncio.sleep(0)
    return await task
