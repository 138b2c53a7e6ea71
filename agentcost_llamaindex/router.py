"""``RouterLLM``: a function-calling LLM that sends each call to the cheapest tier that can do it.

    from agentcost_core.routing import HeuristicPolicy, StaticPolicy
    from agentcost_llamaindex import RouterLLM

    llm = RouterLLM(tiers={"nano": OpenAI(model="gpt-4o-mini"), "frontier": OpenAI(model="gpt-4o")},
                    policy=StaticPolicy({"classify": "nano"}) | HeuristicPolicy(("nano", "frontier")))
    agent = FunctionAgent(tools=tools, llm=llm)            # or ReActAgent, a query engine, llm.chat …
    with instrument_tags({"tags": ["classify"]}):          # tags / step steer a StaticPolicy
        await agent.run("...")

Every call (``chat``, ``complete``, their async and streaming forms, and the function-calling
path ``*_chat_with_tools`` / ``_prepare_chat_with_tools`` / ``get_tool_calls_from_response``) is
decided by a core :class:`~agentcost_core.routing.Router` and delegated to the chosen tier's own
method, so provider-specific tool formats are the tier's. All of them go through one path
(``_route``) and the core :class:`~agentcost_core.routing.Dispatch`: under a ``CascadePolicy`` a
rejected answer is escalated once to the next tier (a stream is buffered while it may still be
escalated); both calls are billed and recorded. The request a policy sees is built by
:func:`~agentcost_llamaindex.route_request.route_request` (the messages and the instrument tags).
The async forms decide with ``Router.aroute``: a policy that may block (an embedding call, a shared
budget store) decides in a worker thread, never on the event loop.

The router emits no instrumentation of its own: its methods are not wrapped by the dispatcher's
span or LLM-event decorators, so each call's start / end events come once, from the tier. The
decision travels to the capture handler as the ``agentcost_route`` instrument tag (merged into the
active tags) around the tier's call — and around every step of a stream, so a tier that starts
its provider call lazily inside the stream is tagged too: the model call's event carries
``event.tier`` and the reason, and the decision is its own ``route`` event linked to that call.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.instrumentation import DISPATCHER_SPAN_DECORATED_ATTR
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import Field, PrivateAttr

from agentcost_core.errors import ConfigurationError
from agentcost_core.routing import ROUTE_KEY, Attempt, Dispatch, Router, RouteRequest, RoutingDecision

from .route_request import route_request, text_of

__all__ = ["RouterLLM"]

#: Key under which ``_prepare_chat_with_tools`` pins its decision for the ``chat`` call that follows.
_PIN = "_agentcost_route"
_MAX_SERVED = 256  # responses remembered for get_tool_calls_from_response


def _no_span(fn: Any) -> Any:
    """Keep ``DispatcherSpanMixin`` from wrapping ``fn`` in a span: the tier's call is the one measured."""
    setattr(fn, DISPATCHER_SPAN_DECORATED_ATTR, True)
    return fn


def _model_id(llm: Any) -> str | None:
    try:
        name = llm.metadata.model_name
    except Exception:  # noqa: BLE001 - e.g. OpenAI's metadata raises for a model it does not know
        name = None
    if isinstance(name, str) and name and name != "unknown":
        return name
    for attr in ("model", "model_name", "model_id"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _history(user_msg: Any, chat_history: Any) -> list[ChatMessage]:
    messages = list(chat_history or ())
    if user_msg is not None:
        messages.append(ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str) else user_msg)
    return messages


