"""The table of in-flight LLM calls and the span tree they sit in.

LlamaIndex nests LLM spans: ``CustomLLM.achat`` calls ``chat`` which calls ``complete``, and every
level emits its own start / end events for the same provider request. Only the innermost call is a
request; its wrappers must not be counted again. :class:`CallTable` decides this when an LLM call
starts, while every enclosing span is still open:

* **Ancestors.** The span handler keeps ``span id -> parent id`` for open spans. A starting call
  walks up that chain and marks every in-flight LLM call it finds as *outer* (skipped at its end).
  The same walk yields the trace root and the step (the nearest non-LLM span above the outermost
  LLM span).
* **Streams.** A streaming call's span closes as soon as it returns its generator, so a wrapper
  that starts its inner call lazily inside that generator (``CustomLLM.astream_chat``) has no span
  link to it. The span's result is that generator: when a call starts while some in-flight stream
  generator is *running*, a walk up the current thread's Python stack tells exactly whether the new
  call runs inside it; if so the stream is an outer call.

Entries leave on span exit / drop (spans) and on end / error (calls); both tables are bounded so an
abandoned, never-iterated stream cannot leak memory. Plain dict operations only: each is atomic in
CPython, and span ids are unique, so threads and asyncio tasks need no lock.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import AsyncGeneratorType, GeneratorType
from typing import Any, NamedTuple

from agentcost_core.call import ModelCall

__all__ = ["STREAM_TYPES", "CallTable", "PendingCall", "Place", "span_name"]

#: In-flight calls / open spans kept at most; beyond that the oldest entries are dropped.
MAX_PENDING = 10_000
MAX_SPANS = 100_000
MAX_ROUTES = 10_000  # routing decision ids already recorded (one route event per decision)
_MAX_DEPTH = 256  # span-tree walk limit (guards against a cycle in foreign span ids)
_UUID_SUFFIX = 37  # dispatcher span ids are f"{name}-{uuid4()}"
STREAM_TYPES = (GeneratorType, AsyncGeneratorType)


def span_name(span_id: str | None) -> str | None:
    """``"FunctionAgent.take_step"`` from ``"FunctionAgent.take_step-<uuid4>"`` (no parsing beyond a slice)."""
    if not span_id:
        return None
    if len(span_id) > _UUID_SUFFIX and span_id[-_UUID_SUFFIX] == "-":
        return span_id[:-_UUID_SUFFIX]
    return span_id


@dataclass(slots=True, eq=False)
class PendingCall:
    """One LLM call between its start event and its end (or error): the call as the core sees it,
    and what the handler needs until it ends."""

    call: ModelCall
    messages: Any  # the framework's message list (None for a completion), read for an estimate
    tags: dict[str, Any] | None  # the instrument_tags of the call (a RouterLLM's decision among them)
    t0: float
    outer: bool = False  # True once an inner LLM call is seen: this call is a wrapper, not counted
    last: Any = None  # last streamed chunk
    first_chunk: float | None = None  # when the first streamed chunk arrived (perf_counter)
    gen: Any = None  # the stream generator, once the span returned one


class Place(NamedTuple):
    """Where a starting call sits in the span tree (a named tuple: built on every LLM call, and
    cheaper to build than a frozen dataclass)."""

    parent_id: str | None
    root: str | None  # the outermost open span (the trace, unless a workflow run id names it)
    step: str | None  # the nearest non-LLM span above the outermost LLM span, by name


class CallTable:
    """Span parents and in-flight LLM calls, shared by the span handler and the event handler."""

    __slots__ = ("parents", "calls", "streams", "routes")

    def __init__(self) -> None:
        self.parents: dict[str | None, str | None] = {}
        self.calls: dict[str | None, PendingCall] = {}
        # In-flight calls whose span already exited with a generator (streams being consumed).
        self.streams: dict[str | None, PendingCall] = {}
        self.routes: dict[Any, None] = {}  # RouterLLM decision ids whose route event is recorded

    # --- routing decisions ----------------------------------------------------------------
    def first_route(self, route_id: Any) -> bool:
        """True the first time a decision id is seen (a tier making several calls for one routed
        call links them all to the decision, but the decision is recorded once)."""
        routes = self.routes
        if route_id in routes:
            return False
        if len(routes) >= MAX_ROUTES:
            _drop_oldest(routes, MAX_ROUTES // 10)
        routes[route_id] = None
        return True

    # --- spans ------------------------------------------------------------------------
    def stream_returned(self, span_id: str, gen: Any) -> None:
        """The span of an in-flight call exited with a generator: the call is a stream in progress."""
        call = self.calls.get(span_id)
        if call is not None:
            call.gen = gen
            self.streams[span_id] = call

    # --- calls --------------------------------------------------------------------------
    def place(self, span_id: str | None) -> Place:
        """Where a call starting in span ``span_id`` sits; marks every LLM call that encloses it
        as outer (its end is not counted again)."""
        calls = self.calls
        parents = self.parents
        parent = parents.get(span_id)
        root = span_id
        step_span = None
        p = parent
        depth = 0
        while p is not None and depth < _MAX_DEPTH:
            enclosing = calls.get(p) if calls else None
            if enclosing is not None:
                enclosing.outer = True
                step_span = None  # the step is above the OUTERMOST LLM span
            elif step_span is None:
                step_span = p
            root = p
            p = parents.get(p)
            depth += 1
        if self.streams:
            self._mark_running_streams()
        return Place(parent_id=parent, root=root, step=span_name(step_span))

    def add(self, span_id: str | None, call: PendingCall) -> None:
        """Register a starting call (placed first with :meth:`place`)."""
        calls = self.calls
        if len(calls) >= MAX_PENDING:
            _drop_oldest(calls, MAX_PENDING // 10)
            _drop_oldest(self.streams, MAX_PENDING // 10)
        calls[span_id] = call
        if len(self.parents) >= MAX_SPANS:
            _drop_oldest(self.parents, MAX_SPANS // 10)

    def finish(self, span_id: str | None) -> PendingCall | None:
        """Remove and return the call (None when its start was not seen)."""
        call = self.calls.pop(span_id, None)
        if call is not None and call.gen is not None:
            self.streams.pop(span_id, None)
        return call

    def clear(self) -> None:
        self.parents.clear()
        self.calls.clear()
        self.streams.clear()
        self.routes.clear()

    def _mark_running_streams(self) -> None:
        """A call starting inside a running stream generator of another call: that call is outer."""
        frames: dict[int, PendingCall] = {}
        for call in list(self.streams.values()):
            gen = call.gen
            if call.outer or gen is None:
                continue
            if getattr(gen, "gi_running", False) or getattr(gen, "ag_running", False):
                frame = getattr(gen, "gi_frame", None) or getattr(gen, "ag_frame", None)
                if frame is not None:
                    frames[id(frame)] = call
        if not frames:
            return
        f: Any = sys._getframe()
        while f is not None and frames:
            call = frames.pop(id(f), None)
            if call is not None:
                call.outer = True
            f = f.f_back


def _drop_oldest(d: dict[Any, Any], n: int) -> None:
    for key in list(d)[:n]:
        d.pop(key, None)
