"""The per-call half of :class:`~agentcost_llamaindex.CostEventHandler`: turns LlamaIndex's LLM
events and span drops into recorded calls.

Per LLM call the dispatcher sends ``LLMChatStartEvent`` (or ``LLMCompletionStartEvent``), then
``LLMChat(Completion)EndEvent`` — with ``…InProgressEvent`` per chunk in between for streams —
all carrying the LLM span's id. The start event gives the requested model
(``model_dict["model"]``, ``["model_name"]`` in llama-index-core ≥ 0.14), the messages and the
``instrument_tags``; the end event's response (for a stream: its last chunk) gives the provider's
usage and the model it actually served, read by :func:`agentcost_core.parsers.from_chat_response`.
The start event becomes a :class:`~agentcost_core.call.ModelCall`, the end event an
:class:`~agentcost_core.call.Outcome`, and the recorder's accountant prices and records the pair
(``CostRecorder.record_outcome``). No usage, or usage that cannot be read, → the tokens are
estimated from the messages (memoized per message), the event is marked ``estimated`` and an
unreadable usage's reason is kept in ``extra["usage_error"]``. A call that raises is recorded with
its error and no cost: non-streaming failures arrive as the span's ``span_drop``, streaming ones as
an ``ExceptionEvent``.

Only the innermost LLM call of a nest is recorded (see :mod:`agentcost_llamaindex.calls`). A call a
``CachedLLM`` answered (its response marked, see :mod:`agentcost_llamaindex.served`) is recorded as
a hit: $0, ``saved`` and the cache layer.
Our own faults are counted and logged by the recorder and never reach the user's run.

A call routed by :class:`~agentcost_llamaindex.RouterLLM` (its decision in the ``agentcost_route``
instrument tag) carries the tier in ``event.tier`` and ``route_id`` / ``route_reason`` /
``top_tier`` / ``top_model`` in its extra; the decision itself is a ``route`` event whose
``parent_id`` is the call's span id.

This is a plain class rather than part of the (pydantic) handler, whose attribute reads all go
through pydantic's ``__getattr__`` hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
)

from agentcost_core import ChatMessage as CoreMessage
from agentcost_core import CostEvent, CostRecorder
from agentcost_core.attribution import read_attribution
from agentcost_core.call import ModelCall, Outcome, choices_of, describe_error
from agentcost_core.errors import UsageFormatError
from agentcost_core.parsers import from_chat_response
from agentcost_core.parsers.llamaindex import ResponseUsage
from agentcost_core.response_cache import marker_outcome

from .attribution import route_from_tags, run_id_from_tags
from .calls import CallTable, PendingCall
from .embeddings import EMBEDDING_EVENTS, EmbeddingRecorder
from .messages import CoreMessages, image_count, response_text, tools_text
from .served import marker_of, note_handled

__all__ = ["LlmEventRecorder", "model_call_settings", "read_response"]

logger = logging.getLogger("agentcost.llamaindex")

_NO_USAGE = ResponseUsage(None, None, None, None)
_perf = time.perf_counter

_START_EVENTS = (LLMChatStartEvent, LLMCompletionStartEvent)
_PROGRESS_EVENTS = (LLMChatInProgressEvent, LLMCompletionInProgressEvent)
_END_EVENTS = (LLMChatEndEvent, LLMCompletionEndEvent)
_LLM_EVENTS = (*_START_EVENTS, *_PROGRESS_EVENTS, *_END_EVENTS, ExceptionEvent)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _setting(source: Any, key: str) -> Any:
    return source.get(key) if isinstance(source, dict) else getattr(source, key, None)


def _tier(source: Any) -> str | None:
    tier = _setting(source, "service_tier")
    if tier is None:
        extra = _setting(source, "additional_kwargs")
        tier = extra.get("service_tier") if isinstance(extra, dict) else None
    return tier if isinstance(tier, str) and tier else None


def model_call_settings(settings: Any, kwargs: Any = None) -> tuple[int | None, str | None, int]:
    """``(max_tokens, service_tier, choices)`` a call asks for: its keyword arguments first, then the
    LLM's own settings (an LLM object or its ``to_dict()``): ``max_tokens`` and ``service_tier``,
    itself or in ``additional_kwargs`` (as ``llama-index-llms-openai`` takes it), and how many
    completions (``n`` and the like, see :func:`~agentcost_core.call.choices_of`) it asks for."""
    max_tokens = _positive_int(_setting(kwargs, "max_tokens")) if kwargs else None
    choices = choices_of(kwargs, _setting(kwargs, "additional_kwargs") if kwargs else None,
                         settings, _setting(settings, "additional_kwargs"))  # fmt: skip
    return (
        max_tokens or _positive_int(_setting(settings, "max_tokens")),
        (_tier(kwargs) if kwargs else None) or _tier(settings),
        choices,
    )


def read_response(
    response: Any, on_fault: Callable[[str, BaseException], None] | None = None
) -> tuple[ResponseUsage, str | None]:
    """``(usage found, why the usage could not be read or None)``: never raises. Usage that
    cannot be read is left out (the call is estimated); a parser fault of ours goes to
    ``on_fault`` (e.g. ``CostRecorder.note_internal_error``), else to the log."""
    if response is None:
        return _NO_USAGE, None
    try:
        return from_chat_response(response), None
    except UsageFormatError as exc:
        logger.warning("agentcost: unreadable usage in a LlamaIndex response (%s); estimating instead", exc)
        return _NO_USAGE, describe_error(exc, keep_message=True)
    except Exception as exc:  # a fault of our parser: estimate, and say so loudly
        if on_fault is not None:
            on_fault("reading a LlamaIndex response's usage", exc)
        else:
            logger.error("agentcost: could not read the usage of a LlamaIndex response: %r", exc, exc_info=exc)
        return _NO_USAGE, describe_error(exc, keep_message=True)


class LlmEventRecorder:
    """Records the LLM calls of one handler from the events and span drops it receives.

    ``on_record(response, event, budget_cost)``, when set, sees every call recorded with the
    response it was priced from (``guard()`` settles its budgets at that same number)."""

    def __init__(self, table: CallTable, recorder: CostRecorder) -> None:
        self.table = table
        self.recorder = recorder
        self.on_record: Callable[[Any, CostEvent, Decimal], None] | None = None
        #: Embedding calls (see :mod:`agentcost_llamaindex.embeddings`), recorded through the same recorder.
        self.embeddings = EmbeddingRecorder(table, recorder)

    # --- events -------------------------------------------------------------------------
    def handle(self, event: Any) -> None:
        if not isinstance(event, _LLM_EVENTS):
            if isinstance(event, EMBEDDING_EVENTS):
                self.embeddings.handle(event)
            return
        try:
            if isinstance(event, _END_EVENTS):
                pending = self.table.finish(event.span_id)
                if pending is not None and not pending.outer:  # an outer call wraps an inner one: not billed twice
                    self._record(pending, event.response)
            elif isinstance(event, _START_EVENTS):
                self._begin(event)
            elif isinstance(event, _PROGRESS_EVENTS):
                pending = self.table.calls.get(event.span_id)
                if pending is not None:
                    pending.last = event.response
                    if pending.first_chunk is None:
                        pending.first_chunk = _perf()
            else:
                self._on_exception(event)
        except Exception as exc:  # our fault: never the user's problem
            self.recorder.note_internal_error(f"CostEventHandler.handle({type(event).__name__})", exc)

    def _begin(self, event: Any) -> None:
        """A call starts: place it in the span tree and build its :class:`ModelCall`."""
        span_id = event.span_id
        place = self.table.place(span_id)
        tags = event.tags or None
        if isinstance(event, LLMChatStartEvent):
            messages = event.messages
            core: Sequence[CoreMessage] = CoreMessages(messages)
        else:
            messages = None
            core = [CoreMessage("user", event.prompt or "")]
        model_dict = event.model_dict if isinstance(event.model_dict, dict) else {}
        # model_dict["model"] (["model_name"] in llama-index-core >= 0.14); "unknown" is LlamaIndex's placeholder
        model = model_dict.get("model") or model_dict.get("model_name")
        max_tokens, service_tier, choices = model_call_settings(model_dict, event.additional_kwargs)
        defaults = self.recorder.defaults
        call = ModelCall(
            model=model if isinstance(model, str) and model != "unknown" else None,
            messages=core,
            attribution=read_attribution(tags, defaults=defaults) if tags else defaults,
            trace_id=run_id_from_tags(tags) or place.root,
            span_id=span_id,
            framework="llamaindex",
        )
        if place.parent_id is not None:  # set when present, like the settings below
            call.parent_id = place.parent_id
        if place.step is not None:
            call.step = place.step
        tools = tools_text(event.additional_kwargs)
        if tools is not None:
            call.tools = tools
        if max_tokens is not None:
            call.max_tokens = max_tokens
        if service_tier is not None:
            call.service_tier = service_tier
        if choices > 1:
            call.choices = choices
        self.table.add(span_id, PendingCall(call=call, messages=messages, tags=tags, t0=_perf()))
        note_handled(span_id)  # a CachedLLM hit of this call is ours to record

    def _on_exception(self, event: Any) -> None:
        """A streaming call failed (non-streaming failures arrive as the span's drop)."""
        if not self.table.calls:
            return
        pending = self.table.finish(event.span_id)
        if pending is None or pending.outer:
            return
        exc = event.exception
        if isinstance(exc, GeneratorExit):  # the consumer stopped iterating: the tokens were still billed
            self._record(pending, pending.last, closed_early=True)
        else:
            self._record_error(pending, exc)

    def on_drop(self, span_id: str, pending: PendingCall, err: BaseException | None) -> None:
        """A span closed with an error (the span handler's ``span_drop``): a failed non-streaming call."""
        if pending.outer:
            return
        try:
            self._record_error(pending, err)
        except Exception as exc:
            self.recorder.note_internal_error("CostSpanHandler.span_drop", exc)

    # --- recording ----------------------------------------------------------------------
    def _record(self, pending: PendingCall, response: Any, closed_early: bool = False) -> CostEvent | None:
        marker = marker_of(response)
        if marker is not None:
            return self._record_hit(pending, response, marker)
        found, usage_error = read_response(response, self.recorder.note_internal_error)
        tier, extra = self._route(pending, {"stream_closed_early": True} if closed_early else None)
        call = pending.call
        estimate = found.usage is None or not found.usage.total
        if estimate and pending.messages:  # the input is counted only for an estimate: its image parts too
            call = replace(call, images=image_count(pending.messages))
        outcome = Outcome(
            usage=found.usage,
            model=found.model,
            service_tier=found.service_tier,
            usage_provider=found.provider,  # the usage FORMAT: the catalog's provider wins when known
            latency_s=_perf() - pending.t0,
        )
        if found.server_tools is not None:
            outcome.server_tools = found.server_tools
        if pending.first_chunk is not None:
            outcome.first_chunk_s = pending.first_chunk - pending.t0
        if estimate or self.recorder.log_prompts:  # the output is read only for an estimate, or for prompt logging
            outcome.text = response_text(response)
        if usage_error is not None:
            outcome.usage_error = usage_error
        if extra is not None:
            outcome.extra, outcome.tier = extra, tier
        # span ids are unique (name + uuid4): the span id is the event id
        event, budget_cost = self.recorder.record_outcome(call, outcome, event_id=call.span_id)
        if self.on_record is not None and response is not None:
            self.on_record(response, event, budget_cost)
        return event

    def _record_hit(self, pending: PendingCall, response: Any, marker: dict[str, Any]) -> CostEvent | None:
        """A call a ``CachedLLM`` answered: cost $0, ``saved`` = what the stored call cost, the layer in
        ``extra["cache"]``; nothing when the cache recorded it itself (no handler saw it start)."""
        if marker.get("recorded"):
            return None
        outcome = marker_outcome(marker)
        outcome.latency_s = _perf() - pending.t0
        if self.recorder.log_prompts:
            outcome.text = response_text(response)
        outcome.tier, outcome.extra = self._route(pending, outcome.extra)
        event, budget_cost = self.recorder.record_outcome(pending.call, outcome, event_id=pending.call.span_id)
        if self.on_record is not None:
            self.on_record(response, event, budget_cost)
        return event

    def _record_error(self, pending: PendingCall, err: BaseException | None) -> CostEvent:
        tier, extra = self._route(pending, None)
        outcome = Outcome(
            error=err if err is not None else "LLM span dropped", latency_s=_perf() - pending.t0, extra=extra, tier=tier
        )
        event, _ = self.recorder.record_outcome(pending.call, outcome)
        return event

    def _route(self, pending: PendingCall, extra: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
        """A call a ``RouterLLM`` routed (its decision in the tags): records the decision as its own
        ledger event (kind ``route``, parent = the call), once per decision; returns the call's tier
        and its extra linked to the decision."""
        route = route_from_tags(pending.tags)
        if route is None:
            return None, extra
        tier, link = self.recorder.record_route(route, pending.call, event=self.table.first_route(route.get("id")))
        return tier, {**(extra or {}), **link}