class RouterLLM(FunctionCallingLLM):
    """``RouterLLM(tiers={name: llm, ...}, policy=..., default=None, catalog=None)``.

    ``policy``: a core routing policy (or a list / ``|`` chain); ``default``: the tier when no
    policy decides (else the top tier); ``catalog``: the price catalog ranking the tiers (a tier
    whose model has no price is warned about and its calls are unpriced). A policy naming a tier
    the router does not have raises :class:`~agentcost_core.routing.RoutingError`.
    """

    tiers: dict[str, Any] = Field(exclude=True)
    policy: Any = Field(default=None, exclude=True)
    default: str | None = None
    catalog: Any = Field(default=None, exclude=True)
    _router: Router = PrivateAttr()
    _dispatch: Dispatch = PrivateAttr()
    _served: dict[int, Any] = PrivateAttr(default_factory=dict)
    _last: str | None = PrivateAttr(default=None)

    def __init__(
        self,
        tiers: Mapping[str, LLM],
        policy: Any,
        default: str | None = None,
        catalog: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(tiers, Mapping) or not tiers:
            raise ConfigurationError("RouterLLM needs tiers={'name': llm, ...} (at least one)")
        for name, llm in tiers.items():
            if not isinstance(llm, LLM):
                raise ConfigurationError(f"RouterLLM tier {name!r} must be a LlamaIndex LLM, got {type(llm).__name__}")
        super().__init__(tiers=dict(tiers), policy=policy, default=default, catalog=catalog, **kwargs)
        ids = {name: _model_id(llm) for name, llm in self.tiers.items()}
        self._router = Router(ids, policy, default=default, catalog=catalog)
        self._dispatch = Dispatch(self._router)

    @classmethod
    def class_name(cls) -> str:
        return "AgentcostRouterLLM"

    @property
    def router(self) -> Router:
        """The core router (its ``tiers`` are ranked cheapest first)."""
        return self._router

    @property
    def metadata(self) -> LLMMetadata:
        """The top tier's metadata (context window, output size, model name); function-calling
        only when every tier is."""
        top = self.tiers[self._router.tiers.top.name]
        fc = all(
            isinstance(t, FunctionCallingLLM) and t.metadata.is_function_calling_model for t in self.tiers.values()
        )
        return top.metadata.model_copy(update={"is_function_calling_model": fc})

    # --- deciding ----------------------------------------------------------------------------
    def request(self, messages: Sequence[ChatMessage] | None = None, *, prompt: str | None = None,
                tools: int = 0) -> RouteRequest:  # fmt: skip
        """The :class:`RouteRequest` for a call (instrument tags read from the current context)."""
        return route_request(messages, prompt=prompt, tools=tools)

    def decide(self, messages: Sequence[ChatMessage] | None = None, *, prompt: str | None = None,
               tools: int = 0) -> RoutingDecision:  # fmt: skip
        """The decision the router would make for these messages (or prompt) now; nothing is called."""
        return self._router.route(self.request(messages, prompt=prompt, tools=tools))

    async def adecide(self, messages: Sequence[ChatMessage] | None = None, *, prompt: str | None = None,
                      tools: int = 0) -> RoutingDecision:  # fmt: skip
        """:meth:`decide` for async code: a policy that may block (an embedding call, a shared
        budget store) decides in a worker thread, never on the event loop."""
        return await self._router.aroute(self.request(messages, prompt=prompt, tools=tools))

    def _decision(self, messages: Sequence[ChatMessage] | None, prompt: str | None, tools: int,
                  kwargs: dict[str, Any]) -> RoutingDecision:  # fmt: skip
        pinned = kwargs.pop(_PIN, None)  # decided by _prepare_chat_with_tools, formatted for that tier
        return pinned if pinned is not None else self.decide(messages, prompt=prompt, tools=tools)

    async def _adecision(self, messages: Sequence[ChatMessage] | None, prompt: str | None, tools: int,
                         kwargs: dict[str, Any]) -> RoutingDecision:  # fmt: skip
        pinned = kwargs.pop(_PIN, None)
        return pinned if pinned is not None else await self.adecide(messages, prompt=prompt, tools=tools)

    @staticmethod
    def _tags(route: dict[str, Any]) -> dict[str, Any]:
        return {**active_instrument_tags.get(), ROUTE_KEY: route}

    def _tier(self, attempt: Attempt, tools: bool) -> Any:
        llm = self.tiers[attempt.tier]
        if tools and not isinstance(llm, FunctionCallingLLM):
            raise ConfigurationError(
                f"RouterLLM tier {attempt.tier!r} ({type(llm).__name__}) is not a function-calling LLM; "
                "tool calling needs every tier to be one"
            )
        self._last = attempt.tier
        return llm

    # --- the one dispatch path -------------------------------------------------------------------
    def _route(self, method: str, decision: RoutingDecision, *args: Any, **kwargs: Any) -> Any:
        """Every call: the tier's own ``method`` under the decision's instrument tags, through the
        core :class:`~agentcost_core.routing.Dispatch` (a cascade validates and escalates). Returns
        the response (sync), a coroutine of it (``a*`` methods), or a stream (``*stream*``; an
        async one is a coroutine of the stream)."""
        tools = "with_tools" in method
        is_async, streaming = method.startswith("a"), "stream" in method

        def start(attempt: Attempt) -> tuple[Any, dict[str, Any]]:
            tags = self._tags(attempt.route)
            with _tagged(tags):
                return getattr(self._tier(attempt, tools), method)(*args, **kwargs), tags

        def call(attempt: Attempt) -> Any:
            response, _ = start(attempt)
            self._remember(response, attempt.tier)
            return response

        async def acall(attempt: Attempt) -> Any:
            pending, tags = start(attempt)
            with _tagged(tags):
                response = await pending
            self._remember(response, attempt.tier)
            return response

        def open_stream(attempt: Attempt) -> Any:
            stream, tags = start(attempt)
            return self._stream(stream, attempt.tier, tags)

        async def aopen_stream(attempt: Attempt) -> Any:
            pending, tags = start(attempt)
            with _tagged(tags):
                stream = await pending
            return self._astream(stream, attempt.tier, tags)

        dispatch = self._dispatch
        if streaming:
            if is_async:
                return dispatch.astream(decision, aopen_stream, _answer_of_chunks)
            return dispatch.stream(decision, open_stream, _answer_of_chunks)
        if is_async:
            return dispatch.acall(decision, acall, _answer_of)
        return dispatch.call(decision, call, _answer_of)

    # --- which tier served a response --------------------------------------------------------
    def _remember(self, response: Any, name: str, previous: Any = None) -> None:
        served = self._served
        if previous is not None:
            served.pop(id(previous), None)
        if len(served) >= _MAX_SERVED:
            for key in list(served)[: _MAX_SERVED // 4]:
                served.pop(key, None)
        served[id(response)] = (response, name)

    def _server(self, response: Any) -> Any:
        entry = self._served.get(id(response))
        if entry is not None and entry[0] is response:
            return self.tiers[entry[1]]
        return self.tiers[self._last or self._router.tiers.top.name]

    # --- streams: each step runs with the decision's tags, so a lazily started call is tagged --
    def _stream(self, it: Iterator[Any], name: str, tags: dict[str, Any]) -> Generator[Any, None, None]:
        last = None
        try:
            while True:
                token = active_instrument_tags.set(tags)
                try:
                    chunk = next(it)
                except StopIteration:
                    return
                finally:
                    active_instrument_tags.reset(token)
                self._remember(chunk, name, last)
                last = chunk
                yield chunk
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    async def _astream(self, it: Any, name: str, tags: dict[str, Any]) -> AsyncGenerator[Any, None]:
        last = None
        try:
            while True:
                token = active_instrument_tags.set(tags)
                try:
                    chunk = await it.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    active_instrument_tags.reset(token)
                self._remember(chunk, name, last)
                last = chunk
                yield chunk
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    # --- chat ----------------------------------------------------------------------------------
    def _chat_decision(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> RoutingDecision:
        return self._decision(messages, None, len(kwargs.get("tools") or ()), kwargs)

    async def _achat_decision(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> RoutingDecision:
        return await self._adecision(messages, None, len(kwargs.get("tools") or ()), kwargs)

    @_no_span
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._route("chat", self._chat_decision(messages, kwargs), messages, **kwargs)

    @_no_span
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._route("achat", await self._achat_decision(messages, kwargs), messages, **kwargs)

    @_no_span
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._route("stream_chat", self._chat_decision(messages, kwargs), messages, **kwargs)

    @_no_span
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._route("astream_chat", await self._achat_decision(messages, kwargs), messages, **kwargs)

    # --- completion ----------------------------------------------------------------------------
    @_no_span
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._route("complete", self.decide(prompt=prompt), prompt, formatted=formatted, **kwargs)

    @_no_span
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        decision = await self.adecide(prompt=prompt)
        return await self._route("acomplete", decision, prompt, formatted=formatted, **kwargs)

    @_no_span
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self._route("stream_complete", self.decide(prompt=prompt), prompt, formatted=formatted, **kwargs)

    @_no_span
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        decision = await self.adecide(prompt=prompt)
        return await self._route("astream_complete", decision, prompt, formatted=formatted, **kwargs)

    # --- function calling: the chosen tier's own implementation ----------------------------------
    def _route_tools(self, method: str, tools: Sequence[Any], user_msg: Any, chat_history: Any, verbose: bool,
                     allow_parallel_tool_calls: bool, tool_required: bool, kwargs: dict[str, Any],
                     decision: RoutingDecision | None = None) -> Any:  # fmt: skip
        kw = {"verbose": verbose, "allow_parallel_tool_calls": allow_parallel_tool_calls, **kwargs}
        if tool_required:  # older integrations do not take the argument at all
            kw["tool_required"] = True
        if decision is None:
            decision = self.decide(_history(user_msg, chat_history), tools=len(tools or ()))
        return self._route(method, decision, tools, user_msg=user_msg, chat_history=chat_history, **kw)

    async def _aroute_tools(self, method: str, tools: Sequence[Any], user_msg: Any, chat_history: Any, verbose: bool,
                            allow_parallel_tool_calls: bool, tool_required: bool, kwargs: dict[str, Any]) -> Any:  # fmt: skip
        decision = await self.adecide(_history(user_msg, chat_history), tools=len(tools or ()))
        return await self._route_tools(method, tools, user_msg, chat_history, verbose, allow_parallel_tool_calls,
                                       tool_required, kwargs, decision)  # fmt: skip

    @_no_span
    def chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return self._route_tools("chat_with_tools", tools, user_msg, chat_history, verbose,
                                 allow_parallel_tool_calls, tool_required, kwargs)  # fmt: skip

    @_no_span
    async def achat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return await self._aroute_tools("achat_with_tools", tools, user_msg, chat_history, verbose,
                                        allow_parallel_tool_calls, tool_required, kwargs)  # fmt: skip

    @_no_span
    def stream_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponseGen:
        return self._route_tools("stream_chat_with_tools", tools, user_msg, chat_history, verbose,
                                 allow_parallel_tool_calls, tool_required, kwargs)  # fmt: skip

    @_no_span
    async def astream_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> ChatResponseAsyncGen:
        return await self._aroute_tools("astream_chat_with_tools", tools, user_msg, chat_history, verbose,
                                        allow_parallel_tool_calls, tool_required, kwargs)  # fmt: skip

    @_no_span
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Decides here (the tools are known) and prepares in the chosen tier's format; the
        decision is pinned in the returned kwargs, so the ``chat`` call they feed goes to that tier."""
        decision = self.decide(_history(user_msg, chat_history), tools=len(tools or ()))
        llm = self.tiers[decision.tier]
        if not isinstance(llm, FunctionCallingLLM):
            raise ConfigurationError(
                f"RouterLLM tier {decision.tier!r} ({type(llm).__name__}) is not a function-calling LLM"
            )
        out = llm._prepare_chat_with_tools_compat(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs,
        )  # fmt: skip
        out[_PIN] = decision
        return out

    def _validate_chat_with_tools_response(
        self, response: ChatResponse, tools: Sequence[Any], allow_parallel_tool_calls: bool = False, **kwargs: Any
    ) -> ChatResponse:
        llm = self._server(response)
        if not isinstance(llm, FunctionCallingLLM):
            return response
        return llm._validate_chat_with_tools_response(
            response, tools, allow_parallel_tool_calls=allow_parallel_tool_calls, **kwargs
        )

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """Parsed by the tier that served ``response`` (each provider has its own tool-call format)."""
        llm = self._server(response)
        return llm.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


def _answer_of(response: Any) -> tuple[str, Any]:
    """(text, raw) of a chat or completion response, for a cascade's validator."""
    message = getattr(response, "message", None)
    text = text_of(message) if message is not None else getattr(response, "text", None)
    return (text if isinstance(text, str) else ""), response


def _answer_of_chunks(chunks: list[Any]) -> tuple[str, Any]:
    """(text, raw) of a buffered stream: its deltas joined (else the last chunk's full text)."""
    if not chunks:
        return "", None
    joined = "".join(c.delta for c in chunks if isinstance(getattr(c, "delta", None), str))
    return (joined or _answer_of(chunks[-1])[0]), chunks[-1]


@contextmanager
def _tagged(tags: dict[str, Any]) -> Iterator[None]:
    token = active_instrument_tags.set(tags)
    try:
        yield
    finally:
        active_instrument_tags.reset(token)
