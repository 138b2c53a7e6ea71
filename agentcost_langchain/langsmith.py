"""LangSmith: our exact cost on every LLM run that LangChain's LangSmith tracer sends.

When LangSmith tracing is on (``LANGSMITH_TRACING=true``, or ``langsmith=True`` on the handler),
each model call the handler priced reaches LangSmith with ``usage_metadata`` carrying our cost:
``input_cost``, ``output_cost``, ``total_cost`` (USD, as the floats LangSmith's schema takes; the
same number as the ledger event's Decimal ``cost``), ``input_cost_details`` under the same keys
as the run's ``input_token_details`` (``cache_read``; ``ephemeral_5m_input_tokens`` /
``ephemeral_1h_input_tokens``, else ``cache_creation``) so LangSmith does not price those tokens
a second time, and ``output_cost_details.reasoning``. LangSmith reads it from the run's
``extra.metadata.usage_metadata``, which the tracer fills from the messages it serialises.

Why a hook on the tracer class. LangChain hands each run its own
:class:`~langchain_core.tracers.langchain.LangChainTracer`: the user's, one built per call from
the environment (``LANGSMITH_TRACING``), the one of ``tracing_v2_enabled()``, or a copy made for a
child run's metadata (LangGraph makes one per node), and a handler sees none of them (callbacks
are not told about each other). The only place every one of them passes through is the tracer's
``on_llm_end``, so the first handler with LangSmith on wraps ``LangChainTracer.on_llm_end`` once
per process (idempotent; :func:`hook_installed`). The wrapper changes nothing for a run no live
handler of ours priced or is pricing: the tracer gets the very same call. For a run we price, it
hands the tracer a copy of the result whose message carries the cost keys, nothing else.

The cost goes only into that copy: the user's ``AIMessage.usage_metadata`` never gets a float,
so ``UsageMetadataCallbackHandler``, ``add_usage`` and message merging (which accept only ints:
langchain#36015) are untouched. The order of the callbacks does not matter: when the tracer's end
comes before ours, the tracer's end waits (same callback dispatch) until our handler has priced
and settled the call in its own ``on_llm_end``, on its own thread, and is sent then. With ``n > 1``
generations the first message of the copy carries the tokens of all of them (what the tracer
would add up) and the cost of the call; the others carry no usage.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.messages.ai import add_usage
from langchain_core.tracers.langchain import LangChainTracer

from agentcost_core.events import CostEvent

logger = logging.getLogger(__name__)

__all__ = ["LangSmithCosts", "hook_installed", "tracing_is_on", "usage_with_cost"]

_REMEMBERED = 1_000  # priced runs kept for a tracer's end still to come (runs without a tracer age out)


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
    """A copy of the ``LLMResult`` whose first message carries the call's usage with the cost (the
    original and its messages are untouched); the result itself when it holds no chat message.
    With several generations the tracer would add their usages up (``add_usage``, ints only): the
    first message carries that sum and the cost, the others none."""
    generations = getattr(response, "generations", None)
    if not generations or len(generations) != 1 or not generations[0]:
        return response
    messages = [getattr(g, "message", None) for g in generations[0]]
    if any(m is None or not hasattr(m, "usage_metadata") for m in messages):
        return response  # a text completion: the tracer reads usage from chat messages only
    tokens = None
    for m in messages:
        tokens = add_usage(tokens, m.usage_metadata) if m.usage_metadata else tokens
    usage = usage_with_cost(tokens, event, parts)
    costed = [
        g.model_copy(update={"message": m.model_copy(update={"usage_metadata": usage if i == 0 else None})})
        for i, (g, m) in enumerate(zip(generations[0], messages))
    ]
    return response.model_copy(update={"generations": [costed]})


NOT_OURS = object()  # at_tracer_end: a run no handler of ours priced or is pricing
WAITS = object()  # at_tracer_end: kept until the handler's own end has priced the call
_Send = Callable[[Any], Any]  # the tracer's own on_llm_end for one run, given the result to send


class LangSmithCosts:
    """One handler's link to the LangSmith tracers of its runs (see the module docstring)."""

    def __init__(self, handler: Any) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._priced: OrderedDict[UUID, CostEvent] = OrderedDict()  # run id -> its event, for a tracer end to come
        self._waiting: dict[UUID, tuple[_Send, Any]] = {}  # run id -> a tracer end that came before ours
        install_hook()
        _LIVE.add(self)

    def priced(self, run_id: UUID, event: CostEvent) -> None:
        """The handler recorded ``run_id``'s call as ``event``: kept for its tracer's end."""
        if event.cost is None:
            return
        with self._lock:
            self._priced[run_id] = event
            if len(self._priced) > _REMEMBERED:
                self._priced.popitem(last=False)

    def ended(self, run_id: UUID) -> None:
        """The handler's ``on_llm_end`` / ``on_llm_error`` for ``run_id`` is done: a tracer end that
        came first and waited is sent now (with the cost when the call was priced)."""
        with self._lock:
            waiting = self._waiting.pop(run_id, None)
            event = self._priced.pop(run_id, None) if waiting is not None else None
        if waiting is None:
            return
        send, response = waiting
        try:
            send(self._costed(response, event))
        except Exception as e:  # noqa: BLE001 - the tracer's own error: logged as LangChain logs it
            logger.warning("Error in LangChainTracer.on_llm_end callback: %r", e)

    def at_tracer_end(self, send: _Send, response: Any, run_id: UUID) -> Any:
        """A tracer ends ``run_id``: the result it should send (with our cost); ``WAITS`` when our
        own end has not priced the call yet (``ended`` sends it then); ``NOT_OURS`` otherwise."""
        with self._lock:
            event = self._priced.pop(run_id, None)
            if event is None:
                if not self._handler.pending(run_id):
                    return NOT_OURS
                self._waiting[run_id] = (send, response)
                return WAITS
        return self._costed(response, event)

    def _costed(self, response: Any, event: CostEvent | None) -> Any:
        if event is None:
            return response
        try:
            parts = self._handler.recorder.accountant.cost_parts(event)
            return response if parts is None else _with_cost(response, event, parts)
        except Exception as e:  # noqa: BLE001 - an internal error of ours never costs the user the trace
            self._handler.recorder.note_internal_error("langsmith", e)
            return response


_LIVE: weakref.WeakSet[LangSmithCosts] = weakref.WeakSet()  # the handlers with LangSmith on, while they live
_HOOK_MARK = "__agentcost_original__"


def hook_installed() -> bool:
    """Whether ``LangChainTracer.on_llm_end`` carries our (cost-adding) wrapper in this process."""
    return hasattr(LangChainTracer.on_llm_end, _HOOK_MARK)


def install_hook() -> None:
    """Wrap ``LangChainTracer.on_llm_end`` once per process (see the module docstring)."""
    if hook_installed():
        return
    original = LangChainTracer.on_llm_end

    @functools.wraps(original)
    def on_llm_end(self: LangChainTracer, response: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        def send(result: Any) -> Any:
            return original(self, result, run_id=run_id, **kwargs)

        for costs in list(_LIVE):
            try:
                taken = costs.at_tracer_end(send, response, run_id)
            except Exception as e:  # noqa: BLE001 - our error never costs the user the trace
                costs._handler.recorder.note_internal_error("langsmith", e)
                continue
            if taken is WAITS:
                return None
            if taken is not NOT_OURS:
                return send(taken)
        return send(response)

    setattr(on_llm_end, _HOOK_MARK, original)
    LangChainTracer.on_llm_end = on_llm_end  # type: ignore[method-assign]
