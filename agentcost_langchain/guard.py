"""``guard(agent)``: run an existing agent under budgets, stuck detection, a kill switch and
circuit breakers, and get a result instead of an exception when a guard stops it.

Works with a ``create_agent`` agent, any LangGraph compiled graph and a langchain-classic
``AgentExecutor``::

    guarded = guard(agent, budgets=Budget(usd="0.50"), stuck=True, kill_switch=True)
    result = guarded.invoke({"messages": [("user", "…")]})
    result.termination_reason   # None, or TerminationReason.BUDGET / REPEATED_TOOL / …
    result.output               # the agent's output, or the best partial answer
    result.cost                 # Decimal

Halts come from a :class:`CostCallbackHandler` with ``raise_error`` (sync handlers do stop the
run; LangChain swallows exceptions of async handlers called from sync code). The agent's tools
are fronted by a thin proxy so that a nudge reaches the model as part of a tool result and an
open circuit answers "unavailable" instead of calling the tool; outside a guarded run the proxy
simply calls the tool.
"""

from __future__ import annotations

import copy
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool

from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.exporters import Exporters
from agentcost_core.guards.result import GuardedResult, stop_text
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import AgentHalted, TerminationReason, passes_through

from .callbacks import CostCallbackHandler
from .handler_guards import scope_of
from .messages import content_text

__all__ = ["TERMINATION_KEY", "GuardedAgent", "GuardedResult", "final_message", "guard", "termination_of"]

#: ``AIMessage.additional_kwargs`` key holding the termination reason of a graceful guarded stop.
TERMINATION_KEY = "agentcost_termination_reason"
_ACTIVE: ContextVar[RunGuard | None] = ContextVar("agentcost_guarded_run", default=None)


