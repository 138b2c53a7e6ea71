"""The per-call half of :class:`~agentcost_llamaindex.CostEventHandler`: turns LlamaIndex's LLM
events and span drops into recorded calls.

Per LLM call the dispatcher sends ``LLMChatStartEvent`` (or ``LLMCompletionStartEvent``), then
``LLMChat(Completion)EndEvent`` — with ``…InProgressEvent`` per chunk in between for streams —
all carrying the LLM span's id. The start event gives the requested model
(``model_dict["model"]``, ``["model_name"]`` in llama-index-core ≥ 0.14), the messages and the
``instrument_tags``; the end event's response (for a stream: its last chunk) gives the provider's
usage and the model it actually served, read by :func:`agentcost_core.parsers.read_chat_response`.
No usage at all → the tokens are estimated from the messages (memoized per message) and the event
is marked ``estimated``. A call that raises is recorded with its error and no cost: non-streaming
failures arrive as the span's ``span_drop``, streaming ones as an ``ExceptionEvent``.

Only the innermost LLM call of a nest is recorded (see :mod:`agentcost_llamaindex.calls`).
Our own faults are counted and logged by the recorder and never reach the user's run.

A call routed by :class:`~agentcost_llamaindex.RouterLLM` (its decision in the ``agentcost_route``
instrument tag) carries the tier in ``event.tier`` and ``route_id`` / ``route_reason`` /
``top_tier`` / ``top_model`` in its extra; the decision itself is a ``route`` event whose
``parent_id`` is the call's span id.

This is a plain slotted class rather than part of the (pydantic) handler: every attribute read on
a pydantic object goes through pydantic's ``__getattr__`` hook, about a thousand machine
instructions each, and this code runs twice per LLM call (see ``tests/benchmarks/README.md``).
"""

from __future__ import annotations

import logging
import time
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
from agentcost_core import CostEvent, CostRecorder, TokenCounter, Usage
from agentcost_core.errors import UsageFormatError
from agentcost_core.parsers import read_chat_response

from .attribution import attribution_from_tags, route_from_tags
from .calls import CallTable, PendingCall, span_name
from .messages import response_text, to_core_messages, tools_text

__all__ = ["LlmEventRecorder"]

logger = logging.getLogger("agentcost.llamaindex")

_NO_USAGE = (None, None, None, None)
_perf = time.perf_counter
_MAX_ERROR_CHARS = 500


def _describe(err: BaseException | None) -> str:
    if err is None:
        return "LLM span dropped"
    text = str(err)
    out = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return out if len(out) <= _MAX_ERROR_CHARS else out[: _MAX_ERROR_CHARS - 1] + "…"


# --- event kinds: what handle() does with each event class ----------------------------------
_CHAT_START, _COMPLETION_START, _PROGRESS, _END, _EXCEPTION = range(5)
_BASE_KINDS: tuple[tuple[type, int], ...] = (
    (LLMChatStartEvent, _CHAT_START),
    (LLMCompletionStartEvent, _COMPLETION_START),
    (LLMChatInProgressEvent, _PROGRESS),
    (LLMCompletionInProgressEvent, _PROGRESS),
    (LLMChatEndEvent, _END),
    (LLMCompletionEndEvent, _END),
    (ExceptionEvent, _EXCEPTION),
)
#: event class -> kind (None: not ours). Exact-class lookups; subclasses are classified once.
_KINDS: dict[type, int | None] = dict(_BASE_KINDS)


def _kind_of(cls: type) -> int | None:
    kind = None
    for base, k in _BASE_KINDS:
        if issubclass(cls, base):
            kind = k
            break
    _KINDS[cls] = kind
    return kind


