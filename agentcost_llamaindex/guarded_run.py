"""The state of one guarded run: every model and tool call of the run goes through it.

A :class:`_RunState` holds the run's :class:`~agentcost_core.guards.run_guard.RunGuard`; the
guarded copies (:mod:`agentcost_llamaindex.guarded_llm`) find it in the ``_ACTIVE`` context
variable, which is set while the workflow's tasks are created, so they keep it. Each model call
is a :class:`~agentcost_core.call.ModelCall` (messages, tool schemas, image parts, the LLM's
``max_tokens`` and ``service_tier``) run inside the guard's call scope (``run.call`` /
``run.acall``): the kill switch and the budget reservation of its worst case before it, the
:class:`~agentcost_core.call.Outcome` settled after it, the reservation released on an error or a
cancellation. A stream is reserved when its first chunk is asked for and settled at its last (or
where the consumer stopped: the tokens so far were billed).

A pending nudge goes with the next call as a user message; a pending stuck halt is deferred while
the next call is made as the wrap-up call (``WRAP_UP_MESSAGE``, no tools), and tool calls asked
for meanwhile are answered with a "not run" note. Where the copies could not front the model or
the tools, the run's stream events feed the guard instead (:meth:`_RunState.observe`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from llama_index.core.agent.workflow import AgentInput, AgentOutput, ToolCall, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import ToolOutput

from agentcost_core.call import ModelCall, Outcome, describe_error
from agentcost_core.guards.run_guard import RunGuard
from agentcost_core.halts import AgentHalted, passes_through

from .messages import image_count, to_core_messages, tools_text
from .recording import model_call_settings, read_response

__all__ = ["WRAP_UP_MESSAGE"]

logger = logging.getLogger("agentcost.llamaindex")

_ACTIVE: ContextVar[_RunState | None] = ContextVar("agentcost_llamaindex_guarded_run", default=None)

_NOTE = "[agentcost] "
#: The instruction sent with the wrap-up call of a graceful stop.
WRAP_UP_MESSAGE = (
    _NOTE + "Stop working on the task now. {why}. Do not call any more tools. Using only the information you "
    "already have, give your final answer to the user now (if you were told to use a specific format for "
    "final answers, use it)."
)
_NOT_RUN = _NOTE + "Not run: the agent is being stopped. {why}. Give your final answer with what you have."


def _why(halt: Any) -> str:
    return str(halt).rstrip(". ")


def _user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)


# --- reading an LLM and its responses -------------------------------------------------------
def _model_name(llm: Any) -> str | None:
    model = getattr(llm, "model", None)
    if not isinstance(model, str):
        try:
            model = llm.metadata.model_name
        except Exception:  # noqa: BLE001 - an exotic LLM: price it at the fallback
            model = None
    return model if isinstance(model, str) and model and model != "unknown" else None


def _visible_text(response: Any) -> str:
    """The model's prose (tool-call blocks excluded: they are reported as tool calls)."""
    if response is None:
        return ""
    message = getattr(response, "message", None)
    if message is not None:
        content = getattr(message, "content", None)
        return content if isinstance(content, str) else ""
    text = getattr(response, "text", None)
    return text if isinstance(text, str) else ""


def _requested_tools(llm: Any, response: Any, with_tools: bool) -> tuple[tuple[str, Any], ...]:
    if response is None:
        return ()
    selections = None
    if with_tools:
        try:
            selections = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
        except Exception:  # noqa: BLE001 - not every integration implements it: read the blocks
            selections = None
    if selections is not None:
        return tuple((s.tool_name, s.tool_kwargs) for s in selections)
    message = getattr(response, "message", None)
    blocks = getattr(message, "blocks", None) or ()
    return tuple((b.tool_name, b.tool_kwargs) for b in blocks if getattr(b, "block_type", None) == "tool_call")


def model_call(llm: Any, messages: Sequence[Any], tools: Any, trace_id: str | None = None) -> ModelCall:
    """The :class:`ModelCall` an LLM is about to make: its model, messages, tool schemas, image
    parts, and the ``max_tokens`` / ``service_tier`` / completions (``n``) it is configured with."""
    max_tokens, service_tier, choices = model_call_settings(llm)
    return ModelCall(
        model=_model_name(llm),
        messages=to_core_messages(messages),
        tools=tools_text({"tools": tools}) if tools else None,
        images=image_count(messages),
        max_tokens=max_tokens,
        service_tier=service_tier,
        choices=choices,
        trace_id=trace_id,
        framework="llamaindex",
    )


