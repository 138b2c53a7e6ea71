"""LlamaIndex embedding calls, recorded by :class:`~agentcost_llamaindex.CostEventHandler`.

Every ``BaseEmbedding`` (``get_query_embedding``, ``get_text_embedding(s)``, their async forms, the
batches of ``get_text_embedding_batch``) sends ``EmbeddingStartEvent`` (the model in ``model_dict``)
and ``EmbeddingEndEvent`` (the ``chunks`` embedded) with its span's id. ``aget_text_embedding_batch``
sends every batch's start under one span id before any end, then the ends in the same order, so the
calls in flight are kept per span id in order and each end is paired with the oldest start. The
pair becomes one core
:class:`~agentcost_core.call.EmbeddingCall` and :class:`~agentcost_core.call.Outcome`, priced and
recorded by the handler's recorder like a model call (a ledger event of kind ``"embedding"``),
attributed like one: the handler's defaults overridden by the start event's ``instrument_tags``.
LlamaIndex's embedding classes keep no usage, so the chunks' tokens are counted with the model
family's tokenizer and the event is marked ``estimated``.

Inside a run under :func:`~agentcost_llamaindex.guard` the call is also charged to the run's
budgets: it is opened at the start event (kill switch, budget check; the texts are not known yet, so
nothing is held for them) and settled at the recorded cost at the end. An instrumentation handler
cannot stop a run, so an embedding refused at its start still runs and is recorded.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from llama_index.core.instrumentation.events.embedding import EmbeddingEndEvent, EmbeddingStartEvent

from agentcost_core import CostRecorder
from agentcost_core.attribution import read_attribution
from agentcost_core.call import EmbeddingCall, Outcome
from agentcost_core.halts import AgentHalted

from .attribution import run_id_from_tags
from .calls import CallTable, span_name

__all__ = ["EMBEDDING_EVENTS", "EmbeddingRecorder"]

logger = logging.getLogger("agentcost.llamaindex")

EMBEDDING_EVENTS = (EmbeddingStartEvent, EmbeddingEndEvent)
MAX_PENDING = 10_000  # embedding calls in flight kept at most (a failed call's start has no end)


@dataclass(slots=True)
class _Pending:
    call: EmbeddingCall
    t0: float
    run: Any = None  # the guarded run's RunGuard, when the call is made under guard()
    reservation: Any = None


def _model(model_dict: Any) -> str | None:
    if not isinstance(model_dict, dict):
        return None
    model = model_dict.get("model_name") or model_dict.get("model")
    return model if isinstance(model, str) and model and model != "unknown" else None


class EmbeddingRecorder:
    """Turns embedding start / end events into recorded calls (see the module docstring)."""

    def __init__(self, table: CallTable, recorder: CostRecorder) -> None:
        self.table = table
        self.recorder = recorder
        self.pending: dict[str | None, deque[_Pending]] = {}  # per span id, oldest start first
        self.in_flight = 0

    def handle(self, event: Any) -> None:
        try:
            if isinstance(event, EmbeddingStartEvent):
                self._begin(event)
            else:
                pending = self._take(event.span_id)
                if pending is not None:
                    self._record(pending, event)
        except Exception as exc:  # noqa: BLE001 - our fault: never the user's problem
            self.recorder.note_internal_error(f"CostEventHandler.handle({type(event).__name__})", exc)

    def _begin(self, event: EmbeddingStartEvent) -> None:
        span_id = event.span_id
        parents = self.table.parents
        parent = parents.get(span_id)
        root, p, depth = span_id, parent, 0
        while p is not None and depth < 256:
            root, p, depth = p, parents.get(p), depth + 1
        tags = event.tags or None
        defaults = self.recorder.defaults
        call = EmbeddingCall(_model(event.model_dict), span_id=span_id, trace_id=run_id_from_tags(tags) or root,
                             framework="llamaindex",
                             attribution=read_attribution(tags, defaults=defaults) if tags else defaults)  # fmt: skip
        if parent is not None:
            call.parent_id = parent
            call.step = span_name(parent)
        pending = _Pending(call, time.perf_counter())
        run = _guarded_run()
        if run is not None:
            pending.run = run
            try:
                pending.reservation = run.open_call(call)
            except AgentHalted as halt:  # a handler cannot stop the embedding: it runs, and is recorded
                logger.warning("agentcost: an embedding call under guard() was refused (%s); LlamaIndex runs it "
                               "anyway, the run's next model call is refused", halt)  # fmt: skip
        if self.in_flight >= MAX_PENDING:  # drop the oldest spans' calls (failed calls never end)
            for key in list(self.pending)[: max(1, len(self.pending) // 10)]:
                self.in_flight -= len(self.pending.pop(key, ()))
        self.pending.setdefault(span_id, deque()).append(pending)
        self.in_flight += 1

    def _take(self, span_id: str | None) -> _Pending | None:
        """The oldest call of this span still waiting for its end, or None."""
        queue = self.pending.get(span_id)
        if not queue:
            return None
        pending = queue.popleft()
        self.in_flight -= 1
        if not queue:
            self.pending.pop(span_id, None)
        return pending

    def _record(self, pending: _Pending, event: EmbeddingEndEvent) -> None:
        call = replace(pending.call, texts=list(event.chunks or ()), _input=None)  # the chunks, counted now
        outcome = Outcome(model=call.model, latency_s=time.perf_counter() - pending.t0)
        _, cost = self.recorder.record_outcome(call, outcome)
        if pending.run is not None and pending.reservation is not None:
            pending.run.close_call(pending.reservation, call, outcome, cost)


def _guarded_run() -> Any:
    """The RunGuard of the guard() run this embedding is made in, or None."""
    from .guarded_run import _ACTIVE

    state = _ACTIVE.get()
    return None if state is None else state.run
