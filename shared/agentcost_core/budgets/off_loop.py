"""Blocking store I/O run off the event loop, safe to cancel.

``await off_loop(fn, *args, undo=undo)`` runs ``fn(*args)`` in the loop's default executor (with the
caller's context variables) and returns its result. Cancelling the awaiting task does not stop the
worker: a store call that is half-way through a network round trip cannot be taken back. Instead:

* the worker always runs to the end (a cancelled settle or release still settles or releases);
* when the awaiting task was cancelled, ``undo(result)`` runs exactly once as soon as the worker
  has a result nobody will receive (a reservation made for a task that is gone is released), in the
  worker thread or, when the result was already there, in another worker (:func:`in_background`):
  never on the event loop;
* the ``CancelledError`` is re-raised.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any, Callable

__all__ = ["in_background", "off_loop"]

logger = logging.getLogger("agentcost.budgets")


class _Handoff:
    """Who undoes a result: the worker (it finished after the waiter left) or the waiter (it left
    after the worker finished). The lock makes it exactly one of the two."""

    def __init__(self, undo: Callable[[Any], None] | None) -> None:
        self.undo = undo
        self.lock = threading.Lock()
        self.abandoned = False
        self.finished = False
        self.result: Any = None

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        result = fn(*args)
        with self.lock:
            self.finished, self.result = True, result
            abandoned = self.abandoned
        if abandoned:
            self._undo(result)
        return result

    def abandon(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:
            self.abandoned = True
            finished, result = self.finished, self.result
        if finished and self.undo is not None:
            in_background(loop, self._undo, result)

    def _undo(self, result: Any) -> None:
        if self.undo is None:
            return
        try:
            self.undo(result)
        except Exception as e:  # the lease still expires: nothing is held for good
            logger.error("agentcost: could not undo the work of a cancelled task: %r", e)


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: no "exception was never retrieved" for an abandoned worker


async def off_loop(fn: Callable[..., Any], *args: Any, undo: Callable[[Any], None] | None = None) -> Any:
    """``fn(*args)`` in a worker thread; see the module docstring for cancellation."""
    loop = asyncio.get_running_loop()
    handoff = _Handoff(undo)
    ctx = contextvars.copy_context()
    fut = loop.run_in_executor(None, ctx.run, handoff.run, fn, args)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        fut.add_done_callback(_consume)
        handoff.abandon(loop)
        raise


def in_background(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Start ``fn(*args)`` off the loop without waiting for it: in the loop's default executor (so
    ``asyncio.run`` waits for it before it returns), or in a thread of its own once that executor
    is shut down."""
    try:
        loop.run_in_executor(None, fn, *args).add_done_callback(_consume)
    except RuntimeError:  # the loop is closed or its executor shut down
        threading.Thread(target=fn, args=args, name="agentcost-background", daemon=True).start()
