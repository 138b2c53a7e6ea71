"""``guard(agent)``: run a LlamaIndex agent under budgets, stuck detection, a kill switch and
circuit breakers, and get a result instead of an exception when a guard stops it.

Works with ``FunctionAgent``, ``ReActAgent`` (any ``BaseWorkflowAgent``) and ``AgentWorkflow``::

    guarded = guard(agent, budgets=Budget(usd="0.50"), stuck=True, kill_switch=True)
    result = await guarded.run("…")          # or guarded.run_sync("…") outside an event loop
    result.termination_reason   # None, or TerminationReason.BUDGET / REPEATED_TOOL / …
    result.output               # the agent's AgentOutput, or the best partial answer (a string)
    result.cost                 # Decimal USD of this run's model calls

Where the control sits. LlamaIndex instrumentation handlers cannot stop a run (the dispatcher
swallows their exceptions), so they only measure: each run gets its own
:class:`~agentcost_llamaindex.CostEventHandler` that keeps the events tagged with the run's id.
Control is in-band, for the duration of one run:

* the agent's ``llm`` (each agent's, in an ``AgentWorkflow``) is fronted by a thin delegating LLM.
  Before every model call it checks the kill switch and reserves the call's worst case on the
  budgets; a refusal raises :class:`AgentHalted` out of the agent's step, which ends the workflow.
  After the call it settles the provider's reported usage (read by the same parser the handler
  uses) and gives the stuck monitor the model's text and requested tool calls. A pending nudge is
  appended to the next call's messages as a user message, shown once;
* the agent's ``_call_tool`` is fronted as well (a tool's own exception is turned into an error
  result by LlamaIndex, so a halt could not be raised from inside a tool): a halt is raised before
  the tool runs, an open circuit answers with an error result instead of calling the tool, and the
  result (or failure) goes to the stuck monitor and the circuit breaker;
* the run's stream events (``ToolCall``, ``ToolCallResult``, ``AgentOutput``) feed the guard only
  where those fronts could not be installed (a custom ``Workflow`` emitting the agent events); a
  halt found there ends the run with ``handler.cancel_run()``.

Hard and graceful stops. Budget and kill-switch halts stop the run at once; the result
carries the best answer found so far. A stuck verdict (repeated tool, similar outputs, no progress,
iteration cap) ends gracefully by default (``wrap_up=True``): tool calls the agent asked for
meanwhile are not run (each answers that the agent is being stopped), and the agent's next model
call is sent without tools and with an instruction to answer now from what it has. Its answer ends
the run the normal way (its own ``AgentOutput``, memory updated); that call still passes the kill
switch and the budgets, and a model that asks for tools anyway is stopped hard. LlamaIndex's own
``early_stopping_method="generate"`` (reached through ``ctx.store["max_iterations"]``) is not used
for this: its final call sees only the memory, not the tool calls and results of the current run,
which ``FunctionAgent`` / ``ReActAgent`` keep in their scratchpad until the run finishes.

The user's objects are changed only while a guarded run is in flight: the fronts are instance
attributes set when the first guarded run of an agent starts and removed when the last one ends;
a run of the same agent that is not guarded meanwhile goes straight through them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from llama_index.core.agent.workflow import AgentInput, AgentOutput, ToolCall, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, LLMMetadata, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM
from llama_index.core.tools import ToolOutput
from pydantic import Field

from agentcost_core import ChatMessage as CoreMessage
from agentcost_core import CostEvent, Ledger, TokenCounter, Usage
from agentcost_core.budgets import Reservation, ScopeContext
from agentcost_core.errors import UsageFormatError
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import AgentHalted, TerminationReason
from agentcost_core.parsers import from_chat_response
from agentcost_core.recorder import resolve_ledger

from .attribution import RUN_ID_TAG, attribution_from_tags
from .handler import CostEventHandler
from .messages import response_text, to_core_messages, tools_text

__all__ = ["GuardedAgent", "GuardedResult", "guard"]

logger = logging.getLogger("agentcost.llamaindex")

_ACTIVE: ContextVar[_RunState | None] = ContextVar("agentcost_llamaindex_guarded_run", default=None)

_OPTIONS = frozenset({"catalog", "user_id", "session_id", "feature", "agent_id", "task_id"})
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


@dataclass
class GuardedResult:
    """What a guarded run produced. ``output`` is the agent's own output (an ``AgentOutput``) when
    it finished, gracefully stopped runs included; after a hard stop it is the best partial answer
    (a string, or None when there was none)."""

    output: Any
    termination_reason: TerminationReason | None
    cost: Decimal
    events: list[CostEvent] = field(default_factory=list)
    answer: str | None = None  # the final answer text (the agent's, or the best partial one)
    final_message: ChatMessage | None = None  # set when a guard stopped the run
    halt: AgentHalted | None = None
    nudges: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return self.termination_reason is not None


# --- cost capture ---------------------------------------------------------------------------
class _RunCostHandler(CostEventHandler):
    """A :class:`CostEventHandler` that records only the LLM calls of one workflow run (the events
    the workflow tags with its run id), so concurrent guarded runs never record each other's."""

    run_id: Any = Field(default=None, exclude=True, repr=False)

    @classmethod
    def class_name(cls) -> str:
        return "GuardedRunCostHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        tags = getattr(event, "tags", None)
        if tags and tags.get(RUN_ID_TAG) == self.run_id:
            super().handle(event, **kwargs)