class _GuardedTool(BaseTool):
    """A proxy that delivers nudges and open-circuit answers; transparent outside guard()."""

    inner: BaseTool

    def __init__(self, inner: BaseTool) -> None:
        super().__init__(
            name=inner.name,
            description=inner.description,
            args_schema=inner.args_schema,
            return_direct=inner.return_direct,
            response_format=inner.response_format,
            inner=inner,
        )

    def _run(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - invoke/run are overridden
        raise NotImplementedError

    @staticmethod
    def _blocked(tool_input: Any, message: str, name: str) -> Any:
        if isinstance(tool_input, dict) and tool_input.get("type") == "tool_call":
            return ToolMessage(content=message, tool_call_id=tool_input.get("id") or "", name=name, status="error")
        return message

    def _failed(self, run: RunGuard, tool_input: Any, error: Exception) -> Any:
        """With a circuit breaker, a failing tool answers with its error (the agent can adapt and
        the breaker counts it); without one, the error propagates as it would unguarded."""
        if passes_through(error) or isinstance(error, AgentHalted) or run.controls.breaker is None:
            raise error  # LangGraph interrupts pause the run; they are not tool failures
        return self._blocked(tool_input, f"Error: tool {self.name!r} failed: {type(error).__name__}: {error}", self.name)

    @staticmethod
    def _nudged(out: Any, nudge: str | None) -> Any:
        if not nudge:
            return out
        note = f"\n\n[agentcost] {nudge}"
        if isinstance(out, ToolMessage):
            return out.model_copy(update={"content": content_text(out.content) + note})
        if isinstance(out, str):
            return out + note
        return f"{out}{note}"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        run = _ACTIVE.get()
        if run is None:
            return self.inner.invoke(input, config, **kwargs)
        blocked = run.tool_blocked(self.name)
        if blocked is not None:
            return self._blocked(input, blocked, self.name)
        try:
            out = self.inner.invoke(input, config, **kwargs)
        except Exception as e:
            out = self._failed(run, input, e)
        return self._nudged(out, run.take_nudge())

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        run = _ACTIVE.get()
        if run is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        blocked = run.tool_blocked(self.name)
        if blocked is not None:
            return self._blocked(input, blocked, self.name)
        try:
            out = await self.inner.ainvoke(input, config, **kwargs)
        except Exception as e:
            out = self._failed(run, input, e)
        return self._nudged(out, run.take_nudge())

    def run(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:  # AgentExecutor calls run()
        run = _ACTIVE.get()
        if run is None:
            return self.inner.run(tool_input, *args, **kwargs)
        blocked = run.tool_blocked(self.name)
        if blocked is not None:
            return blocked
        return self._nudged(self.inner.run(tool_input, *args, **kwargs), run.take_nudge())

    async def arun(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        run = _ACTIVE.get()
        if run is None:
            return await self.inner.arun(tool_input, *args, **kwargs)
        blocked = run.tool_blocked(self.name)
        if blocked is not None:
            return blocked
        return self._nudged(await self.inner.arun(tool_input, *args, **kwargs), run.take_nudge())


def final_message(halt: AgentHalted, best: str | None) -> AIMessage:
    """The agent's last word when a guard stops it: the best answer so far and why it stopped."""
    return AIMessage(content=stop_text(halt, best), additional_kwargs={TERMINATION_KEY: halt.reason.value})


def termination_of(messages: Any) -> TerminationReason | None:
    """The termination reason a guard middleware left on the last AI message, if any."""
    for m in reversed(list(messages or ())):
        if isinstance(m, AIMessage):
            reason = (m.additional_kwargs or {}).get(TERMINATION_KEY)
            return TerminationReason(reason) if reason else None
    return None


def _proxy(tool: Any) -> Any:
    return tool if isinstance(tool, _GuardedTool) or not isinstance(tool, BaseTool) else _GuardedTool(tool)


def _front_tools(agent: Any) -> Any:
    """A copy of the agent whose tools are fronted by the proxy; the user's agent, its graph and
    its tool nodes are left as they were."""
    try:
        from langchain_classic.agents import AgentExecutor
    except ImportError:  # pragma: no cover - langchain-classic is optional
        AgentExecutor = None  # type: ignore[assignment,misc]
    if AgentExecutor is not None and isinstance(agent, AgentExecutor):
        return agent.model_copy(update={"tools": [_proxy(t) for t in agent.tools]})
    nodes = getattr(agent, "nodes", None)
    if not isinstance(nodes, dict) or not hasattr(agent, "copy"):
        return agent
    fronted = {}
    for name, node in nodes.items():
        bound = getattr(node, "bound", None)
        tools = getattr(bound, "_tools_by_name", None)
        if isinstance(tools, dict):  # a LangGraph ToolNode: a copy of it with proxied tools
            tool_node = copy.copy(bound)
            tool_node._tools_by_name = {n: _proxy(t) for n, t in tools.items()}
            for attr in ("func", "afunc"):  # methods bound to the original node: bind them to the copy
                method = getattr(tool_node, attr, None)
                if getattr(method, "__self__", None) is bound:
                    setattr(tool_node, attr, types.MethodType(method.__func__, tool_node))
            fronted[name] = node.copy({"bound": tool_node})
    if not fronted:
        return agent
    return agent.copy({"nodes": {**nodes, **fronted}})


def _final_text(output: Any) -> str | None:
    if isinstance(output, dict):
        if isinstance(output.get("output"), str):  # AgentExecutor
            return output["output"]
        messages = output.get("messages")
        if messages:
            for m in reversed(messages):
                if getattr(m, "type", None) == "ai" and content_text(m.content).strip():
                    return content_text(m.content)
    if isinstance(output, str):
        return output
    return None


_HANDLER_OPTIONS = ("catalog", "log_prompts", "exporters", "anomalies")  # the handler's options, not attribution


class GuardedAgent(Runnable[Any, GuardedResult]):
    """The Runnable ``guard()`` returns. ``invoke`` / ``ainvoke`` (and ``batch``) give a
    :class:`GuardedResult`; every invocation is one run with its own guard state."""

    def __init__(self, agent: Any, controls: Controls, ledger: Any, attribution: dict[str, Any]) -> None:
        self.agent = _front_tools(agent)
        self.controls = controls
        self.ledger = ledger
        self.attribution = attribution
        self.defaults = Attribution.of({k: v for k, v in attribution.items() if k not in _HANDLER_OPTIONS})
        #: The name of the run's ``invoke_agent`` span (exporters): the agent id, else the agent's name.
        self.name = self.defaults.agent_id or getattr(agent, "name", None) or type(agent).__name__

    def flush(self) -> None:
        """Store every event recorded so far in the ledger (before reading it back)."""
        from agentcost_core.recorder import resolve_ledger

        resolve_ledger(self.ledger).flush()

    def _start(self, config: RunnableConfig | None) -> tuple[CostCallbackHandler, RunGuard, RunnableConfig]:
        handler = CostCallbackHandler(self.ledger, controls=self.controls, **self.attribution)
        config = dict(config or {})  # type: ignore[assignment]
        md = dict(config.get("metadata") or {})
        configurable = config.get("configurable") or {}
        if "thread_id" in configurable and "thread_id" not in md:
            md["thread_id"] = configurable["thread_id"]
        attribution = read_attribution(md, defaults=self.defaults)
        run = handler.fixed_run = self.controls.start(scope_of(str(uuid.uuid4()), attribution))
        callbacks = config.get("callbacks")
        if callbacks is None:
            config["callbacks"] = [handler]
        elif isinstance(callbacks, list):
            config["callbacks"] = [*callbacks, handler]
        else:  # a callback manager
            callbacks = callbacks.copy()
            callbacks.add_handler(handler, inherit=True)
            config["callbacks"] = callbacks
        config["metadata"] = md
        return handler, run, config  # type: ignore[return-value]

    @staticmethod
    def _result(handler: CostCallbackHandler, run: RunGuard, output: Any, halt: AgentHalted | None) -> GuardedResult:
        events = list(handler.events)
        cost = sum((e.cost for e in events if e.cost is not None), Decimal(0))
        if halt is None:
            # A guard middleware inside the agent may have ended it gracefully: its reason is on the last message.
            messages = output.get("messages") if isinstance(output, dict) else None
            reason = termination_of(messages) if messages else None
            final = messages[-1] if reason is not None else None
            return GuardedResult(output, reason, cost, events, _final_text(output), final, nudges=list(run.nudges))
        best = halt.partial if halt.partial is not None else run.best_answer()
        message = final_message(halt, best)
        return GuardedResult(best, halt.reason, cost, events, best, message, halt, list(run.nudges))

    def _agent_span(self, handler: CostCallbackHandler) -> Any:
        """Around one run: the exporters' agent span (``invoke_agent {name}``), current while the
        agent runs so its model and tool spans are children; a no-op without exporters."""
        exporters = handler.recorder.exporters
        if exporters is None:
            return nullcontext(None)
        return exporters.agent_run(self.name, handler.recorder.defaults)

    @staticmethod
    def _finish(span: Any, result: GuardedResult) -> GuardedResult:
        if span is not None:
            span.finish(result.events, result.termination_reason)
        return result

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> GuardedResult:
        handler, run, config = self._start(config)
        with self._agent_span(handler) as span:
            token = _ACTIVE.set(run)
            try:
                output = self.agent.invoke(input, config, **kwargs)
            except AgentHalted as halt:
                return self._finish(span, self._result(handler, run, None, halt))
            finally:
                _ACTIVE.reset(token)
            return self._finish(span, self._result(handler, run, output, None))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> GuardedResult:
        handler, run, config = self._start(config)
        with self._agent_span(handler) as span:
            token = _ACTIVE.set(run)
            try:
                output = await self.agent.ainvoke(input, config, **kwargs)
            except AgentHalted as halt:
                return self._finish(span, self._result(handler, run, None, halt))
            finally:
                _ACTIVE.reset(token)
            return self._finish(span, self._result(handler, run, output, None))


    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        """The agent's own stream, chunk by chunk as it runs; the last item is the
        :class:`GuardedResult` (its ``output`` is None after a streamed run that finished: the
        chunks were the output)."""
        handler, run, config = self._start(config)
        with self._agent_span(handler) as span:
            token = _ACTIVE.set(run)
            halt = None
            last = None
            try:
                for chunk in self.agent.stream(input, config, **kwargs):
                    last = chunk
                    yield chunk
            except AgentHalted as e:
                halt = e
            finally:
                _ACTIVE.reset(token)
            result = self._finish(span, self._result(handler, run, None if halt is not None else _values(last), halt))
        yield result

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        """:meth:`stream` for async code."""
        handler, run, config = self._start(config)
        with self._agent_span(handler) as span:
            token = _ACTIVE.set(run)
            halt = None
            last = None
            try:
                async for chunk in self.agent.astream(input, config, **kwargs):
                    last = chunk
                    yield chunk
            except AgentHalted as e:
                halt = e
            finally:
                _ACTIVE.reset(token)
            result = self._finish(span, self._result(handler, run, None if halt is not None else _values(last), halt))
        yield result


def _values(chunk: Any) -> Any:
    """A streamed chunk when it is the graph's whole state (``stream_mode="values"``), else None."""
    return chunk if isinstance(chunk, dict) and "messages" in chunk else None


def guard(
    agent: Any,
    *,
    budgets: Any = None,
    stuck: Any = None,
    kill_switch: Any = None,
    breaker: Any = None,
    ledger: Any = None,
    catalog: Any = None,
    log_prompts: bool = False,
    exporters: Any = None,
    anomalies: Any = None,
    **attribution: Any,
) -> GuardedAgent:
    """Wrap a ``create_agent`` agent, a LangGraph graph or an ``AgentExecutor``.

    ``budgets``: a Budget, several, or a BudgetEnforcer; ``stuck``: a StuckDetector or True;
    ``kill_switch``: a KillSwitch or True (``AGENTCOST_KILL_SWITCH``); ``breaker``: a
    CircuitBreaker or True. ``ledger`` and the attribution keywords (``user_id``, ``session_id``,
    ``feature``, ``agent_id``, ``task_id``) are those of :class:`CostCallbackHandler`;
    ``catalog`` prices both the ledger and the budgets; ``log_prompts=True`` keeps provider error
    messages and tool arguments in the ledger (off by default); ``exporters=[OTelExporter(...)]``
    also get an ``invoke_agent`` span around each run; ``anomalies`` a SpendAnomalies fed every model
    call (as for the handler). The agent itself is not changed:
    the guarded copy fronts the tools.
    """
    controls = Controls(budgets=budgets, stuck=stuck, kill_switch=kill_switch, breaker=breaker)
    if not controls.active:
        raise TypeError("guard() needs at least one of budgets=, stuck=, kill_switch=, breaker=")
    if catalog is not None:
        attribution["catalog"] = catalog  # the handler's accountant: the ledger and the budgets price with it
    if log_prompts:
        attribution["log_prompts"] = log_prompts  # the handler's, like catalog
    if exporters is not None:
        Exporters.of(exporters)  # bad exporters fail here, not at the first run
        attribution["exporters"] = exporters
    if anomalies is not None:
        attribution["anomalies"] = anomalies  # the handler's recorder feeds it every call
    return GuardedAgent(agent, controls, ledger, attribution)
