"""LangChain callback handlers that record one :class:`CostEvent` per model call.

Attach to any chain, agent or model (``config={"callbacks": [handler]}``, constructor
``callbacks=``, or :func:`track_costs`). The handler tracks chain starts to know each call's
trace (the root run id) and step (the LangGraph node, else the enclosing chain's name), and
reads attribution from run ``metadata``: ``user_id``, ``session_id`` (or ``thread_id`` /
``conversation_id``), ``feature``, ``agent_id``, ``task_id``, over the constructor's defaults.

Our own faults never reach the user's chain: every hook catches, logs and counts them. The hooks run
only our code (no user code, so no LangGraph interrupt can arise inside them); a tool's interrupt
reported through ``on_tool_error`` is recognised with ``passes_through`` and not counted as a failure.
Guards (run guards, tool hooks, settling, calls whose end never comes) are the handler's other half:
:mod:`agentcost_langchain.handler_guards`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from agentcost_core import CostRecorder, Ledger, PriceCatalog
from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.budgets import BudgetStoreUnavailable
from agentcost_core.call import ModelCall, Outcome, choices_of
from agentcost_core.errors import ConfigurationError
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import AgentHalted
from agentcost_core.recorder import RecorderResults
from agentcost_core.routing.router import ROUTE_KEY, ROUTER_PROVIDER

#: A routing decision for the model call about to run, set by ``RouterMiddleware`` (whose model
#: swap cannot carry run metadata); run metadata wins when both are present.
ACTIVE_ROUTE: ContextVar[dict[str, Any] | None] = ContextVar("agentcost_active_route", default=None)

from .handler_guards import GuardedRuns
from .langsmith import LangSmithCosts, tracing_is_on
from .messages import count_images, prompt_messages, tools_json
from .response import read_outcome
from .run_context import note_handled

__all__ = ["AsyncCostCallbackHandler", "CostCallbackHandler"]

logger = logging.getLogger("agentcost")


_ZERO = Decimal(0)


class _CostTracking(GuardedRuns, RecorderResults):
    """The shared body of the sync and async handlers."""

    # LangChain asks these on every event: plain class attributes instead of the base class's
    # properties. Retries, retrievers and custom events are not ours to see (``ignore_agent``
    # also gates the tool events, which the guards need).
    ignore_llm = ignore_chat_model = ignore_chain = ignore_agent = False
    ignore_retry = ignore_retriever = ignore_custom_event = True

    def __init__(
        self,
        ledger: Ledger | str | None = None,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        feature: str | None = None,
        agent_id: str | None = None,
        task_id: str | None = None,
        catalog: PriceCatalog | None = None,
        budgets: Any = None,
        stuck: Any = None,
        kill_switch: Any = None,
        alerts: Any = None,
        controls: Controls | None = None,
        keep_events: bool = True,
        log_prompts: bool = False,
        exporters: Any = None,
        anomalies: Any = None,
        langsmith: bool | None = None,
        call_timeout: float = 600.0,
        clock: Any = time.monotonic,
    ) -> None:
        if isinstance(call_timeout, bool) or not isinstance(call_timeout, (int, float)) or not call_timeout > 0:
            raise ConfigurationError(f"call_timeout must be a number of seconds > 0, got {call_timeout!r}")
        #: A model call whose end LangChain never reports (its task was cancelled) is given up after
        #: this many seconds: its reservation is released and its state dropped.
        self.call_timeout = float(call_timeout)
        self._clock = clock
        self.recorder = CostRecorder(
            ledger, catalog=catalog, framework="langchain", keep_events=keep_events, log_prompts=log_prompts, user_id=user_id,
            session_id=session_id, feature=feature, agent_id=agent_id, task_id=task_id, exporters=exporters,
            anomalies=anomalies,
        )  # fmt: skip
        # With exporters: each stream's first-chunk time (model run id -> clock) and each tool
        # call's (run id -> name, attribution, start in ns), for their spans and metrics.
        self._first_chunks: dict[UUID, float] | None = {} if self.recorder.exporters is not None else None
        if langsmith is not None and not isinstance(langsmith, bool):
            raise ConfigurationError(f"langsmith must be True, False or None, got {langsmith!r}")
        #: Our cost on the LLM runs LangSmith's tracer sends (see :mod:`agentcost_langchain.langsmith`); None when off.
        self._langsmith = LangSmithCosts(self) if (tracing_is_on() if langsmith is None else langsmith) else None
        self._tool_starts: dict[UUID, tuple[str, Attribution, int]] = {}
        self._lock = threading.Lock()
        self._runs: dict[UUID, Any] = {}  # model run id -> its pending call, oldest first
        self._router_runs: dict[UUID, ModelCall] = {}  # a ModelRouter's own runs (steps, not calls)
        self._chains: dict[UUID, tuple[str, str | None, str]] = {}  # chain run id -> (root, name, own id)
        # Guards (budgets, stuck detection, kill switch): halts raise from the handler's hooks.
        # alerts= goes to the BudgetEnforcer built from budgets= (alert sinks for its thresholds)
        options = {} if alerts is None else {"alerts": alerts}
        if controls is None:
            controls = Controls(budgets=budgets, stuck=stuck, kill_switch=kill_switch, **options)
        elif budgets is not None or stuck is not None or kill_switch is not None or alerts is not None:
            raise TypeError("pass either controls= or budgets= / stuck= / kill_switch= / alerts=, not both")
        self.controls: Controls | None = controls if controls.active else None
        if anomalies is None and controls.anomalies is not None:  # BudgetEnforcer(anomalies=...)
            self.recorder.watch(controls.anomalies)
        self._guarded: OrderedDict[str, RunGuard] = OrderedDict()  # trace id -> the run's guard
        self._tools: dict[UUID, tuple[str, RunGuard]] = {}
        self.fixed_run: RunGuard | None = None  # guard() pins one run per invocation
        if self.controls is not None:
            self.controls.attach(self.recorder.ledger, "langchain", self.recorder.accountant, log_prompts=log_prompts)
            self.raise_error = True  # our halts must stop the run (internal errors are still caught)
            enforcer = self.controls.enforcer
            # Store I/O never runs on an event loop: with a shared budget store, LangChain runs this
            # (sync) handler in a worker thread under async runs instead of inline.
            self.run_inline = enforcer is None or enforcer.local

    @property
    def pending_calls(self) -> int:
        """Model calls started and not yet ended (a call whose task was cancelled stays here until
        ``call_timeout`` gives it up)."""
        return len(self._runs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(calls={len(self.events)}, total_cost=${self.total_cost})"

    # --- chains: trace and step ---------------------------------------------------------
    def _chain_start(self, serialized: Any, run_id: UUID, parent_run_id: UUID | None, kwargs: dict[str, Any]) -> None:
        try:
            parent = self._chains.get(parent_run_id) if parent_run_id is not None else None
            own = str(run_id)
            root = parent[0] if parent is not None else (str(parent_run_id) if parent_run_id else own)
            name = kwargs.get("name")
            if name is None and serialized:
                name = serialized.get("name")
            self._chains[run_id] = (root, name, own)
        except Exception as e:  # pragma: no cover - defensive
            self.recorder.note_internal_error("on_chain_start", e)

    def _chain_end(self, run_id: UUID) -> None:
        chain = self._chains.pop(run_id, None)
        if chain is not None and chain[0] == chain[2]:  # the root run ended: forget its guard
            with self._lock:
                self._guarded.pop(chain[0], None)

    def _trace_of(self, run_id: UUID, parent_run_id: UUID | None) -> tuple[str, bool]:
        """(the run's trace, whether this handler saw the chain it belongs to)."""
        chain = self._chains.get(parent_run_id) if parent_run_id is not None else None
        if chain is not None:
            return chain[0], True
        return (str(parent_run_id) if parent_run_id is not None else str(run_id)), False

    # --- model calls --------------------------------------------------------------------
    def _model_start(
        self,
        serialized: Any,
        prompt: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``on_chat_model_start`` (``prompt``: lists of messages) and ``on_llm_start`` (prompt
        strings): build the call's :class:`ModelCall` once; under guards, open it (kill switch,
        stuck state, the reservation of its worst case), which may refuse it."""
        try:
            md = metadata or {}
            if md.get("ls_provider") == ROUTER_PROVIDER:  # a ModelRouter's own run: a step, not a call
                outer = self._chains.get(parent_run_id) if parent_run_id is not None else None
                self._chain_start(None, run_id, parent_run_id, {"name": kwargs.get("name") or (outer[1] if outer else None)})
                self._router_runs[run_id] = self._model_call(prompt, run_id, parent_run_id, md, kwargs)
                return
            started = self._clock()  # the call's age counts from its start, however long opening it takes
            note_handled(run_id)  # a ResponseCache hit of this run is ours to record
            call = self._model_call(prompt, run_id, parent_run_id, md, kwargs)
            guard = None
            if self.controls is not None and self.controls.enforcer is not None:
                self._add_input(call, prompt, kwargs)
            if self.controls is not None:
                trace, seen = self._trace_of(run_id, parent_run_id)
                run = self._run_guard(trace, call.attribution)
                guard = (run, run.open_call(call), seen)
            if self._runs:
                self._forget_abandoned()
            self._runs[run_id] = (started, call, md, guard, prompt, kwargs)
        except (AgentHalted, BudgetStoreUnavailable):
            raise  # a deliberate halt: the model is not called
        except Exception as e:
            self.recorder.note_internal_error("on_chat_model_start", e)
            if self.controls is not None:
                self.controls.internal_error_before_call(e)  # under hard budgets: refuse, never run unreserved

    def _model_call(self, prompt: Any, run_id: UUID, parent_run_id: UUID | None, md: dict[str, Any],
                    kwargs: dict[str, Any]) -> ModelCall:  # fmt: skip
        """The framework-free :class:`ModelCall` of a model run's start."""
        inv = kwargs.get("invocation_params") or {}
        span = str(run_id)  # formatted once: the span id, the event id, and the trace of a lone call
        chain = self._chains.get(parent_run_id) if parent_run_id is not None else None
        if chain is not None:
            trace, step, parent = chain
        else:
            parent = None if parent_run_id is None else str(parent_run_id)
            trace, step = parent or span, None
        call = ModelCall(
            model=inv.get("model") or inv.get("model_name") or md.get("ls_model_name"),
            attribution=read_attribution(md, defaults=self.recorder.defaults),
            trace_id=trace,
            span_id=span,
            provider=md.get("ls_provider"),
            framework="langchain",
        )
        if parent is not None:  # set when present, like the settings below (a lone call has neither)
            call.parent_id = parent
        step = md.get("langgraph_node") or kwargs.get("name") or step  # an explicit run name names the step
        if step is not None:
            call.step = step
        max_tokens = inv.get("max_tokens") or inv.get("max_completion_tokens") or inv.get("max_output_tokens")
        if isinstance(max_tokens, int):
            call.max_tokens = max_tokens
        tier = inv.get("service_tier")
        if isinstance(tier, str) and tier not in ("auto", "default"):
            call.service_tier = tier
        choices = choices_of(inv)  # n=3: three completions, each billed
        if choices > 1:
            call.choices = choices
        return call

    @staticmethod
    def _add_input(call: ModelCall, prompt: Any, kwargs: dict[str, Any]) -> ModelCall:
        """The call's billed input parts as core items (messages, tool schemas, image parts),
        converted only when something needs them: a budget's worst case before the call, or an
        estimate after it when the provider reported no usage."""
        inv = kwargs.get("invocation_params") or {}
        tools = inv.get("tools") or inv.get("functions")
        call.messages = prompt_messages(prompt)
        call.tools = tools_json(tools) if tools else None
        call.images = count_images(prompt)
        return call

    def _model_end(self, response: Any, *, run_id: UUID, error: BaseException | None = None, **kwargs: Any) -> None:
        """``on_llm_end`` (and ``on_llm_error`` with the error and no response): the call's
        :class:`Outcome`, priced once by the accountant, recorded, and settled at that price; then
        a LangSmith tracer's end of the run that came first is sent, with that price."""
        try:
            self._end_call(response, run_id, error)
        finally:
            if self._langsmith is not None:
                self._langsmith.ended(run_id)

    def _end_call(self, response: Any, run_id: UUID, error: BaseException | None) -> None:
        router_call = self._router_runs.pop(run_id, None)
        if router_call is not None:  # the router's own run: a call only when its LLM cache answered
            self._chain_end(run_id)
            if self._langsmith is not None:  # its tier's run carries the cost: LangSmith must not price it again
                self._langsmith.unbilled(run_id)
            if response is not None:
                self._record_router_cache_hit(router_call, response, run_id)
            return
        state = self._runs.pop(run_id, None)
        if state is None:  # attached after the call started: record what the end tells us
            state = (None, ModelCall(None, span_id=str(run_id), trace_id=str(run_id), framework="langchain",
                                     attribution=self.recorder.defaults), {}, None, None, {})  # fmt: skip
        t0, call, md, guard, prompt, start_kwargs = state
        outcome = Outcome(error=error) if response is None else read_outcome(response)
        if outcome.usage is None and prompt is not None and not call.messages and not outcome.cache_hit:
            self._add_input(call, prompt, start_kwargs)  # no usage reported: the tokens are counted
        elif self.recorder.log_prompts and prompt is not None and not call.messages:
            self._add_input(call, prompt, start_kwargs)  # prompt logging keeps the prompt: its messages are needed
        outcome.latency_s = None if t0 is None else self._clock() - t0
        if self._first_chunks:
            first = self._first_chunks.pop(run_id, None)
            if first is not None and t0 is not None:
                outcome.first_chunk_s = first - t0
        if outcome.usage_error is not None:
            logger.warning("agentcost: malformed usage from %s (%s); tokens estimated instead",
                           outcome.model or call.model, outcome.usage_error)  # fmt: skip
        cost = None
        if outcome.extra and outcome.extra.get("cache_recorded"):  # a hit the ResponseCache recorded itself
            if guard is not None:
                self._close_guarded(guard, call, outcome, _ZERO)
            return
        try:
            if guard is not None and guard[1] is not None and guard[1].flags:
                outcome.extra = {**(outcome.extra or {}), **guard[1].flags}
            route = md.get(ROUTE_KEY) or ACTIVE_ROUTE.get()
            if isinstance(route, dict):  # a ModelRouter chose this call's tier: tag it, record the decision
                self._record_route(route, call, outcome)
            event, cost = self.recorder.record_outcome(call, outcome, event_id=call.span_id)
            if self._langsmith is not None:
                self._langsmith.priced(run_id, event)
        except Exception as e:
            self.recorder.note_internal_error("on_llm_end" if error is None else "on_llm_error", e)
        finally:
            if guard is not None:
                self._close_guarded(guard, call, outcome, cost)

    def pending(self, run_id: UUID) -> bool:
        """Whether the model run ``run_id`` (a ModelRouter's own run included) started and has not ended yet."""
        return run_id in self._runs or run_id in self._router_runs

    def _record_router_cache_hit(self, call: ModelCall, response: Any, run_id: UUID) -> None:
        try:
            outcome = read_outcome(response)
            if outcome.cache_hit:
                call.model = outcome.model or call.model
                event, _ = self.recorder.record_outcome(call, outcome, event_id=str(run_id))
                if self._langsmith is not None:
                    self._langsmith.priced(run_id, event)
        except Exception as e:
            self.recorder.note_internal_error("on_llm_end (router)", e)

    def _record_route(self, route: dict[str, Any], call: ModelCall, outcome: Outcome) -> None:
        """The routing decision as its own ledger event, and the call's outcome linked to it."""
        outcome.tier, link = self.recorder.record_route(route, call)
        outcome.extra = {**(outcome.extra or {}), **link}


class CostCallbackHandler(_CostTracking, BaseCallbackHandler):
    """Sync handler; also runs inline (no thread hop) under async LangChain runs.

    ``CostCallbackHandler(ledger=None, *, user_id=None, session_id=None, feature=None,
    agent_id=None, task_id=None)``; ``ledger`` is a URL, a :class:`Ledger` or None for the
    default (``AGENTCOST_LEDGER`` or ``sqlite:///.agentcost/ledger.db``). ``keep_events=False``
    keeps only running totals in the handler (``events`` stays empty; ``total_cost`` and
    ``usage_by_model`` still add up), for a handler that lives as long as the process: the
    ledger still gets every event. ``log_prompts=True`` keeps provider error messages and tool
    arguments in the ledger (off by default; keys and passwords are redacted either way).
    ``exporters=[OTelExporter(...)]`` send every call (and tool call) on as it is recorded.
    ``budgets=`` (a Budget, several, or a BudgetEnforcer), ``stuck=`` and ``kill_switch=`` guard
    every call; ``alerts=`` (a callable or sink, or a list of them) receives the budgets' warning,
    exceeded and escalated alerts (with a BudgetEnforcer, pass ``alerts=`` to it instead).
    ``langsmith`` (default: on when LangSmith tracing is) puts each call's exact cost on the LLM
    run LangSmith's tracer sends (see :mod:`agentcost_langchain.langsmith`); ``False`` turns it off.
    """

    run_inline = True

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:  # noqa: E501
        self._chain_start(serialized, run_id, parent_run_id, kwargs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._chain_end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._chain_end(run_id)

    on_chat_model_start = _CostTracking._model_start
    on_llm_start = _CostTracking._model_start

    on_llm_end = _CostTracking._model_end

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        """A streamed chunk: with exporters, the first one's time is kept (time to first chunk)."""
        first = self._first_chunks
        if first is not None and run_id not in first and run_id in self._runs:
            first[run_id] = self._clock()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._model_end(None, run_id=run_id, error=error)

    def on_tool_start(
        self,
        serialized: Any,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._tool_start(serialized, input_str, run_id, parent_run_id, metadata, kwargs)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_end(run_id, output, None)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_end(run_id, None, error)


class AsyncCostCallbackHandler(_CostTracking, AsyncCallbackHandler):
    """Async handler with the same behaviour, for code that wants an ``AsyncCallbackHandler``.

    Note: LangChain runs async handlers from sync code in a helper loop; prefer
    :class:`CostCallbackHandler`, which works under both.
    """


def _async_twin(name: str) -> Any:
    """An ``async def`` hook doing exactly what the sync handler's hook does (nothing awaits)."""
    sync = getattr(CostCallbackHandler, name)

    async def hook(self: AsyncCostCallbackHandler, *args: Any, **kwargs: Any) -> None:
        sync(self, *args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = sync.__doc__
    return hook


for _name in ("on_chain_start", "on_chain_end", "on_chain_error", "on_chat_model_start", "on_llm_start",
              "on_llm_end", "on_llm_error", "on_llm_new_token", "on_tool_start", "on_tool_end",
              "on_tool_error"):  # fmt: skip
    setattr(AsyncCostCallbackHandler, _name, _async_twin(_name))
del _name
