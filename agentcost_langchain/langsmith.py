"""LangSmith: our exact cost on every LLM run that LangChain's LangSmith tracer sends.

When LangSmith tracing is on (``LANGSMITH_TRACING=true``, or ``langsmith=True`` on the handler),
the handler attaches to each :class:`~langchain_core.tracers.langchain.LangChainTracer` its model
runs go through (the tracer in the run's callbacks, or the one of ``tracing_v2_enabled()``, and
the copies LangChain makes of it; that instance only, never the class). For
each model call it priced, that tracer sends the run with ``usage_metadata`` carrying our cost:
``input_cost``, ``output_cost``, ``total_cost`` (USD, as the floats LangSmith's schema takes; the
same number as the ledger event's Decimal ``cost``), ``input_cost_details`` under the same keys
as the run's ``input_token_details`` (``cache_read``; ``ephemeral_5m_input_tokens`` /
``ephemeral_1h_input_tokens``, else ``cache_creation``) so LangSmith does not price those tokens
a second time, and ``output_cost_details.reasoning``. LangSmith reads it from the run's
``extra.metadata.usage_metadata``, which the tracer fills from the message it serialises.

The cost goes only into the copy of the result that the tracer serialises: the user's
``AIMessage.usage_metadata`` never gets a float, so ``UsageMetadataCallbackHandler``,
``add_usage`` and message merging (which accept only ints: langchain#36015) are untouched. The
order of the handlers does not matter: when the tracer's ``on_llm_end`` comes first, the
handler records the call then, and skips its own later ``on_llm_end`` for that run.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers.context import tracing_v2_callback_var
from langchain_core.tracers.langchain import LangChainTracer

from agentcost_core.events import CostEvent

__all__ = ["LangSmithCosts", "tracing_is_on", "usage_with_cost"]

_REMEMBERED = 1_000  # priced runs awaiting their tracer's end, and runs ended through the tracer


def tracing_is_on() -> bool:
    """Whether LangSmith tracing is enabled (``LANGSMITH_TRACING`` / ``LANGCHAIN_TRACING_V2``)."""
    from langsmith.utils import tracing_is_enabled

    return bool(tracing_is_enabled())


def _usage_of_event(event: CostEvent) -> dict[str, Any]:
    """LangChain's ``usage_metadata`` shape from our buckets (for a result that reported none)."""
    u = event.usage
    details: dict[str, int] = {}
    if u.cache_read:
        details["cache_read"] = u.cache_read
    if u.cache_write_5m:
        details["ephemeral_5m_input_tokens"] = u.cache_write_5m
    if u.cache_write_1h:
        details["ephemeral_1h_input_tokens"] = u.cache_write_1h
    usage: dict[str, Any] = {"input_tokens": u.prompt_tokens, "output_tokens": u.output, "total_tokens": u.total}
    if details:
        usage["input_token_details"] = details
    if u.reasoning:
        usage["output_token_details"] = {"reasoning": u.reasoning}
    return usage


def usage_with_cost(
    usage_metadata: Mapping[str, Any] | None, event: CostEvent, parts: Mapping[str, Decimal]
) -> dict[str, Any]:
    """A copy of ``usage_metadata`` (or one built from the event's usage) with the cost fields
    LangSmith reads, from the event's cost and its per-bucket ``parts`` (``Accountant.cost_parts``)."""
    usage = dict(usage_metadata) if usage_metadata else _usage_of_event(event)
    details = usage.get("input_token_details") or {}
    cost_details: dict[str, float] = {}
    read_key = "cache_read" if "cache_read" in details else next((k for k in details if k.endswith("cache_read")), None)
    if read_key is not None or parts["cache_read"]:
        cost_details[read_key or "cache_read"] = float(parts["cache_read"])
    if "ephemeral_5m_input_tokens" in details or "ephemeral_1h_input_tokens" in details:
        cost_details["ephemeral_5m_input_tokens"] = float(parts["cache_write_5m"])
        cost_details["ephemeral_1h_input_tokens"] = float(parts["cache_write_1h"])
    elif "cache_creation" in details or parts["cache_write_5m"] or parts["cache_write_1h"]:
        cost_details["cache_creation"] = float(parts["cache_write_5m"] + parts["cache_write_1h"])
    input_cost = parts["input"] + parts["cache_read"] + parts["cache_write_5m"] + parts["cache_write_1h"]
    usage["input_cost"] = float(input_cost)
    usage["output_cost"] = float(parts["output"])
    usage["total_cost"] = float(event.cost) if event.cost is not None else float(input_cost + parts["output"])
    if cost_details:
        usage["input_cost_details"] = cost_details
    if (usage.get("output_token_details") or {}).get("reasoning") or parts["reasoning"]:
        usage["output_cost_details"] = {"reasoning": float(parts["reasoning"])}
    return usage


