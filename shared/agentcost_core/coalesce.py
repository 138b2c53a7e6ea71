"""Request coalescing: identical calls in flight at the same time make one provider call.

The first caller of a key is the flight's **owner** and makes the call; every caller of the same
key that arrives while it is in flight **waits** for the owner's result instead of calling too.
Threads and asyncio tasks (of any event loop) share flights in one process; with ``redis=`` the
processes sharing that Redis share them as well (a lock key with an owner token and a lease, a
result key per flight, a pub/sub channel that wakes the waiters, and a bounded poll so a crashed
owner is noticed when its lease ends).

    coalescer = Coalescer(timeout=60)
    value, coalesced = coalescer.run(key, lambda: client.chat.completions.create(**request))

``key`` is the caller's: it must cover everything that changes the answer (model, messages,
tools, parameters, tenant scope); :class:`~agentcost_core.response_cache` builds it for LLM calls.

Rules, in order:

* **Timeout** — a waiter waits at most ``timeout`` seconds, then calls on its own.
* **The owner fails** with an exception raised by the call (a provider error, a timeout): the
  waiters in this process get the same exception — one failing call is one failure, not N, as
  with Go's ``singleflight``; waiters in other processes cannot receive a Python exception, so
  they call again through the coalescer (one of them becomes the new owner).
* **The owner is cancelled** (asyncio cancellation, ``KeyboardInterrupt``) or its process dies:
  the call produced nothing to share; the waiters go through the coalescer again, and one of
  them becomes the new owner (no stampede).
* **Redis is unreachable**: the caller coalesces within its process only (logged, counted in
  :attr:`Coalescer.internal_errors`); the coalescer never breaks a call.

A waiter's result is the owner's object itself (in-process) or a decoded copy (across processes):
treat it as read-only. Record a waiter's call through the recorder with :func:`coalesced`
(a cache hit whose ``saved`` is what the call would have cost; budgets are charged $0).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .call import Outcome
from .errors import ConfigurationError

__all__ = ["Coalescer", "Flight", "FlightTimeout", "coalesced"]

logger = logging.getLogger("agentcost")
T = TypeVar("T")


class FlightTimeout(Exception):
    """A waiter waited ``timeout`` seconds without a result (:meth:`Coalescer.run` then calls on its own)."""


class _Retry(Exception):
    """The owner ended without a result to share: go through the coalescer again."""


def coalesced(outcome: Outcome) -> Outcome:
    """The :class:`Outcome` of a waiter: the owner's, marked as a cache hit of the coalescing
    layer (``extra["cache"] == "coalesced"``). The accountant prices it as ``saved``, costs $0,
    and the budgets settle it at $0."""
    return dataclasses.replace(outcome, cache_hit=True, extra={**(outcome.extra or {}), "cache": "coalesced"},
                               latency_s=None, prompt=None)  # fmt: skip


class _State:
    """One flight's in-process state, shared by its owner and waiters."""

    __slots__ = ("done", "error", "futures", "retry", "value", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.retry = False
        self.waiters = 0
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []


def _settle_future(fut: asyncio.Future[Any], state: _State) -> None:
    if fut.done():
        return
    if state.retry:
        fut.set_exception(_Retry())
    elif state.error is not None:
        fut.set_exception(state.error)
    else:
        fut.set_result(state.value)


class Flight:
    """One caller's part in the flight of ``key``: the owner (``owner`` True) must end it with
    :meth:`resolve` or :meth:`fail` (always, in ``finally``); a waiter calls :meth:`wait` or
    ``await`` :meth:`wait_async`."""

    __slots__ = ("_coalescer", "_state", "key", "owner")

    def __init__(self, coalescer: Coalescer, key: str, state: _State, owner: bool) -> None:
        self._coalescer = coalescer
        self._state = state
        self.key = key
        self.owner = owner

    def __repr__(self) -> str:
        return f"Flight({self.key!r}, owner={self.owner})"

    # --- the owner --------------------------------------------------------------------------
    def resolve(self, value: Any) -> None:
        """The owner's result: every waiter gets ``value``."""
        self._end(value=value)

    def fail(self, error: BaseException) -> None:
        """The owner's call raised ``error``: an ``Exception`` is shared with the waiters; anything
        else (cancellation, interrupts) sends them through the coalescer again."""
        if isinstance(error, Exception) and not isinstance(error, _Retry):
            self._end(error=error)
        else:
            self._end(retry=True)

    def abandon(self) -> None:
        """The owner gives the flight up without a result (the waiters go through the coalescer again)."""
        self._end(retry=True)

    def _end(self, *, value: Any = None, error: BaseException | None = None, retry: bool = False) -> None:
        if not self.owner:
            raise RuntimeError("only the owner of a flight ends it")
        state = self._state
        if self._coalescer.remote is not None:  # a no-op unless this process holds the key's Redis lock
            self._coalescer._remote_end(self.key, value, ok=error is None and not retry)
        self._coalescer._land(self.key, state)
        with self._coalescer._lock:
            if state.done.is_set():
                return
            state.value, state.error, state.retry = value, error, retry
            state.done.set()
            futures, state.futures = state.futures, []
        for loop, fut in futures:
            try:
                loop.call_soon_threadsafe(_settle_future, fut, state)
            except RuntimeError:  # that waiter's event loop is closed: nobody is waiting there
                pass

    # --- a waiter ---------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Any:
        """The owner's result; its exception; :class:`FlightTimeout` after ``timeout`` seconds."""
        state = self._state
        try:
            if not state.done.wait(timeout):
                raise FlightTimeout(f"no result for {self.key!r} within {timeout} s")
        finally:
            self._coalescer._left(state)
        if state.retry:
            raise _Retry
        if state.error is not None:
            raise state.error
        return state.value

    async def wait_async(self, timeout: float | None = None) -> Any:
        """:meth:`wait` without blocking the event loop."""
        state = self._state
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._coalescer._lock:
            if state.done.is_set():
                _settle_future(fut, state)
            else:
                state.futures.append((loop, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            if fut.done() and not fut.cancelled():
                raise  # the owner's own TimeoutError, shared
            raise FlightTimeout(f"no result for {self.key!r} within {timeout} s") from None
        finally:
            self._coalescer._left(state)


class Coalescer:
    """``Coalescer(*, timeout=60.0, redis=None, encode=None, decode=None, namespace="agentcost:flight",
    result_ttl=30.0)``.

    ``timeout``: how long a waiter waits before calling on its own. ``redis``: a URL or a
    ``redis.Redis`` client to coalesce across processes; values then cross as text, through
    ``encode`` / ``decode`` (JSON by default). ``result_ttl``: how long a finished flight's result
    stays readable in Redis for waiters that are still waking up.
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        redis: Any = None,
        encode: Callable[[Any], str | bytes] | None = None,
        decode: Callable[[str | bytes], Any] | None = None,
        namespace: str = "agentcost:flight",
        result_ttl: float = 30.0,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._flights: dict[str, _State] = {}
        self.internal_errors = 0
        self.remote: Any = None
        if redis is not None:
            from .coalesce_redis import RedisFlights

            self.remote = RedisFlights(redis, encode=encode, decode=decode, namespace=namespace,
                                       result_ttl=result_ttl, lease=self.timeout)  # fmt: skip
        elif encode is not None or decode is not None:
            raise ConfigurationError("encode= and decode= are for values crossing processes: pass redis= too")

    def __repr__(self) -> str:
        return f"Coalescer(timeout={self.timeout}, redis={self.remote!r}, in_flight={len(self._flights)})"

    # --- flights ----------------------------------------------------------------------------
    def begin(self, key: str) -> Flight:
        """Join the flight of ``key`` in this process: its owner when none is in flight."""
        if not isinstance(key, str):
            raise TypeError(f"a flight key is text, got {type(key).__name__}")
        with self._lock:
            state = self._flights.get(key)
            if state is None:
                state = self._flights[key] = _State()
                return Flight(self, key, state, True)
            state.waiters += 1
            return Flight(self, key, state, False)

    def claim(self, key: str) -> Flight | None:
        """The flight of ``key`` as its owner, when nobody in this process has it in flight; else None.
        Never waits, nor joins across processes (its end is then this process's only): for a caller
        that already owns another flight, which must never wait on a flight that may wait on its own."""
        if not isinstance(key, str):
            raise TypeError(f"a flight key is text, got {type(key).__name__}")
        with self._lock:
            if key in self._flights:
                return None
            state = self._flights[key] = _State()
            return Flight(self, key, state, True)

    def join(self, key: str) -> Flight:
        """:meth:`begin` across processes too, for a lookup-then-update protocol (an LLM cache's
        ``lookup`` / ``update``). With Redis, this process's owner of ``key`` first joins the flight
        across processes (blocking up to ``timeout``): when another process's call produced the
        result, the returned flight is a waiter whose :meth:`Flight.wait` returns it at once; else
        it is the owner, and its :meth:`Flight.resolve` / :meth:`Flight.fail` also end the
        flight in Redis."""
        flight = self.begin(key)
        if not flight.owner or self.remote is None:
            return flight
        joined = self._remote_join(key, time.monotonic() + self.timeout)
        if joined is None:
            return flight
        with self._lock:
            flight._state.waiters += 1  # the caller itself now waits on the flight it resolves
        flight.resolve(joined[0])
        return Flight(self, key, flight._state, False)

    def waiting(self, key: str | None = None) -> int:
        """How many callers wait for the flight of ``key`` (None: for any flight): in this process,
        plus (with Redis) the processes waiting for another process's flight."""
        with self._lock:
            if key is None:
                local = sum(state.waiters for state in self._flights.values())
            else:
                state = self._flights.get(key)
                local = state.waiters if state is not None else 0
        if self.remote is None:
            return local
        try:
            return local + (self.remote.waiting(key) if key is not None else self.remote.waiting_all())
        except Exception as e:  # noqa: BLE001 - an observer's question: Redis down counts as none
            self._internal_error("counting waiters", e)
            return local

    def _land(self, key: str, state: _State) -> None:
        with self._lock:
            if self._flights.get(key) is state:
                del self._flights[key]

    def _left(self, state: _State) -> None:
        with self._lock:
            state.waiters -= 1

    # --- the call ---------------------------------------------------------------------------
    def run(self, key: str, call: Callable[[], T]) -> tuple[T, bool]:
        """``(result, coalesced)``: ``call()``'s result, made once for every caller of ``key`` in
        flight at the same time; ``coalesced`` is True when another caller's call produced it."""
        deadline = time.monotonic() + self.timeout
        while True:
            flight = self.begin(key)
            if flight.owner:
                return self._own(flight, call, deadline)
            left = deadline - time.monotonic()
            if left <= 0:
                self._left(flight._state)
                return call(), False
            try:
                return flight.wait(left), True
            except _Retry:
                continue
            except FlightTimeout:
                return call(), False

    async def arun(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """:meth:`run` for a coroutine function (waiting never blocks the event loop)."""
        deadline = time.monotonic() + self.timeout
        while True:
            flight = self.begin(key)
            if flight.owner:
                return await self._aown(flight, call, deadline)
            left = deadline - time.monotonic()
            if left <= 0:
                self._left(flight._state)
                return await call(), False
            try:
                return await flight.wait_async(left), True
            except _Retry:
                continue
            except FlightTimeout:
                return await call(), False

    def _own(self, flight: Flight, call: Callable[[], T], deadline: float) -> tuple[T, bool]:
        try:
            if self.remote is not None:
                joined = self._remote_join(flight.key, deadline)
                if joined is not None:
                    flight.resolve(joined[0])
                    return joined[0], True
                value = self._remote_call(flight.key, call)
            else:
                value = call()
        except BaseException as e:
            flight.fail(e)
            raise
        flight.resolve(value)
        return value, False

    async def _aown(self, flight: Flight, call: Callable[[], Awaitable[T]], deadline: float) -> tuple[T, bool]:
        try:
            if self.remote is not None:
                joined = await asyncio.to_thread(self._remote_join, flight.key, deadline)
                if joined is not None:
                    flight.resolve(joined[0])
                    return joined[0], True
                value = await self._aremote_call(flight.key, call)
            else:
                value = await call()
        except BaseException as e:
            flight.fail(e)
            raise
        flight.resolve(value)
        return value, False

    # --- across processes -------------------------------------------------------------------
    def _remote_join(self, key: str, deadline: float) -> tuple[Any] | None:
        """This process's owner of ``key`` joins the flight across processes: ``(value,)`` when
        another process's call produced it, None when this process must call (it holds the lock,
        waited in vain, or Redis failed)."""
        try:
            return self.remote.join(key, deadline)  # type: ignore[no-any-return]
        except Exception as e:  # noqa: BLE001 - Redis down: coalesce within this process only
            self._internal_error("joining a flight in Redis", e)
            return None

    def _remote_call(self, key: str, call: Callable[[], T]) -> T:
        try:
            value = call()
        except BaseException:
            self._remote_end(key, None, ok=False)
            raise
        self._remote_end(key, value, ok=True)
        return value

    async def _aremote_call(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await call()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._remote_end, key, None, ok=False))
            raise
        await asyncio.to_thread(self._remote_end, key, value, ok=True)
        return value

    def _remote_end(self, key: str, value: Any, *, ok: bool) -> None:
        try:
            self.remote.end(key, value, ok=ok)
        except Exception as e:  # noqa: BLE001 - the remote waiters will notice the lease end
            self._internal_error("ending a flight in Redis", e)

    def _internal_error(self, where: str, exc: BaseException) -> None:
        self.internal_errors += 1
        logger.error("agentcost internal error in request coalescing (%s): %r", where, exc, exc_info=exc)
