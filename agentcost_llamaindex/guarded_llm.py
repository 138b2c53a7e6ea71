"""The fronts put on an agent while guarded runs of it are in flight.

:class:`_GuardedLLM` stands in for an agent's ``llm`` and ``_front_call_tool`` for its
``_call_tool``. Both delegate to what they front: directly outside a guarded run (a run of the same
agent that is not guarded goes straight through), else through the run's
:class:`~agentcost_llamaindex.guarded_run._RunState`, found in ``_ACTIVE``. Installing and removing
them is done by :mod:`agentcost_llamaindex.guard`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import LLMMetadata
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM
from pydantic import Field

from .guarded_run import _ACTIVE, _user

__all__: list[str] = []


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
