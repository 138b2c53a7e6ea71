"""What the guard middlewares share: one :class:`RunGuard` per agent run, found through a private
per-run state key, and the graceful end (a final AIMessage that says what was found and why the
agent stopped, carrying the termination reason in ``additional_kwargs``)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import OrderedDict
from typing import Annotated, Any

from langchain.agents.middleware.types import AgentMiddleware, AgentState, ModelResponse, PrivateStateAttr
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.channels.untracked_value import UntrackedValue
from typing_extensions import NotRequired

from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.call import ModelCall, Outcome, choices_of
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import AgentHalted, CallRefused, passes_through

from ..handler_guards import scope_of
from ..guard import TERMINATION_KEY, final_message, termination_of
from ..messages import content_text, images_in_messages, to_chat_messages, tools_json
from ..response import outcome_of_message

__all__ = ["GuardMiddleware", "GuardState", "TERMINATION_KEY", "termination_of"]

logger = logging.getLogger("agentcost")
_MAX_RUNS = 10_000  # a bound for hosts whose runs never reach after_agent


class GuardState(AgentState[Any]):
    """Adds a private per-run id (not checkpointed) that the middlewares key their state by."""

    agentcost_run: NotRequired[Annotated[str, UntrackedValue, PrivateStateAttr]]


def _setting(request: Any, *names: str) -> Any:
    settings = request.model_settings or {}
    for name in names:
        value = settings.get(name)
        if value is None:
            value = getattr(request.model, name, None)
        if value is not None:
            return value
    return None


def model_call_of(request: Any, attribution: Attribution, trace: str) -> ModelCall:
    """The :class:`ModelCall` of a ``create_agent`` model request."""
    model = request.model
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    messages = list(request.messages)
    if request.system_message is not None:
        messages.insert(0, request.system_message)
    max_tokens = _setting(request, "max_tokens", "max_completion_tokens", "max_output_tokens")
    tier = _setting(request, "service_tier")
    return ModelCall(
        model=name if isinstance(name, str) else None,
        messages=to_chat_messages(messages),
        tools=tools_json(request.tools) if request.tools else None,
        images=images_in_messages(messages),
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
        service_tier=tier if isinstance(tier, str) and tier not in ("auto", "default") else None,
        choices=choices_of(request.model_settings, model),
        attribution=attribution,
        trace_id=trace,
        framework="langchain",
    )


def outcome_of_response(response: Any) -> Outcome:
    """The :class:`Outcome` of a model handler's response (a ModelResponse or an AIMessage)."""
    messages = getattr(response, "result", None) or ([response] if isinstance(response, AIMessage) else [])
    ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    return Outcome() if ai is None else outcome_of_message(ai)