def _covered_elsewhere(ledger: Ledger) -> bool:
    """Is an ``instrument()`` handler already writing this process's LLM calls into ``ledger``?"""
    for h in get_dispatcher().event_handlers:
        if (
            isinstance(h, CostEventHandler)
            and not isinstance(h, _RunCostHandler)
            and getattr(h.recorder, "ledger", None) is ledger
        ):
            return True
    return False


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


# --- the fronts -----------------------------------------------------------------------------
def _history(user_msg: Any, chat_history: Any) -> list[Any]:
    messages = list(chat_history or ())
    if user_msg is not None:
        messages.append(_user(user_msg) if isinstance(user_msg, str) else user_msg)
    return messages


def _prompt(messages: list[Any]) -> str:
    return "\n\n".join(m.content or "" for m in messages)


def _delegate(name: str, mode: str, prompt: bool = False) -> Callable[..., Any]:
    """A ``_GuardedLLM`` method: ``inner.<name>`` directly outside a guarded run, else through the
    run's guard (``mode``: ``call`` / ``acall`` / ``stream`` / ``astream``)."""
    stream = "stream" in mode

    def prepare(fn: Any, first: Any, kwargs: dict[str, Any]) -> tuple[list[Any], Callable[..., Any]]:
        if prompt:
            return [_user(first)], lambda m, wrap: fn(_prompt(m), **kwargs)
        return list(first), lambda m, wrap: fn(m, **kwargs)

    if mode.startswith("a"):

        async def amethod(self: Any, first: Any, **kwargs: Any) -> Any:
            state = _ACTIVE.get()
            fn = getattr(self.inner, name)
            if state is None:
                return await fn(first, **kwargs)
            messages, call = prepare(fn, first, kwargs)
            return await state.acall(self.inner, messages, None, False, call, stream)

        amethod.__name__ = name
        return amethod

    def method(self: Any, first: Any, **kwargs: Any) -> Any:
        state = _ACTIVE.get()
        fn = getattr(self.inner, name)
        if state is None:
            return fn(first, **kwargs)
        messages, call = prepare(fn, first, kwargs)
        return state.call(self.inner, messages, None, False, call, stream)

    method.__name__ = name
    return method


def _delegate_tools(name: str, plain: str, mode: str) -> Callable[..., Any]:
    """A ``_GuardedLLM`` ``*_with_tools`` method; the messages are ``chat_history`` + ``user_msg``."""
    stream = "stream" in mode

    def prepare(self: Any, tools: Any, kwargs: dict[str, Any]) -> tuple[list[Any], Callable[..., Any]]:
        messages = _history(kwargs.pop("user_msg", None), kwargs.pop("chat_history", None))
        if not kwargs.get("tool_required", True):
            kwargs.pop("tool_required")  # older integrations do not take the argument at all
        fn, wrap_fn = getattr(self.inner, name), getattr(self.inner, plain)
        return messages, lambda m, wrap: wrap_fn(m) if wrap else fn(tools, chat_history=m, **kwargs)

    if mode.startswith("a"):

        async def amethod(self: Any, tools: Sequence[Any], **kwargs: Any) -> Any:
            state = _ACTIVE.get()
            if state is None:
                return await getattr(self.inner, name)(tools, **kwargs)
            messages, call = prepare(self, tools, kwargs)
            return await state.acall(self.inner, messages, tools, True, call, stream)

        amethod.__name__ = name
        return amethod

    def method(self: Any, tools: Sequence[Any], **kwargs: Any) -> Any:
        state = _ACTIVE.get()
        if state is None:
            return getattr(self.inner, name)(tools, **kwargs)
        messages, call = prepare(self, tools, kwargs)
        return state.call(self.inner, messages, tools, True, call, stream)

    method.__name__ = name
    return method


