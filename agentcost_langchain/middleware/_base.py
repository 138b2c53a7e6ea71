"""What the guard middlewares share: one :class:`RunGuard` per agent run, found through a private
per-run state key, and the graceful end (a final AIMessage that says what was found and why the
agent stopped, carrying the termination reason in ``additional_kwargs``)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

from langchain.agents.middleware.types import AgentMiddleware, AgentState, ModelResponse, PrivateStateAttr
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.channels.untracked_value import UntrackedValue
from typing_extensions import NotRequired

from agentcost_core.budgets import ScopeContext
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import AgentHalted
from agentcost_core.parsers import usage_and_tier
from agentcost_core.tokens import TokenCounter
from agentcost_core.usage import Usage

from ..callbacks import _attribution
from ..guard import TERMINATION_KEY, final_message, termination_of
from ..messages import content_text, to_chat_messages, tools_json

__all__ = ["GuardMiddleware", "GuardState", "TERMINATION_KEY", "termination_of"]

logger = logging.getLogger("agentcost")


class GuardState(AgentState[Any]):
    """Adds a private per-run id (not checkpointed) that the middlewares key their state by."""

    agentcost_run: NotRequired[Annotated[str, UntrackedValue, PrivateStateAttr]]


class GuardMiddleware(AgentMiddleware[GuardState, Any]):
    """Base of the guard middlewares: subclasses pass the :class:`Controls` they enforce."""

    state_schema = GuardState

    def __init__(self, controls: Controls, *, ledger: Any = None, **attribution: Any) -> None:
        super().__init__()
        self.controls = controls
        if ledger is not None:
            from agentcost_core.recorder import resolve_ledger

            controls.attach(resolve_ledger(ledger), "langchain")
        self.attribution = attribution
        self._runs: dict[str, RunGuard] = {}  # per-run state; runs that raise are forgotten too
        self.last_termination: AgentHalted | None = None

    # --- the run ---------------------------------------------------------------------------
    def before_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        run_id = state.get("agentcost_run") or str(uuid.uuid4())
        if run_id not in self._runs:
            self._runs[run_id] = self.controls.start(self._context(run_id))
        return {"agentcost_run": run_id}

    async def abefore_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)

    def after_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        run = self._runs.pop(state.get("agentcost_run") or "", None)
        if run is not None and run.termination is not None:
            self.last_termination = run.termination
        return None

    async def aafter_agent(self, state: GuardState, runtime: Any) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)

    def _context(self, run_id: str) -> ScopeContext:
        md: dict[str, Any] = {}
        try:
            from langgraph.config import get_config

            config = get_config()
            md = {**(config.get("metadata") or {})}
            md.setdefault("thread_id", (config.get("configurable") or {}).get("thread_id"))
        except Exception:  # outside a graph run: attribution from the constructor only
            pass
        user_id, session_id, feature, agent_id, _ = _attribution({k: v for k, v in md.items() if v is not None})
        a = self.attribution
        return ScopeContext(
            trace_id=run_id,
            session_id=session_id or a.get("session_id"),
            user_id=user_id or a.get("user_id"),
            feature=feature or a.get("feature"),
            agent_id=agent_id or a.get("agent_id"),
        )

    def _forget(self, state: Any) -> None:
        """A run ended by an exception (after_agent will not run): drop its state."""
        run_id = state.get("agentcost_run") if isinstance(state, dict) else None
        if run_id:
            self._runs.pop(run_id, None)

    def _run(self, state: Any) -> RunGuard:
        run_id = (state or {}).get("agentcost_run") if isinstance(state, dict) else None
        run = self._runs.get(run_id or "")
        if run is None:  # e.g. a hook called outside before_agent: a run of its own
            run_id = run_id or str(uuid.uuid4())
            if len(self._runs) >= 10_000:  # a bound for hosts whose runs never reach after_agent
                self._runs.pop(next(iter(self._runs)))
            run = self._runs[run_id] = self.controls.start(self._context(run_id))
        return run

    # --- helpers for subclasses ------------------------------------------------------------
    @staticmethod
    def _prompt_tokens(request: Any) -> tuple[str | None, int, bool, int | None]:
        model = request.model
        name = getattr(model, "model_name", None) or getattr(model, "model", None)
        name = name if isinstance(name, str) else None
        messages = list(request.messages)
        if request.system_message is not None:
            messages.insert(0, request.system_message)
        counter = TokenCounter.for_model(name)
        count = counter.count_messages(to_chat_messages(messages))
        tokens, estimated = count.tokens, not count.exact
        if request.tools:  # tool schemas are billed input: count them (their framing is estimated)
            tokens += counter.count_text(tools_json(request.tools)).tokens
            estimated = True
        settings = request.model_settings or {}
        max_tokens = settings.get("max_tokens") or getattr(model, "max_tokens", None)
        return name, tokens, estimated, max_tokens if isinstance(max_tokens, int) else None

    @staticmethod
    def _outcome(response: Any) -> tuple[Any, str | None, str | None, str, list[tuple[str, Any]]]:
        """(usage, served model, tier, text, tool calls) of a model response."""
        messages = getattr(response, "result", None) or ([response] if isinstance(response, AIMessage) else [])
        ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if ai is None:
            return None, None, None, "", []
        usage, tier = usage_and_tier(ai.usage_metadata) if ai.usage_metadata else (None, None)
        md = ai.response_metadata or {}
        model = md.get("model_name") or md.get("model")
        calls = [(c.get("name"), c.get("args")) for c in ai.tool_calls or ()]
        return usage, model, tier or md.get("service_tier"), content_text(ai.content), calls

    def _stop(self, run: RunGuard, halt: AgentHalted) -> ModelResponse:
        if halt.partial is None:
            halt.partial = run.best_answer()
        if run.termination is None:
            run.termination = halt
        self.last_termination = halt
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
        if halt.details.get("action") == "block":
            self._forget(state)
            raise halt  # the user asked for a hard stop
        return self._stop(run, halt)

    def _model_plan(self, request: Any) -> tuple[str | None, int, bool, int | None]:
        if self.controls.enforcer is None:
            return None, 0, False, None
        return self._prompt_tokens(request)

    def _settle(self, run: RunGuard, res: Any, name: str | None, response: Any, prompt_tokens: int = 0) -> None:
        usage, model, tier, text, calls = self._outcome(response)
        if usage is None and res is not None:  # no usage reported: count it rather than settle at $0
            counter = TokenCounter.for_model(model or name)
            usage = Usage(input=prompt_tokens, output=counter.count_text(text + json.dumps(calls, default=str)).tokens)
        run.after_model(res, usage, model=model or name, service_tier=tier, text=text, tool_calls=calls)

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        run = self._run(request.state)
        name, tokens, estimated, max_tokens = self._model_plan(request)
        try:
            res = run.before_model(name, tokens, max_tokens, estimated=estimated)
        except AgentHalted as halt:
            return self._refusal(run, halt, request.state)
        try:
            response = handler(self._with_nudge(request, run.take_nudge()))
        except BaseException:
            run.model_failed(res)
            self._forget(request.state)
            raise
        self._settle(run, res, name, response, tokens)
        return response

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        run = self._run(request.state)
        name, tokens, estimated, max_tokens = self._model_plan(request)
        try:
            res = await run.abefore_model(name, tokens, max_tokens, estimated=estimated)
        except AgentHalted as halt:
            return self._refusal(run, halt, request.state)
        try:
            response = await handler(self._with_nudge(request, run.take_nudge()))
        except BaseException:  # errors and cancellation release the reservation
            run.model_failed(res)
            self._forget(request.state)
            raise
        self._settle(run, res, name, response, tokens)
        return response

    def _tool_gate(self, run: RunGuard, request: Any) -> ToolMessage | None:
        call = request.tool_call
        try:
            blocked = run.before_tool(call.get("name"), call.get("args"))
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
            run.after_tool(name, None, RuntimeError(content))
        else:
            run.after_tool(name, content, None)
        return out

    def _tool_failed(self, run: RunGuard, request: Any, error: Exception) -> ToolMessage:
        run.after_tool(request.tool_call.get("name"), None, error)
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