class GuardMiddleware(AgentMiddleware[GuardState, Any]):
    """Base of the guard middlewares: subclasses pass the :class:`Controls` they enforce.

    Each agent run gets its own :class:`RunGuard`, keyed by a private per-run state id and
    dropped when the run ends (a bounded number is kept for runs that end by an exception)."""

    state_schema = GuardState

    def __init__(self, controls: Controls, *, ledger: Any = None, **attribution: Any) -> None:
        super().__init__()
        self.controls = controls
        if ledger is not None:
            from agentcost_core.recorder import resolve_ledger

            controls.attach(resolve_ledger(ledger), "langchain")
        self.attribution = Attribution.of(attribution)
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, RunGuard] = OrderedDict()

    # --- the run ---------------------------------------------------------------------------
    def before_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        run_id = state.get("agentcost_run") or str(uuid.uuid4())
        self._run_for(run_id)
        return {"agentcost_run": run_id}

    async def abefore_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)  # no I/O: starting a run is bookkeeping

    def after_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        self._forget(state)
        return None

    async def aafter_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)

    def _context_attribution(self) -> Attribution:
        try:
            from langgraph.config import get_config

            config = get_config()
        except Exception:  # outside a graph run: attribution from the constructor only
            return self.attribution
        return read_attribution(config.get("metadata"), defaults=self.attribution,
                                configurable=config.get("configurable"))  # fmt: skip

    def _run_for(self, run_id: str) -> RunGuard:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._runs[run_id] = self.controls.start(scope_of(run_id, self._context_attribution()))
                if len(self._runs) > _MAX_RUNS:
                    self._runs.popitem(last=False)
            return run

    def _forget(self, state: Any) -> None:
        run_id = state.get("agentcost_run") if isinstance(state, dict) else None
        if run_id:
            with self._lock:
                self._runs.pop(run_id, None)

    def _run(self, state: Any) -> RunGuard:
        run_id = state.get("agentcost_run") if isinstance(state, dict) else None
        return self._run_for(run_id or str(uuid.uuid4()))

    # --- helpers for subclasses ------------------------------------------------------------
    def _call(self, run: RunGuard, request: Any) -> ModelCall:
        try:
            return model_call_of(request, self._context_attribution(), run.ctx.trace_id or "")
        except Exception as e:  # our fault: refuse under hard budgets, else go ahead unreserved
            self.controls.internal_error_before_call(e)
            return ModelCall(None, trace_id=run.ctx.trace_id, framework="langchain")

    def _stop(self, run: RunGuard, halt: AgentHalted) -> ModelResponse:
        if halt.partial is None:
            halt.partial = run.best_answer()
        if run.termination is None:
            run.termination = halt
        return ModelResponse(result=[final_message(halt, halt.partial)])

    @staticmethod
    def _with_nudge(request: Any, nudge: str | None) -> Any:
        if not nudge:
            return request
        return request.override(messages=[*request.messages, HumanMessage(content=f"[agentcost] {nudge}")])

    @staticmethod
    def _tool_message(request: Any, text: str) -> ToolMessage:
        call = request.tool_call
        return ToolMessage(content=text, tool_call_id=call.get("id") or "", name=call.get("name"), status="error")

    # --- the hooks -------------------------------------------------------------------------
    def _refusal(self, run: RunGuard, halt: AgentHalted, state: Any) -> ModelResponse:
        if halt.details.get("action") == "block" or isinstance(halt, CallRefused):
            self._forget(state)
            raise halt  # the user asked for a hard stop
        return self._stop(run, halt)

    def _settle(self, run: RunGuard, res: Any, call: ModelCall, response: Any) -> None:
        try:
            outcome = outcome_of_response(response)
            if outcome.usage_error:
                logger.warning("agentcost: malformed usage from %s (%s); tokens estimated instead",
                               outcome.model or call.model, outcome.usage_error)  # fmt: skip
            run.close_call(res, call, outcome)
        except Exception as e:  # our fault: the agent goes on; the hold must not stay
            logger.error("agentcost internal error settling a model call: %r", e, exc_info=e)
            run.model_failed(res)

    async def _asettle(self, run: RunGuard, res: Any, call: ModelCall, response: Any) -> None:
        try:
            outcome = outcome_of_response(response)
            if outcome.usage_error:
                logger.warning("agentcost: malformed usage from %s (%s); tokens estimated instead",
                               outcome.model or call.model, outcome.usage_error)  # fmt: skip
            await run.aclose_call(res, call, outcome)
        except Exception as e:
            logger.error("agentcost internal error settling a model call: %r", e, exc_info=e)
            await run.amodel_failed(res)

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        run = self._run(request.state)
        try:
            call = self._call(run, request)
            res = run.open_call(call)
        except AgentHalted as halt:
            return self._refusal(run, halt, request.state)
        try:
            response = handler(self._with_nudge(request, run.take_nudge()))
        except BaseException as e:
            run.model_failed(res)
            if not passes_through(e):
                self._forget(request.state)
            raise
        self._settle(run, res, call, response)
        return response

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        run = self._run(request.state)
        try:
            call = self._call(run, request)
            res = await run.aopen_call(call)
        except AgentHalted as halt:
            return self._refusal(run, halt, request.state)
        try:
            response = await handler(self._with_nudge(request, run.take_nudge()))
        except BaseException as e:  # errors and cancellation release the reservation
            await asyncio.shield(run.amodel_failed(res))
            if not passes_through(e):
                self._forget(request.state)
            raise
        await asyncio.shield(self._asettle(run, res, call, response))
        return response

    def _tool_gate(self, run: RunGuard, request: Any) -> ToolMessage | None:
        call = request.tool_call
        try:
            blocked = run.before_tool(call.get("name"), call.get("args"), call_id=call.get("id"))
        except AgentHalted as halt:
            if halt.details.get("action") == "block":
                raise
            if run.termination is None:
                run.termination = halt  # the next model call ends the run with a final answer
            return self._tool_message(request, f"Not run: {halt}")
        return None if blocked is None else self._tool_message(request, blocked)

    def _tool_done(self, run: RunGuard, request: Any, out: Any) -> Any:
        name = request.tool_call.get("name")
        content = content_text(getattr(out, "content", "")) if isinstance(out, ToolMessage) else out
        if isinstance(out, ToolMessage) and out.status == "error":
            run.after_tool(name, None, RuntimeError(content), call_id=request.tool_call.get("id"))
        else:
            run.after_tool(name, content, None, call_id=request.tool_call.get("id"))
        return out

    def _tool_failed(self, run: RunGuard, request: Any, error: Exception) -> ToolMessage:
        if passes_through(error):  # a LangGraph interrupt is how the run pauses: not a tool failure
            run.tool_interrupted(request.tool_call.get("name"), call_id=request.tool_call.get("id"))
            raise error
        run.after_tool(request.tool_call.get("name"), None, error, call_id=request.tool_call.get("id"))
        if isinstance(error, AgentHalted) or self.controls.breaker is None:
            raise error
        return self._tool_message(request, f"Error: {type(error).__name__}: {error}")

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        run = self._run(request.state)
        stop = self._tool_gate(run, request)
        if stop is not None:
            return stop
        try:
            out = handler(request)
        except Exception as e:
            return self._tool_failed(run, request, e)
        return self._tool_done(run, request, out)

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        run = self._run(request.state)
        stop = self._tool_gate(run, request)
        if stop is not None:
            return stop
        try:
            out = await handler(request)
        except Exception as e:
            return self._tool_failed(run, request, e)
        return self._tool_done(run, request, out)