class _GuardedLLM(FunctionCallingLLM):
    """Delegates every call to ``inner``; inside a guarded run each call goes through the run's
    guard first (no LlamaIndex span of its own: the inner LLM's events are the ones measured)."""

    inner: Any = Field(default=None, exclude=True)

    def __init__(self, inner: LLM) -> None:
        own = {}
        for name in ("callback_manager", "system_prompt", "messages_to_prompt", "completion_to_prompt",
                     "output_parser", "pydantic_program_mode", "query_wrapper_prompt"):  # fmt: skip
            value = getattr(inner, name, None)
            if value is not None:
                own[name] = value
        super().__init__(inner=inner, **own)

    @classmethod
    def class_name(cls) -> str:
        return "AgentcostGuardedLLM"

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # type: ignore[misc]
        except AttributeError:
            inner = self.__dict__.get("inner")
            if inner is None or name.startswith("__"):
                raise
            return getattr(inner, name)

    @property
    def metadata(self) -> LLMMetadata:
        return self.inner.metadata

    # --- delegation: chat and completion (a prompt travels as one user message) -------------
    chat = _delegate("chat", "call")
    achat = _delegate("achat", "acall")
    stream_chat = _delegate("stream_chat", "stream")
    astream_chat = _delegate("astream_chat", "astream")
    complete = _delegate("complete", "call", prompt=True)
    acomplete = _delegate("acomplete", "acall", prompt=True)
    stream_complete = _delegate("stream_complete", "stream", prompt=True)
    astream_complete = _delegate("astream_complete", "astream", prompt=True)
    # function calling: a wrap-up call goes out as the plain chat call, without tools
    chat_with_tools = _delegate_tools("chat_with_tools", "chat", "call")
    achat_with_tools = _delegate_tools("achat_with_tools", "achat", "acall")
    stream_chat_with_tools = _delegate_tools("stream_chat_with_tools", "stream_chat", "stream")
    astream_chat_with_tools = _delegate_tools("astream_chat_with_tools", "astream_chat", "astream")

    def _prepare_chat_with_tools(
        self, tools: Sequence[Any], tool_required: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        return self.inner._prepare_chat_with_tools_compat(tools, tool_required=tool_required, **kwargs)

    def _validate_chat_with_tools_response(self, response: Any, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.inner._validate_chat_with_tools_response(response, tools, **kwargs)

    def get_tool_calls_from_response(self, response: Any, error_on_no_tool_call: bool = True, **kwargs: Any) -> Any:
        return self.inner.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


def _front_call_tool(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def _call_tool(ctx: Any, tool: Any, tool_input: dict) -> Any:
        state = _ACTIVE.get()
        if state is None:
            return await original(ctx, tool, tool_input)
        return await state.call_tool(original, ctx, tool, tool_input)

    return _call_tool


def _front_llm(llm: Any) -> Any:
    return llm if isinstance(llm, _GuardedLLM) else _GuardedLLM(llm)


# Instance attributes set while guarded runs are in flight, counted per (object, attribute).
_PATCH_LOCK = threading.Lock()
_PATCHES: dict[tuple[int, str], list[Any]] = {}  # -> [count, obj, had own value, own value]


def _patch(obj: Any, attr: str, make: Callable[[Any], Any]) -> None:
    key = (id(obj), attr)
    with _PATCH_LOCK:
        entry = _PATCHES.get(key)
        if entry is None:
            own = obj.__dict__
            entry = [0, obj, attr in own, own.get(attr)]
            object.__setattr__(obj, attr, make(getattr(obj, attr)))
            _PATCHES[key] = entry
        entry[0] += 1


def _unpatch(obj: Any, attr: str) -> None:
    key = (id(obj), attr)
    with _PATCH_LOCK:
        entry = _PATCHES.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] > 0:
            return
        del _PATCHES[key]
        if entry[2]:
            object.__setattr__(obj, attr, entry[3])
        else:
            obj.__dict__.pop(attr, None)


class _Fronts:
    """The fronts installed for one run of ``agent``; :meth:`remove` takes them away again."""

    def __init__(self, agent: Any) -> None:
        self.done: list[tuple[Any, str]] = []
        agents = getattr(agent, "agents", None)
        owners = list(agents.values()) if isinstance(agents, dict) else [agent]
        try:
            llm_owners = [a for a in owners if isinstance(getattr(a, "llm", None), LLM)]
            for a in llm_owners:
                _patch(a, "llm", _front_llm)
                self.done.append((a, "llm"))
            self.llm = bool(llm_owners) and len(llm_owners) == len(owners)
            self.tools = False
            if inspect.iscoroutinefunction(getattr(agent, "_call_tool", None)) and hasattr(agent, "__dict__"):
                _patch(agent, "_call_tool", _front_call_tool)
                self.done.append((agent, "_call_tool"))
                self.tools = True
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        while self.done:
            _unpatch(*self.done.pop())


# --- the guarded agent ----------------------------------------------------------------------
def _text_of(output: Any) -> str | None:
    if output is None:
        return None
    if isinstance(output, str):
        return output
    response = getattr(output, "response", None)  # AgentOutput
    if response is not None:
        content = getattr(response, "content", None)
        return content if isinstance(content, str) else None
    return str(output)


def _halt_in(error: BaseException) -> AgentHalted | None:
    seen = 0
    e: BaseException | None = error
    while e is not None and seen < 16:
        if isinstance(e, AgentHalted):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


class GuardedAgent:
    """What ``guard()`` returns. ``await run(...)`` (or ``run_sync(...)``) gives a
    :class:`GuardedResult`; every run has its own guard state, cost capture and run id."""

    def __init__(self, agent: Any, controls: Controls, ledger: Ledger, wrap_up: bool, options: dict[str, Any]) -> None:
        self.agent = agent
        self.controls = controls
        self.ledger = ledger
        self.wrap_up = wrap_up
        self.options = options

    def _scope(self, run_id: str) -> ScopeContext:
        tagged, _ = attribution_from_tags(active_instrument_tags.get())
        o = self.options
        return ScopeContext(
            trace_id=run_id,
            session_id=tagged.get("session_id") or o.get("session_id"),
            user_id=tagged.get("user_id") or o.get("user_id"),
            feature=tagged.get("feature") or o.get("feature"),
            agent_id=tagged.get("agent_id") or o.get("agent_id"),
        )

    async def run(
        self, user_msg: Any = None, *, on_event: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> GuardedResult:
        """Run the agent once (``user_msg`` and ``kwargs`` as for ``agent.run``: ``chat_history``,
        ``memory``, ``ctx``, ``max_iterations``, ``run_id`` …). ``on_event`` (sync or async) sees
        every stream event of the run."""
        run_id = str(kwargs.pop("run_id", None) or uuid.uuid4())
        state = _RunState(self.controls.start(self._scope(run_id)), self.wrap_up)
        ledger = Ledger("memory://", sync=True) if _covered_elsewhere(self.ledger) else self.ledger
        costs = _RunCostHandler(ledger, **self.options)
        costs.run_id = run_id
        costs.attach()
        fronts: _Fronts | None = None
        try:
            fronts = _Fronts(self.agent)
            state.llm_fronted, state.tools_fronted = fronts.llm, fronts.tools
            if user_msg is not None:
                kwargs["user_msg"] = user_msg
            token = _ACTIVE.set(state)  # the workflow's tasks are created now and keep it
            try:
                handler = self.agent.run(run_id=run_id, **kwargs)
            finally:
                _ACTIVE.reset(token)
            output, halt = await self._drive(state, handler, on_event)
        finally:
            state.close()
            if fronts is not None:
                fronts.remove()
            costs.detach()
        return self._result(costs, state, output, halt)

    def run_sync(self, user_msg: Any = None, **kwargs: Any) -> GuardedResult:
        """``asyncio.run(self.run(...))``, for code that is not already inside an event loop."""
        return asyncio.run(self.run(user_msg, **kwargs))

    @staticmethod
    async def _drive(
        state: _RunState, handler: Any, on_event: Callable[[Any], Any] | None
    ) -> tuple[Any, AgentHalted | None]:
        halt: AgentHalted | None = None
        watch = not (state.llm_fronted and state.tools_fronted)
        try:
            async for ev in handler.stream_events():
                if on_event is not None:
                    out = on_event(ev)
                    if inspect.isawaitable(out):
                        await out
                if watch and halt is None:
                    try:
                        state.observe(ev)
                    except AgentHalted as e:  # seen after the fact: stop the workflow where it is
                        halt = e
                        await handler.cancel_run()
                        break
            output = await handler
        except AgentHalted as e:
            return None, e
        except Exception as e:
            found = halt or _halt_in(e)
            if found is None:
                raise
            return None, found
        finally:
            done = getattr(handler, "is_done", None)
            if callable(done) and not done():
                await handler.cancel_run()
        if halt is not None:
            return None, halt
        return output, None

    @staticmethod
    def _result(costs: CostEventHandler, state: _RunState, output: Any, halt: AgentHalted | None) -> GuardedResult:
        events = list(costs.events)
        cost = sum((e.cost for e in events if e.cost is not None), Decimal(0))
        run = state.run
        nudges = list(run.nudges)
        if halt is None:
            halt = state.halt  # a graceful stop: the workflow finished with the wrap-up answer
            if halt is None:
                return GuardedResult(output, None, cost, events, _text_of(output), nudges=nudges)
        best = halt.partial if halt.partial is not None else run.best_answer()
        answer = (_text_of(output) or best) if output is not None else best
        stated = f"I had to stop before finishing ({halt.reason}): {halt}"
        stated = stated if stated.endswith(".") else stated + "."
        text = f"{stated} The best answer I found so far: {answer}" if answer else f"{stated} I found no answer yet."
        final = ChatMessage(role=MessageRole.ASSISTANT, content=text)
        return GuardedResult(
            output if output is not None else answer, halt.reason, cost, events, answer, final, halt, nudges
        )


def guard(
    agent: Any,
    *,
    budgets: Any = None,
    stuck: Any = None,
    kill_switch: Any = None,
    breaker: Any = None,
    ledger: Any = None,
    wrap_up: bool = True,
    **options: Any,
) -> GuardedAgent:
    """Wrap a ``FunctionAgent``, ``ReActAgent`` or ``AgentWorkflow`` (or a workflow that streams
    the agent events).

    ``budgets``: a Budget, several, or a BudgetEnforcer; ``stuck``: a StuckDetector or True;
    ``kill_switch``: a KillSwitch or True (``AGENTCOST_KILL_SWITCH``); ``breaker``: a
    CircuitBreaker or True. ``wrap_up``: end a stuck agent with one final answer call (True) or at
    once (False). ``ledger`` (a Ledger, a URL or None for the default) and ``options`` (``catalog``
    and the attribution defaults ``user_id``, ``session_id``, ``feature``, ``agent_id``,
    ``task_id``; ``instrument_tags`` set around a run override them) are those of ``instrument()``.
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"guard() got unknown option(s) {sorted(unknown)}; use {sorted(_OPTIONS)}")
    if not callable(getattr(agent, "run", None)):
        raise TypeError(f"guard() takes a LlamaIndex agent or workflow, got {type(agent).__name__}")
    if not isinstance(wrap_up, bool):
        raise TypeError(f"wrap_up must be True or False, got {wrap_up!r}")
    controls = Controls(budgets=budgets, stuck=stuck, kill_switch=kill_switch, breaker=breaker)
    if not controls.active:
        raise TypeError("guard() needs at least one of budgets=, stuck=, kill_switch=, breaker=")
    resolved = resolve_ledger(ledger)
    controls.attach(resolved, "llamaindex")
    return GuardedAgent(agent, controls, resolved, wrap_up, options)