class LlmEventRecorder:
    """Records the LLM calls of one handler from the events and span drops it receives."""

    __slots__ = ("table", "recorder")

    def __init__(self, table: CallTable, recorder: CostRecorder) -> None:
        self.table = table
        self.recorder = recorder

    # --- events -------------------------------------------------------------------------
    def handle(self, event: Any) -> None:
        # Every LLM call sends a start and an end event through here, so the switch is written
        # out (a function per kind would cost a call per event on the hot path).
        cls = type(event)
        kind = _KINDS.get(cls, -1)
        if kind == -1:  # a class not seen before: classify it once
            kind = _kind_of(cls)
        if kind is None:
            return
        try:
            # The events are pydantic models: each attribute read goes through pydantic's
            # __getattr__ hook, one read of their field dict does not.
            f = event.__dict__
            if kind == _END:
                span_id = f["span_id"]
                call = self.table.finish(span_id)
                if call is not None and not call.outer:  # an outer call wraps an inner one: not billed twice
                    self._record(span_id, call, f["response"])
            elif kind == _CHAT_START:
                self.table.begin(f["span_id"], f["model_dict"], f["messages"], None, f["additional_kwargs"], f["tags"])
            elif kind == _COMPLETION_START:
                self.table.begin(f["span_id"], f["model_dict"], None, f["prompt"], f["additional_kwargs"], f["tags"])
            elif kind == _PROGRESS:
                call = self.table.calls.get(f["span_id"])
                if call is not None:
                    call.last = f["response"]
            else:
                self._on_exception(event)
        except Exception as exc:  # our fault: never the user's problem
            self.recorder.note_internal_error(f"CostEventHandler.handle({cls.__name__})", exc)

    def _on_exception(self, event: Any) -> None:
        """A streaming call failed (non-streaming failures arrive as the span's drop)."""
        table = self.table
        if not table.calls:
            return
        call = table.finish(event.span_id)
        if call is None or call.outer:
            return
        exc = event.exception
        if isinstance(exc, GeneratorExit):  # the consumer stopped iterating: the tokens were still billed
            self._record(event.span_id, call, call.last, closed_early=True)
        else:
            self._record_error(event.span_id, call, exc)

    def on_drop(self, span_id: str, call: PendingCall, err: BaseException | None) -> None:
        """A span closed with an error (the span handler's ``span_drop``): a failed non-streaming call."""
        if call.outer:
            return
        try:
            self._record_error(span_id, call, err)
        except Exception as exc:
            self.recorder.note_internal_error("CostSpanHandler.span_drop", exc)

    # --- recording ----------------------------------------------------------------------
    def _record(self, span_id: str, call: PendingCall, response: Any, closed_early: bool = False) -> CostEvent:
        found = _NO_USAGE
        if response is not None:
            try:
                found = read_chat_response(response)
            except UsageFormatError as exc:
                logger.warning("agentcost: unreadable usage in a LlamaIndex response (%s); estimating instead", exc)
        usage, model, service_tier, format_provider = found
        estimated = usage is None
        if usage is None:
            usage = self._estimate(call, response, model or call.requested)
        extra = {"stream_closed_early": True} if closed_early else None
        step = None if call.step_span is None else span_name(call.step_span)
        tier = None
        tags = call.tags
        if tags:  # instrument_tags: attribution, the workflow run, a RouterLLM's decision
            attribution, run_id = attribution_from_tags(tags)
            trace = run_id or call.root
            route = route_from_tags(tags)
            if route is not None:  # a RouterLLM chose this call's tier: tag it and record the decision
                tier, extra = self._record_route(route, span_id, step, trace, attribution, extra)
            get = attribution.get
            user_id, session_id, feature, agent_id, task_id = (
                get("user_id"), get("session_id"), get("feature"), get("agent_id"), get("task_id"),
            )  # fmt: skip
        else:
            user_id = session_id = feature = agent_id = task_id = None
            trace = call.root
        # The parser's provider is the usage FORMAT (OpenAI-compatible servers speak "openai"):
        # the catalog's provider wins whenever the model is known, so it goes in as format_provider.
        return self.recorder.record_call(
            model, usage, call.requested, None, service_tier, estimated, False, None,
            user_id, session_id, feature, agent_id, task_id,
            step, trace, span_id, call.parent_id, _perf() - call.t0, extra, "llm",
            span_id, tier, format_provider,  # span ids are unique (name + uuid4): the span id is the event id
        )  # fmt: skip

    def _record_route(
        self,
        route: dict[str, Any],
        span_id: str,
        step: str | None,
        trace: str | None,
        attribution: dict[str, Any],
        extra: dict[str, Any] | None,
    ) -> tuple[str | None, dict[str, Any]]:
        """The routing decision as its own ledger event (kind ``route``, parent = the call it chose);
        returns the call's tier and its extra linked to the decision."""
        route_id = route.get("id")
        if self.table.first_route(route_id):
            self.recorder.record(
                None, None, kind="route", step=step, trace_id=trace, parent_id=span_id, extra=dict(route),
                event_id=route_id, tier=route.get("tier"), **attribution,
            )  # fmt: skip
        linked = {
            **(extra or {}), "route_id": route_id, "route_reason": route.get("reason"),
            "top_tier": route.get("top_tier"), "top_model": route.get("top_model"),
        }  # fmt: skip
        return route.get("tier"), linked

    def _record_error(self, span_id: str, call: PendingCall, err: BaseException | None) -> CostEvent:
        attribution, run_id = attribution_from_tags(call.tags)
        step = span_name(call.step_span)
        trace = run_id or call.root
        tier = extra = None
        route = route_from_tags(call.tags)
        if route is not None:
            tier, extra = self._record_route(route, span_id, step, trace, attribution, None)
        return self.recorder.record(
            None,
            None,
            requested_model=call.requested,
            error=_describe(err),
            step=step,
            trace_id=trace,
            span_id=span_id,
            parent_id=call.parent_id,
            latency_s=_perf() - call.t0,
            extra=extra,
            tier=tier,
            **attribution,
        )

    def _estimate(self, call: PendingCall, response: Any, model: str | None) -> Usage:
        """Tokens counted by us when the provider reported none (memoized per message)."""
        counter = TokenCounter.for_model(model)  # shared per model, so the memo is too
        if call.messages is not None:
            messages = to_core_messages(call.messages)
        else:
            messages = [CoreMessage("user", call.prompt or "")]
        tools = tools_text(call.kwargs)
        if tools:
            messages.append(CoreMessage("system", tools))
        n_in = counter.count_messages(messages).tokens
        text = response_text(response)
        n_out = counter.count_text(text).tokens if text else 0
        return Usage(input=n_in, output=n_out)