def outcome_of(llm: Any, response: Any, with_tools: bool) -> Outcome:
    """What a call returned (for a stream: its last chunk), as an :class:`Outcome`. Never raises:
    whatever cannot be read is estimated and marked."""
    found, usage_error = read_response(response)
    try:
        text, calls = _visible_text(response), _requested_tools(llm, response, with_tools)
    except Exception as e:  # noqa: BLE001 - our fault: the call is estimated from its input
        logger.error("agentcost: could not read a LlamaIndex response: %r", e)
        text, calls = "", ()
    return Outcome(
        usage=found.usage, model=found.model, service_tier=found.service_tier, text=text, tool_calls=calls,
        usage_error=usage_error, usage_provider=found.provider,
    )  # fmt: skip


# --- the state of one guarded run -------------------------------------------------------------
class _RunState:
    def __init__(self, run: RunGuard, wrap_up: bool) -> None:
        self.run = run
        self.wrap_up = wrap_up
        self.wrapping = False  # the wrap-up call of a graceful stop was made
        self.deferred: AgentHalted | None = None  # the stuck halt waiting for the wrap-up call
        self.halt: AgentHalted | None = None  # the halt that ended a gracefully stopped run
        self.llm_fronted = False
        self.tools_fronted = False
        self.exporters: Any = None  # the run's exporters (execute_tool spans), if any
        self.attribution: Any = None  # the run's attribution defaults (for those spans)
        # id(response) -> (response, what the run's cost handler priced it at for the budgets)
        self.priced: dict[int, tuple[Any, Decimal]] = {}

    def note_priced(self, response: Any, event: Any, budget_cost: Decimal) -> None:
        """The run's cost handler recorded the call that returned ``response``."""
        self.priced[id(response)] = (response, budget_cost)

    def cost_of(self, response: Any) -> Decimal | None:
        """What the ledger's event for ``response`` settles the budgets at (None: not recorded, the
        accountant prices the outcome itself), so the ledger and the budgets count the same."""
        found = self.priced.pop(id(response), None)
        return found[1] if found is not None and found[0] is response else None

    def _defer(self) -> AgentHalted | None:
        """With ``wrap_up``, a pending stuck halt waits here (not in the run guard, whose next
        check would raise it) until the wrap-up call is made."""
        run = self.run
        if self.wrap_up and self.deferred is None and run.halt is not None and run.termination is None:
            self.deferred, run.halt = run.halt, None
        return self.deferred

    def conclude(self) -> AgentHalted | None:
        """Make the stuck halt final (recorded once, raised by every later model or tool call)."""
        run = self.run
        if self.deferred is not None:
            run.halt, self.deferred = self.deferred, None
        try:
            run.check()
        except AgentHalted as e:
            self.halt = e
            return e
        return None

    # --- model calls ------------------------------------------------------------------------
    def _prepare(self, messages: Sequence[Any], tools: Any) -> tuple[list[Any], Any, bool]:
        """The messages and tools the call goes out with, and whether it is the wrap-up call."""
        messages = list(messages)
        halt = self._defer()
        if halt is not None:
            if self.wrapping:  # another call while (or after) the wrap-up call: the halt stands
                raise self.conclude() or halt
            self.wrapping = True
            messages.append(_user(WRAP_UP_MESSAGE.format(why=_why(halt))))
            return messages, None, True
        nudge = self.run.take_nudge()
        if nudge:
            messages.append(_user(_NOTE + nudge))
        return messages, tools, False

    def _failed(self, wrap: bool, error: BaseException) -> None:
        """A failed wrap-up call ends the run with the stuck halt instead."""
        if wrap and not passes_through(error) and not isinstance(error, AgentHalted):
            halt = self.conclude()
            if halt is not None:
                raise halt from error

    async def acall(self, llm: Any, messages: Sequence[Any], tools: Any, with_tools: bool,
                    call: Callable[[list[Any], bool], Awaitable[Any]]) -> Any:  # fmt: skip
        """One async model call through the run's guard."""
        messages, tools, wrap = self._prepare(messages, tools)
        mc = model_call(llm, messages, tools, self.run.ctx.trace_id)
        try:
            async with self.run.acall(mc) as scope:
                response = await call(messages, wrap)
                scope.outcome = outcome_of(llm, response, with_tools and not wrap)
                scope.cost = self.cost_of(response)
        except BaseException as e:
            self._failed(wrap, e)
            raise
        if wrap:
            self.conclude()
        return response

    def call(self, llm: Any, messages: Sequence[Any], tools: Any, with_tools: bool,
             call: Callable[[list[Any], bool], Any]) -> Any:  # fmt: skip
        """One sync model call through the run's guard."""
        messages, tools, wrap = self._prepare(messages, tools)
        mc = model_call(llm, messages, tools, self.run.ctx.trace_id)
        try:
            with self.run.call(mc) as scope:
                response = call(messages, wrap)
                scope.outcome = outcome_of(llm, response, with_tools and not wrap)
                scope.cost = self.cost_of(response)
        except BaseException as e:
            self._failed(wrap, e)
            raise
        if wrap:
            self.conclude()
        return response

    def astream(self, llm: Any, messages: Sequence[Any], tools: Any, with_tools: bool,
                call: Callable[[list[Any], bool], Awaitable[Any]]) -> AsyncGenerator[Any, None]:  # fmt: skip
        """One async streaming call: the guard's scope opens at the first chunk asked for."""
        messages, tools, wrap = self._prepare(messages, tools)
        mc = model_call(llm, messages, tools, self.run.ctx.trace_id)

        async def chunks() -> AsyncGenerator[Any, None]:
            last = None
            try:
                async with self.run.acall(mc) as scope:
                    stream = await call(messages, wrap)
                    try:
                        async for chunk in stream:
                            last = chunk
                            yield chunk
                    except GeneratorExit:  # the consumer stopped early: the tokens so far were billed
                        pass
                    scope.outcome = outcome_of(llm, last, with_tools and not wrap)
                    scope.cost = self.cost_of(last)
            except BaseException as e:
                self._failed(wrap, e)
                raise
            if wrap:
                self.conclude()

        return chunks()

    def stream(self, llm: Any, messages: Sequence[Any], tools: Any, with_tools: bool,
               call: Callable[[list[Any], bool], Any]) -> Generator[Any, None, None]:  # fmt: skip
        """One sync streaming call: the guard's scope opens at the first chunk asked for."""
        messages, tools, wrap = self._prepare(messages, tools)
        mc = model_call(llm, messages, tools, self.run.ctx.trace_id)

        def chunks() -> Generator[Any, None, None]:
            last = None
            try:
                with self.run.call(mc) as scope:
                    stream = call(messages, wrap)
                    try:
                        for chunk in stream:
                            last = chunk
                            yield chunk
                    except GeneratorExit:  # the consumer stopped early: the tokens so far were billed
                        pass
                    scope.outcome = outcome_of(llm, last, with_tools and not wrap)
                    scope.cost = self.cost_of(last)
            except BaseException as e:
                self._failed(wrap, e)
                raise
            if wrap:
                self.conclude()

        return chunks()

    # --- tool calls -------------------------------------------------------------------------
    async def call_tool(self, original: Callable[..., Awaitable[Any]], ctx: Any, tool: Any, tool_input: dict) -> Any:
        run = self.run
        try:
            name = tool.metadata.get_name()
        except Exception:  # noqa: BLE001
            name = getattr(getattr(tool, "metadata", None), "name", None) or "tool"
        halt = self._defer()
        if halt is not None:
            run.check()  # the kill switch and earlier halts still stop the run at once
            return ToolOutput(tool_name=name, content=_NOT_RUN.format(why=_why(halt)), raw_input=tool_input, is_error=True)
        blocked = run.before_tool(name, tool_input)  # raises a halt
        if blocked is not None:
            return ToolOutput(tool_name=name, content=blocked, raw_input=tool_input, is_error=True)
        started = time.time_ns()
        out = await original(ctx, tool, tool_input)
        error = None
        if getattr(out, "is_error", False):
            error = getattr(out, "exception", None) or RuntimeError(str(getattr(out, "content", "") or "tool error"))
        if self.exporters is not None:
            self.exporters.tool(name, started, time.time_ns(), error=error, attribution=self.attribution)
        try:
            run.after_tool(name, None if error is not None else getattr(out, "content", out), error)
        except Exception as e:  # noqa: BLE001 - our fault: never the user's problem
            logger.error("agentcost: could not account for tool %r: %s", name, describe_error(e, keep_message=True))
        return out

    # --- stream events (where the copies could not front the model or the tools) -------------
    def observe(self, ev: Any) -> None:
        run = self.run
        if not self.llm_fronted:
            if isinstance(ev, AgentInput):  # a model call is about to be made
                run.check()
            elif isinstance(ev, AgentOutput):
                calls = [(t.tool_name, t.tool_kwargs) for t in ev.tool_calls]
                run.after_model(None, None, text=ev.response.content or "", tool_calls=calls)
        if not self.tools_fronted:
            if isinstance(ev, ToolCall):
                run.before_tool(ev.tool_name, ev.tool_kwargs, check_breaker=False)
            elif isinstance(ev, ToolCallResult):
                out = ev.tool_output
                error = (out.exception or RuntimeError(str(out.content))) if out.is_error else None
                run.after_tool(ev.tool_name, None if error is not None else out.content, error)