def _with_cost(response: Any, event: CostEvent, parts: Mapping[str, Decimal]) -> Any:
    """A copy of the ``LLMResult`` whose one message carries the cost (the original is untouched);
    the result itself when it holds more than one generation (the tracer would add them up)."""
    generations = getattr(response, "generations", None)
    if not generations or len(generations) != 1 or len(generations[0]) != 1:
        return response
    generation = generations[0][0]
    message = getattr(generation, "message", None)
    if message is None or not hasattr(message, "usage_metadata"):
        return response
    usage = usage_with_cost(message.usage_metadata, event, parts)
    costed = generation.model_copy(update={"message": message.model_copy(update={"usage_metadata": usage})})
    return response.model_copy(update={"generations": [[costed]]})


def _tracers_in(callbacks: Any) -> list[LangChainTracer]:
    handlers = getattr(callbacks, "handlers", callbacks)
    if not isinstance(handlers, list):
        return []
    return [h for h in handlers if isinstance(h, LangChainTracer)]


class LangSmithCosts:
    """One handler's link to the LangSmith tracers of its runs (see the module docstring)."""

    def __init__(self, handler: Any) -> None:
        self._handler = handler
        self._attached: weakref.WeakSet[LangChainTracer] = weakref.WeakSet()
        self._priced: OrderedDict[UUID, CostEvent] = OrderedDict()  # run id -> its event, until the tracer ends it
        self._ended: OrderedDict[UUID, None] = OrderedDict()  # runs the handler ended from the tracer's end

    def watch(self) -> None:
        """At a model run's start: attach to the LangSmith tracers it goes through."""
        config = var_child_runnable_config.get()
        found = _tracers_in(config.get("callbacks")) if config else []
        tracer = tracing_v2_callback_var.get()
        if tracer is not None:
            found.append(tracer)
        for t in found:
            if t not in self._attached:
                self.attach(t)

    def attach(self, tracer: LangChainTracer) -> None:
        """Make ``tracer`` (this instance only) send our cost with the LLM runs we price."""
        original = tracer.on_llm_end
        costs = self

        def on_llm_end(response: Any, *, run_id: UUID, **kwargs: Any) -> Any:
            try:
                response = costs.costed(response, run_id, kwargs)
            except Exception as e:  # noqa: BLE001 - an internal error of ours never costs the user the trace
                costs._handler.recorder.note_internal_error("langsmith", e)
            return original(response, run_id=run_id, **kwargs)

        original_copy = tracer.copy_with_metadata_defaults

        def copy_with_metadata_defaults(**kwargs: Any) -> LangChainTracer:
            copy = original_copy(**kwargs)  # LangChain copies the tracer for a run's own metadata
            costs.attach(copy)
            return copy

        tracer.on_llm_end = on_llm_end  # type: ignore[method-assign]
        tracer.copy_with_metadata_defaults = copy_with_metadata_defaults  # type: ignore[method-assign]
        self._attached.add(tracer)

    def priced(self, run_id: UUID, event: CostEvent) -> None:
        """The handler recorded ``run_id``'s call as ``event``: kept until its tracer ends the run."""
        if event.cost is None or not self._attached:
            return
        self._priced[run_id] = event
        if len(self._priced) > _REMEMBERED:
            self._priced.popitem(last=False)

    def ended_here(self, run_id: UUID) -> bool:
        """Whether the handler already ended ``run_id`` from the tracer's ``on_llm_end``."""
        return self._ended.pop(run_id, False) is None

    def costed(self, response: Any, run_id: UUID, kwargs: dict[str, Any]) -> Any:
        """The result the tracer sends for ``run_id``: with our cost when we priced the call."""
        event = self._priced.pop(run_id, None)
        if event is None and self._handler.pending(run_id):  # the tracer's end comes first: ours now
            self._handler._model_end(response, run_id=run_id, **kwargs)
            self._ended[run_id] = None
            if len(self._ended) > _REMEMBERED:
                self._ended.popitem(last=False)
            event = self._priced.pop(run_id, None)
        if event is None:
            return response
        parts = self._handler.recorder.accountant.cost_parts(event)
        return response if parts is None else _with_cost(response, event, parts)
