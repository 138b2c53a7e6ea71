"""LangChain callback handlers that record one :class:`CostEvent` per model call.

Attach to any chain, agent or model (``config={"callbacks": [handler]}``, constructor
``callbacks=``, or :func:`track_costs`). The handler tracks chain starts to know each call's
trace (the root run id) and step (the LangGraph node, else the enclosing chain's name), and
reads attribution from run ``metadata``: ``user_id``, ``session_id`` (or ``thread_id`` /
``conversation_id``), ``feature``, ``agent_id``, ``task_id``, over the constructor's defaults.

Our own faults never reach the user's chain: every hook catches, logs and counts them.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from agentcost_core import CostRecorder, Ledger, PriceCatalog, Usage
from agentcost_core.budgets import BudgetStoreUnavailable, ScopeContext
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import AgentHalted
from agentcost_core.recorder import RecorderResults
from agentcost_core.routing.router import ROUTE_KEY, ROUTER_PROVIDER

#: A routing decision for the model call about to run, set by ``RouterMiddleware`` (whose model
#: swap cannot carry run metadata); run metadata wins when both are present.
ACTIVE_ROUTE: ContextVar[dict[str, Any] | None] = ContextVar("agentcost_active_route", default=None)
from agentcost_core.tokens import ChatMessage, TokenCounter

from .messages import to_chat_messages, tools_json
from .response import output_text, read_result

__all__ = ["AsyncCostCallbackHandler", "CostCallbackHandler"]

_perf = time.perf_counter
logger = logging.getLogger("agentcost")


def _s(v: Any) -> str | None:
    return None if v is None else v if isinstance(v, str) else str(v)


_ROUTER_RUN: tuple[Any, ...] = ("router",)
_EMPTY: dict[str, Any] = {}  # read-only stand-in for absent metadata
_ATTRIBUTION_KEYS = frozenset({"user_id", "session_id", "thread_id", "conversation_id", "feature", "agent_id", "task_id"})
_NO_ATTRIBUTION = (None, None, None, None, None)


def _attribution(md: dict[str, Any]) -> tuple[str | None, ...]:
    """(user_id, session_id, feature, agent_id, task_id) from run metadata; most runs carry none."""
    if _ATTRIBUTION_KEYS.isdisjoint(md):
        return _NO_ATTRIBUTION
    get = md.get
    return (
        _s(get("user_id")),
        _s(get("session_id") or get("thread_id") or get("conversation_id")),
        _s(get("feature")),
        _s(get("agent_id")),
        _s(get("task_id")),
    )


class _CostTracking(RecorderResults):
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
        controls: Controls | None = None,
        keep_events: bool = True,
    ) -> None:
        self.recorder = CostRecorder(
            ledger,
            catalog=catalog,
            framework="langchain",
            keep_events=keep_events,
            user_id=user_id,
            session_id=session_id,
            feature=feature,
            agent_id=agent_id,
            task_id=task_id,
        )
        # Both keyed by the run id's int: a UUID key would hash through UUID.__hash__, a Python call.
        self._runs: dict[int, tuple[Any, ...]] = {}
        # chain run id -> (root run id as str, chain name, own id as str): strings made once per chain
        self._chains: dict[int, tuple[str, str | None, str]] = {}
        # Guards (budgets, stuck detection, kill switch): halts raise from the handler's hooks.
        if controls is None:
            budget_options = {"catalog": catalog} if budgets is not None and catalog is not None else {}
            controls = Controls(budgets=budgets, stuck=stuck, kill_switch=kill_switch, **budget_options)
        elif budgets is not None or stuck is not None or kill_switch is not None:
            raise TypeError("pass either controls= or budgets= / stuck= / kill_switch=, not both")
        self.controls: Controls | None = controls if controls.active else None
        self._guarded: dict[str, RunGuard] = {}  # trace id -> the run's guard
        self._tools: dict[UUID, tuple[str, RunGuard]] = {}
        self.fixed_run: RunGuard | None = None  # guard() pins one run per invocation
        if self.controls is not None:
            self.controls.attach(self.recorder.ledger, "langchain")
            self.raise_error = True  # our halts must stop the run (internal errors are still caught)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(calls={len(self.events)}, total_cost=${self.total_cost})"

    # --- chains: trace and step ---------------------------------------------------------
    def _chain_start(self, serialized: Any, run_id: UUID, parent_run_id: UUID | None, kwargs: dict[str, Any]) -> None:
        try:
            parent = self._chains.get(parent_run_id.int) if parent_run_id is not None else None
            own = str(run_id)
            root = parent[0] if parent is not None else (str(parent_run_id) if parent_run_id else own)
            name = kwargs.get("name")
            if name is None and serialized:
                name = serialized.get("name")
            self._chains[run_id.int] = (root, name, own)
        except Exception as e:  # pragma: no cover - defensive
            self.recorder.note_internal_error("on_chain_start", e)

    def _chain_end(self, run_id: UUID) -> None:
        chain = self._chains.pop(run_id.int, None)
        if chain is not None and self._guarded and chain[0] == chain[2]:  # the root run ended
            self._guarded.pop(chain[0], None)

    # --- guards -----------------------------------------------------------------------------
    def _run_guard(self, trace: str, md: dict[str, Any]) -> RunGuard:
        if self.fixed_run is not None:
            return self.fixed_run
        run = self._guarded.get(trace)
        if run is None:
            d = self.recorder.defaults
            user_id, session_id, feature, agent_id, _ = _attribution(md)
            ctx = ScopeContext(
                trace_id=trace,
                session_id=session_id or d["session_id"],
                user_id=user_id or d["user_id"],
                feature=feature or d["feature"],
                agent_id=agent_id or d["agent_id"],
            )
            run = self._guarded[trace] = self.controls.start(ctx)  # type: ignore[union-attr]
        return run

    def _trace_of(self, run_id: UUID, parent_run_id: UUID | None) -> str:
        chain = self._chains.get(parent_run_id.int) if parent_run_id is not None else None
        if chain is not None:
            return chain[0]
        return str(parent_run_id) if parent_run_id is not None else str(run_id)

    def _guard_model(self, run_id: UUID, parent_run_id: UUID | None, md: dict[str, Any], inv: dict[str, Any],
                     requested: str | None, prompt: Any) -> tuple[RunGuard, Any]:  # fmt: skip
        run = self._run_guard(self._trace_of(run_id, parent_run_id), md)
        counter = TokenCounter.for_model(requested)
        if prompt and isinstance(prompt[0], str):
            count = counter.count_messages([ChatMessage("user", p) for p in prompt])
        else:
            count = counter.count_messages(to_chat_messages(prompt[0]) if prompt else [])
        tokens, estimated = count.tokens, not count.exact
        tools = inv.get("tools") or inv.get("functions")
        if tools:  # tool schemas are billed input: count them (their framing is estimated)
            tokens += counter.count_text(tools_json(tools)).tokens
            estimated = True
        max_tokens = inv.get("max_tokens") or inv.get("max_completion_tokens") or inv.get("max_output_tokens")
        tier = inv.get("service_tier")
        res = run.before_model(
            requested, tokens, max_tokens if isinstance(max_tokens, int) else None,
            service_tier=tier if isinstance(tier, str) and tier not in ("auto", "default") else None,
            estimated=estimated,
        )  # fmt: skip
        return run, res

    def _tool_start(self, serialized: Any, input_str: str, run_id: UUID, parent_run_id: UUID | None,
                    metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:  # fmt: skip
        if self.controls is None:
            return
        try:
            name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
            run = self._run_guard(self._trace_of(run_id, parent_run_id), metadata or {})
            self._tools[run_id] = (name, run)
            args = kwargs.get("inputs")
            run.before_tool(name, args if args is not None else input_str, check_breaker=False)
        except (AgentHalted, BudgetStoreUnavailable):
            self._tools.pop(run_id, None)
            raise
        except Exception as e:
            self.recorder.note_internal_error("on_tool_start", e)

    def _tool_end(self, run_id: UUID, output: Any, error: BaseException | None) -> None:
        entry = self._tools.pop(run_id, None) if self._tools else None
        if entry is None:
            return
        try:
            name, run = entry
            run.after_tool(name, getattr(output, "content", output), error)
        except Exception as e:
            self.recorder.note_internal_error("on_tool_end", e)

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
        strings) in one body, called by LangChain directly: it runs before every model call."""
        try:
            md = metadata or _EMPTY
            provider = md.get("ls_provider")
            if provider == ROUTER_PROVIDER:  # a ModelRouter's own run: a step, not a call
                outer = self._chains.get(parent_run_id.int) if parent_run_id is not None else None
                self._chain_start(None, run_id, parent_run_id, {"name": kwargs.get("name") or (outer[1] if outer else None)})
                self._runs[run_id.int] = _ROUTER_RUN
                return
            inv = kwargs.get("invocation_params") or _EMPTY
            requested = inv.get("model") or inv.get("model_name") or md.get("ls_model_name")
            chain = self._chains.get(parent_run_id.int) if parent_run_id is not None else None
            if chain is not None:
                trace, step, parent = chain
            else:
                parent = None if parent_run_id is None else str(parent_run_id)
                trace, step = parent, None  # the trace is completed with this run's id at the end
            step = md.get("langgraph_node") or kwargs.get("name") or step  # an explicit run name names the step
            guard = self._guard_model(run_id, parent_run_id, md, inv, requested, prompt) if self.controls else None
            self._runs[run_id.int] = (_perf(), requested, provider, md, step, trace, parent, prompt, guard)
        except (AgentHalted, BudgetStoreUnavailable):
            raise  # a deliberate halt: the model is not called
        except Exception as e:
            self.recorder.note_internal_error("on_chat_model_start", e)

    def _model_end(self, response: Any, *, run_id: UUID, error: BaseException | None = None, **kwargs: Any) -> None:
        """``on_llm_end`` itself (LangChain calls it after every model call, so no wrapper in between);
        ``on_llm_error`` calls it with the error and no response."""
        try:
            state = self._runs.pop(run_id.int, None)
            if state is _ROUTER_RUN:
                self._chain_end(run_id)
                return
            if state is None:  # attached after the call started: record what the end tells us
                state = (None, None, None, _EMPTY, None, None, None, None, None)
            t0, requested, provider, md, step, trace, parent, prompt, guard = state
            span = run_id  # the event's span and id; made text off this path (agentcost_core.events.text_ids)
            estimated = False
            extra = None
            if response is not None:
                usage, model, tier, cache_hit, generation, usage_error = read_result(response)
                model = model or requested
                if usage_error is not None:
                    logger.warning("agentcost: malformed usage from %s (%s); tokens estimated instead", model, usage_error)
                    extra = {"usage_error": usage_error}
                if usage is None:
                    usage = self._estimate(model, prompt, output_text(generation))
                    estimated = True
            else:
                usage = tier = generation = None
                model = requested
                cache_hit = False
            if guard is not None:
                run, res = guard
                if res is not None and res.flags:
                    extra = {**(extra or {}), **res.flags}
                if parent is None:  # a model call with no enclosing chain is its own run: forget it after
                    self._guarded.pop(trace or str(run_id), None)
                if response is None:
                    run.model_failed(res)
                else:
                    message = getattr(generation, "message", None)
                    calls = [(c.get("name"), c.get("args")) for c in getattr(message, "tool_calls", None) or ()]
                    run.after_model(res, usage, model=model, service_tier=tier, text=output_text(generation), tool_calls=calls)
            user_id, session_id, feature, agent_id, task_id = _attribution(md)
            route = (md.get(ROUTE_KEY) if md else None) or ACTIVE_ROUTE.get()
            routed_tier = None
            if route is not None:  # a ModelRouter chose this call's tier: tag it and record the decision
                span = str(run_id)  # the route event links to it by text
                routed_tier, extra = self._record_route(route, md, span, trace or span, step, extra)
            self.recorder.record_call(
                model, usage, requested, provider, tier, estimated, cache_hit,
                None if error is None else f"{type(error).__name__}: {error}"[:2000],
                user_id, session_id, feature, agent_id, task_id, step, trace or span, span, parent,
                None if t0 is None else _perf() - t0, extra, "llm", span,  # the run id is unique: it is the event id
                routed_tier,
            )  # fmt: skip
        except Exception as e:
            self.recorder.note_internal_error("on_llm_end" if error is None else "on_llm_error", e)

    def _record_route(self, route: Any, md: dict[str, Any], span: str, trace: str, step: str | None,
                      extra: dict[str, Any] | None) -> tuple[str | None, dict[str, Any]]:  # fmt: skip
        """The routing decision as its own ledger event (kind ``route``, parent = the call it chose)."""
        if not isinstance(route, dict):
            return None, extra or {}
        user_id, session_id, feature, agent_id, task_id = _attribution(md)
        self.recorder.record(
            None, None, kind="route", user_id=user_id, session_id=session_id, feature=feature, agent_id=agent_id,
            task_id=task_id, step=step, trace_id=trace, parent_id=span, extra=dict(route),
            event_id=route.get("id"), tier=route.get("tier"),
        )  # fmt: skip
        linked = {
            **(extra or {}), "route_id": route.get("id"), "route_reason": route.get("reason"),
            "top_tier": route.get("top_tier"), "top_model": route.get("top_model"),
        }  # fmt: skip
        return route.get("tier"), linked

    @staticmethod
    def _estimate(model: str | None, prompt: Any, output_text: str) -> Usage:
        counter = TokenCounter.for_model(model)
        if prompt and isinstance(prompt[0], str):
            msgs = [ChatMessage("user", p) for p in prompt]
        else:
            msgs = to_chat_messages(prompt[0]) if prompt else []
        return Usage(input=counter.count_messages(msgs).tokens, output=counter.count_text(output_text).tokens)


class CostCallbackHandler(_CostTracking, BaseCallbackHandler):
    """Sync handler; also runs inline (no thread hop) under async LangChain runs.

    ``CostCallbackHandler(ledger=None, *, user_id=None, session_id=None, feature=None,
    agent_id=None, task_id=None)``; ``ledger`` is a URL, a :class:`Ledger` or None for the
    default (``AGENTCOST_LEDGER`` or ``sqlite:///.agentcost/ledger.db``). ``keep_events=False``
    keeps only running totals in the handler (``events`` stays empty; ``total_cost`` and
    ``usage_by_model`` still add up), for a handler that lives as long as the process: the
    ledger still gets every event.
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
              "on_llm_end", "on_llm_error", "on_tool_start", "on_tool_end", "on_tool_error"):  # fmt: skip
    setattr(AsyncCostCallbackHandler, _name, _async_twin(_name))
del _name
