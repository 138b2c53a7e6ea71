"""The state of one guarded run: every model and tool call of the run goes through it.

A :class:`_RunState` holds the run's :class:`~agentcost_core.guards.run_guard.RunGuard`; the fronts
(:mod:`agentcost_llamaindex.guarded_llm`) find it in the ``_ACTIVE`` context variable, which is set
while the workflow's tasks are created, so they keep it. Each model call is a :class:`_ModelCall`:
it reserves the call's worst case on the budgets before the call and settles the provider's
reported usage after it (or releases the reservation when the call fails). A pending nudge goes
with the next call as a user message; a pending stuck halt turns the next call into the wrap-up
call (``WRAP_UP_MESSAGE``, no tools) and answers the tool calls asked for meanwhile with a "not
run" note. Where the fronts could not be installed, the run's stream events feed the guard
instead (:meth:`_RunState.observe`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from contextvars import ContextVar
from typing import Any

from llama_index.core.agent.workflow import AgentInput, AgentOutput, ToolCall, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import ToolOutput

from agentcost_core import ChatMessage as CoreMessage
from agentcost_core import TokenCounter, Usage
from agentcost_core.budgets import Reservation
from agentcost_core.errors import UsageFormatError
from agentcost_core.guards.run_guard import RunGuard
from agentcost_core.halts import AgentHalted
from agentcost_core.parsers import from_chat_response

from .messages import response_text, to_core_messages, tools_text

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


# --- one model call -------------------------------------------------------------------------
def _model_name(llm: Any) -> str | None:
    model = getattr(llm, "model", None)
    if not isinstance(model, str):
        try:
            model = llm.metadata.model_name
        except Exception:  # noqa: BLE001 - an exotic LLM: price it at the fallback
            model = None
    return model if isinstance(model, str) and model and model != "unknown" else None


def _max_tokens(llm: Any) -> int | None:
    value = getattr(llm, "max_tokens", None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


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


def _requested_tools(llm: Any, response: Any, with_tools: bool) -> list[tuple[str, Any]]:
    if response is None:
        return []
    selections = None
    if with_tools:
        try:
            selections = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
        except Exception:  # noqa: BLE001 - not every integration implements it: read the blocks
            selections = None
    if selections is not None:
        return [(s.tool_name, s.tool_kwargs) for s in selections]
    message = getattr(response, "message", None)
    blocks = getattr(message, "blocks", None) or ()
    return [(b.tool_name, b.tool_kwargs) for b in blocks if getattr(b, "block_type", None) == "tool_call"]


def _user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)


class _ModelCall:
    """One model call under a run's guard: reserve before, settle or release after (once)."""

    __slots__ = ("done", "exact", "inner", "messages", "model", "res", "state", "tokens", "tools", "with_tools", "wrap")

    def __init__(
        self, state: _RunState, inner: Any, messages: list[Any], tools: Any, with_tools: bool, wrap: bool
    ) -> None:
        self.state = state
        self.inner = inner
        self.messages = messages
        self.tools = tools
        self.with_tools = with_tools
        self.wrap = wrap
        self.model = _model_name(inner)
        core = to_core_messages(messages)
        schemas = tools_text({"tools": tools}) if tools else None
        if schemas:
            core.append(CoreMessage("system", schemas))
        count = TokenCounter.for_model(self.model).count_messages(core)
        self.tokens = count.tokens
        self.exact = count.exact
        self.res: Reservation | None = None
        self.done = False

    def _gate(self, run: RunGuard) -> None:
        if self.wrap:  # the stuck halt waits for this one call; kill switch and budgets still apply
            pending, run.halt = run.halt, None
            try:
                self.res = run.before_model(self.model, self.tokens, _max_tokens(self.inner), estimated=not self.exact)
            finally:
                run.halt = pending
        else:
            self.res = run.before_model(self.model, self.tokens, _max_tokens(self.inner), estimated=not self.exact)

    async def _agate(self, run: RunGuard) -> None:
        if self.wrap:
            self._gate(run)  # synchronous: the pending halt must not be lifted across an await
        else:
            self.res = await run.abefore_model(
                self.model, self.tokens, _max_tokens(self.inner), estimated=not self.exact
            )

    def finish(self, response: Any) -> None:
        if self.done:
            return
        self.done = True
        self.state.open.discard(self)
        try:
            self._settle(response)
        except Exception as e:  # noqa: BLE001 - our fault: never the user's problem
            logger.error("agentcost: could not account for a guarded model call: %r", e)
        if self.wrap:
            self.state.conclude()

    def _settle(self, response: Any) -> None:
        found = None
        if response is not None:
            try:
                found = from_chat_response(response)
            except UsageFormatError:
                found = None
        usage = found.usage if found is not None else None
        model = (found.model if found is not None else None) or self.model
        if usage is None:  # no reported usage: count it ourselves
            text = response_text(response)
            usage = Usage(
                input=self.tokens, output=TokenCounter.for_model(model).count_text(text).tokens if text else 0
            )
        self.state.run.after_model(
            self.res, usage, model=model, service_tier=found.service_tier if found is not None else None,
            text=_visible_text(response), tool_calls=_requested_tools(self.inner, response, self.with_tools),
        )  # fmt: skip

    def fail(self, error: BaseException) -> None:
        """Release the reservation; a failed wrap-up call ends the run with the stuck halt instead."""
        if self.done:
            return
        self.done = True
        self.state.open.discard(self)
        self.state.run.model_failed(self.res)
        if self.wrap and isinstance(error, Exception):
            halt = self.state.conclude()
            if halt is not None:
                raise halt from error


