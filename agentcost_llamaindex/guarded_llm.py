"""The guarded copy of an agent: ``guard()`` runs it instead of the user's agent.

:func:`guarded_copy` copies the agent (and, for an ``AgentWorkflow``, each member agent) with its
``llm`` fronted by a :class:`_GuardedLLM` and its class's ``_call_tool`` overridden by
:class:`_GuardedToolCalls` (a subclass made once per agent class). Both delegate to what they
front: directly outside a guarded run, else through the run's
:class:`~agentcost_llamaindex.guarded_run._RunState`, found in ``_ACTIVE``. The user's agent, LLM
and tools are never modified.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import LLMMetadata
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM
from pydantic import BaseModel, Field

from .guarded_run import _ACTIVE, _user

__all__ = ["guarded_copy"]


def _history(user_msg: Any, chat_history: Any) -> list[Any]:
    messages = list(chat_history or ())
    if user_msg is not None:
        messages.append(_user(user_msg) if isinstance(user_msg, str) else user_msg)
    return messages


def _prompt(messages: list[Any]) -> str:
    return "\n\n".join(m.content or "" for m in messages)


def _delegate(name: str, mode: str, prompt: bool = False) -> Callable[..., Any]:
    """A ``_GuardedLLM`` method: ``inner.<name>`` directly outside a guarded run, else through the
    run's guard (``mode``: the :class:`_RunState` method, ``call`` / ``acall`` / ``stream`` /
    ``astream``)."""

    def prepare(fn: Any, first: Any, kwargs: dict[str, Any]) -> tuple[list[Any], Callable[..., Any]]:
        if prompt:
            return [_user(first)], lambda m, wrap: fn(_prompt(m), **kwargs)
        return list(first), lambda m, wrap: fn(m, **kwargs)

    if mode in ("acall", "astream"):

        async def amethod(self: Any, first: Any, **kwargs: Any) -> Any:
            state = _ACTIVE.get()
            fn = getattr(self.inner, name)
            if state is None:
                return await fn(first, **kwargs)
            messages, call = prepare(fn, first, kwargs)
            through = getattr(state, mode)(self.inner, messages, None, False, call)
            return through if mode == "astream" else await through

        amethod.__name__ = name
        return amethod

    def method(self: Any, first: Any, **kwargs: Any) -> Any:
        state = _ACTIVE.get()
        fn = getattr(self.inner, name)
        if state is None:
            return fn(first, **kwargs)
        messages, call = prepare(fn, first, kwargs)
        return getattr(state, mode)(self.inner, messages, None, False, call)

    method.__name__ = name
    return method


def _delegate_tools(name: str, plain: str, mode: str) -> Callable[..., Any]:
    """A ``_GuardedLLM`` ``*_with_tools`` method; the messages are ``chat_history`` + ``user_msg``."""

    def prepare(self: Any, tools: Any, kwargs: dict[str, Any]) -> tuple[list[Any], Callable[..., Any]]:
        messages = _history(kwargs.pop("user_msg", None), kwargs.pop("chat_history", None))
        if not kwargs.get("tool_required", True):
            kwargs.pop("tool_required")  # older integrations do not take the argument at all
        fn, wrap_fn = getattr(self.inner, name), getattr(self.inner, plain)
        return messages, lambda m, wrap: wrap_fn(m) if wrap else fn(tools, chat_history=m, **kwargs)

    if mode in ("acall", "astream"):

        async def amethod(self: Any, tools: Sequence[Any], **kwargs: Any) -> Any:
            state = _ACTIVE.get()
            if state is None:
                return await getattr(self.inner, name)(tools, **kwargs)
            messages, call = prepare(self, tools, kwargs)
            through = getattr(state, mode)(self.inner, messages, tools, True, call)
            return through if mode == "astream" else await through

        amethod.__name__ = name
        return amethod

    def method(self: Any, tools: Sequence[Any], **kwargs: Any) -> Any:
        state = _ACTIVE.get()
        if state is None:
            return getattr(self.inner, name)(tools, **kwargs)
        messages, call = prepare(self, tools, kwargs)
        return getattr(state, mode)(self.inner, messages, tools, True, call)

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


# --- the guarded copy of an agent ---------------------------------------------------------------
class _GuardedToolCalls:
    """Put first in the bases of a guarded copy's class: inside a guarded run the agent's tool
    calls go through the run's guard (a halt is raised before the tool runs; an open circuit
    answers instead of the tool)."""

    async def _call_tool(self, ctx: Any, tool: Any, tool_input: dict) -> Any:
        state = _ACTIVE.get()
        call_tool = super()._call_tool  # type: ignore[misc]
        if state is None:
            return await call_tool(ctx, tool, tool_input)
        return await state.call_tool(call_tool, ctx, tool, tool_input)


_GUARDED_CLASSES: dict[type, type] = {}
_CLASSES_LOCK = threading.Lock()


def _guarded_class(cls: type) -> type:
    """``cls`` with its tool calls guarded (one subclass per agent class, made once)."""
    with _CLASSES_LOCK:
        guarded = _GUARDED_CLASSES.get(cls)
        if guarded is None:
            guarded = type(cls.__name__, (_GuardedToolCalls, cls), {"__module__": cls.__module__})
            _GUARDED_CLASSES[cls] = guarded
        return guarded


def _copy(obj: Any, cls: type, changes: dict[str, Any]) -> Any:
    """A shallow copy of ``obj`` as an instance of ``cls`` (``obj``'s class or a subclass), with
    ``changes`` applied to the copy; ``obj`` itself is not touched."""
    if isinstance(obj, BaseModel):
        if cls is type(obj):
            return obj.model_copy(update=changes)
        state = obj.__getstate__()  # pydantic's own copy of its fields, extras and private values
        copy = cls.__new__(cls)
        copy.__setstate__({**state, "__dict__": {**state["__dict__"], **changes}})
        return copy
    copy = cls.__new__(cls)
    copy.__dict__.update(vars(obj), **changes)
    return copy


def _with_guarded_llm(agent: Any) -> tuple[Any, bool]:
    """A copy of ``agent`` whose ``llm`` is fronted by a :class:`_GuardedLLM` (and whether it could be)."""
    llm = getattr(agent, "llm", None)
    if not isinstance(llm, LLM):
        return agent, False
    return _copy(agent, type(agent), {"llm": llm if isinstance(llm, _GuardedLLM) else _GuardedLLM(llm)}), True


def guarded_copy(agent: Any) -> tuple[Any, bool, bool]:
    """``(copy, llm fronted, tools fronted)``: a copy of a ``FunctionAgent`` / ``ReActAgent`` /
    ``AgentWorkflow`` (each member agent copied too) whose model calls go through a
    :class:`_GuardedLLM` and whose tool calls go through the run's guard. The user's agent, its
    LLM and its tools are left as they are (the copy shares the tools and the inner LLM)."""
    agents = getattr(agent, "agents", None)
    changes: dict[str, Any] = {}
    if isinstance(agents, dict) and agents:  # an AgentWorkflow: every member agent's llm
        copies = {name: _with_guarded_llm(member) for name, member in agents.items()}
        changes["agents"] = {name: member for name, (member, _) in copies.items()}
        llm_fronted = all(fronted for _, fronted in copies.values())
    else:
        llm = getattr(agent, "llm", None)
        llm_fronted = isinstance(llm, LLM)
        if llm_fronted:
            changes["llm"] = llm if isinstance(llm, _GuardedLLM) else _GuardedLLM(llm)
    tools_fronted = inspect.iscoroutinefunction(getattr(type(agent), "_call_tool", None)) and hasattr(agent, "__dict__")
    cls = _guarded_class(type(agent)) if tools_fronted else type(agent)
    if not changes and cls is type(agent):
        return agent, False, False  # nothing to front: the run's stream events are watched instead
    return _copy(agent, cls, changes), llm_fronted, tools_fronted