# --- the state of one guarded run -------------------------------------------------------------
class _RunState:
    def __init__(self, run: RunGuard, wrap_up: bool) -> None:
        self.run = run
        self.wrap_up = wrap_up
        self.wrapping = False  # the wrap-up call of a graceful stop was made
        self.halt: AgentHalted | None = None  # the halt that ended a gracefully stopped run
        self.llm_fronted = False
        self.tools_fronted = False
        self.open: set[_ModelCall] = set()

    def stuck_pending(self) -> bool:
        """A stuck halt is pending and will end the run gracefully."""
        run = self.run
        return self.wrap_up and run.halt is not None and run.termination is None

    def conclude(self) -> AgentHalted | None:
        """Make the pending halt final (recorded once, raised by every later model or tool call)."""
        try:
            self.run.check()
        except AgentHalted as e:
            self.halt = e
            return e
        return None

    def close(self) -> None:
        for call in list(self.open):  # a stream never consumed: release what it holds
            call.done = True
            self.run.model_failed(call.res)
        self.open.clear()

    # --- model calls ------------------------------------------------------------------------
    def _begin(self, inner: Any, messages: Sequence[Any], tools: Any, with_tools: bool) -> _ModelCall:
        run = self.run
        messages = list(messages)
        wrap = False
        if self.stuck_pending() and not self.wrapping:
            self.wrapping = wrap = True
            messages.append(_user(WRAP_UP_MESSAGE.format(why=_why(run.halt))))
            tools = None
        else:
            nudge = run.take_nudge()
            if nudge:
                messages.append(_user(_NOTE + nudge))
        call = _ModelCall(self, inner, messages, tools, with_tools and not wrap, wrap)
        self.open.add(call)
        return call

    def _failed(self, call: _ModelCall, error: BaseException) -> None:
        self.open.discard(call)
        if isinstance(error, AgentHalted) and call.res is None and not call.done:
            call.done = True  # refused before the call: nothing was reserved
            return
        call.fail(error)

    async def acall(self, inner: Any, messages: Sequence[Any], tools: Any, with_tools: bool,
                    call: Callable[[list[Any], bool], Awaitable[Any]], stream: bool = False) -> Any:  # fmt: skip
        """One async model call through the guard (``stream``: ``call`` gives an async generator)."""
        mc = self._begin(inner, messages, tools, with_tools)
        try:
            await mc._agate(self.run)
            out = await call(mc.messages, mc.wrap)
        except BaseException as e:
            self._failed(mc, e)
            raise
        if stream:
            return self._aiter(mc, out)
        mc.finish(out)
        return out

    def call(self, inner: Any, messages: Sequence[Any], tools: Any, with_tools: bool,
             call: Callable[[list[Any], bool], Any], stream: bool = False) -> Any:  # fmt: skip
        """One sync model call through the guard (``stream``: ``call`` gives a generator)."""
        mc = self._begin(inner, messages, tools, with_tools)
        try:
            mc._gate(self.run)
            out = call(mc.messages, mc.wrap)
        except BaseException as e:
            self._failed(mc, e)
            raise
        if stream:
            return self._iter(mc, out)
        mc.finish(out)
        return out

    async def _aiter(self, mc: _ModelCall, stream: Any) -> AsyncGenerator[Any, None]:
        last = None
        try:
            async for chunk in stream:
                last = chunk
                yield chunk
        except GeneratorExit:  # the consumer stopped early: the tokens were still billed
            mc.finish(last)
            raise
        except BaseException as e:
            self._failed(mc, e)
            raise
        mc.finish(last)

    def _iter(self, mc: _ModelCall, stream: Any) -> Generator[Any, None, None]:
        last = None
        try:
            for chunk in stream:
                last = chunk
                yield chunk
        except GeneratorExit:
            mc.finish(last)
            raise
        except BaseException as e:
            self._failed(mc, e)
            raise
        mc.finish(last)

    # --- tool calls -------------------------------------------------------------------------
    async def call_tool(self, original: Callable[..., Awaitable[Any]], ctx: Any, tool: Any, tool_input: dict) -> Any:
        run = self.run
        try:
            name = tool.metadata.get_name()
        except Exception:  # noqa: BLE001
            name = getattr(getattr(tool, "metadata", None), "name", None) or "tool"
        if self.stuck_pending():
            pending, run.halt = run.halt, None
            try:
                run.check()  # the kill switch and earlier halts still stop the run at once
            finally:
                run.halt = pending
            return ToolOutput(
                tool_name=name, content=_NOT_RUN.format(why=_why(run.halt)), raw_input=tool_input, is_error=True
            )
        blocked = run.before_tool(name, tool_input)  # raises a halt
        if blocked is not None:
            return ToolOutput(tool_name=name, content=blocked, raw_input=tool_input, is_error=True)
        out = await original(ctx, tool, tool_input)
        error = None
        if getattr(out, "is_error", False):
            error = getattr(out, "exception", None) or RuntimeError(str(getattr(out, "content", "") or "tool error"))
        try:
            run.after_tool(name, None if error is not None else getattr(out, "content", out), error)
        except Exception as e:  # noqa: BLE001 - our fault: never the user's problem
            logger.error("agentcost: could not account for tool %r: %r", name, e)
        return out

    # --- stream events (where the fronts are missing) ---------------------------------------
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
