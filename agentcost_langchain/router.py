"""``ModelRouter``: a chat model that sends each call to the cheapest tier that can do it.

    router = ModelRouter(tiers={"nano": ChatOpenAI(model="gpt-5-nano"), "frontier": ChatOpenAI(model="gpt-5")},
                         policy=StaticPolicy({"classify": "nano"}) | HeuristicPolicy(("nano", "frontier")))
    chain = prompt | router | parser                       # LCEL
    agent = create_agent(router, tools)                    # tools are bound on every tier
    agent = create_agent(model, tools, middleware=[RouterMiddleware(router)])  # or swap per call

``ModelRouter`` is a real LangChain chat model: ``invoke`` / ``stream`` / ``batch`` and their async
twins run LangChain's own model run (callbacks, ``cache=`` / ``set_llm_cache``, tracing), whose
``_generate`` / ``_stream`` (and async twins) decide on the run's messages, metadata, tags and
tools and delegate to the chosen tier's model under the run's child callbacks. Under a
:class:`~agentcost_core.routing.CascadePolicy` a rejected answer is escalated once (see
:class:`~agentcost_core.routing.Dispatch`): both calls are billed and recorded.

The decision (tier, reason, score, features, decision time) travels to the capture handler in
the tier call's metadata (``agentcost_route``): the model call's event carries ``event.tier`` and
the reason, and the decision is its own ``route`` event linked to that call. The router's own run
reports ``ls_provider="agentcost-router"``: the handler records it as a step, not a model call.
When the chosen tier is another provider, provider-only settings are stripped: Anthropic
``cache_control`` markers for non-Anthropic tiers, ``prompt_cache_key`` for non-OpenAI tiers.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any, AsyncIterator, Iterator, Mapping, Sequence

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import ensure_config
from pydantic import ConfigDict, PrivateAttr

from agentcost_core.budgets import ScopeContext
from agentcost_core.errors import ConfigurationError
from agentcost_core.routing import ROUTE_KEY, Attempt, Dispatch, Router, RouteRequest, RoutingDecision
from agentcost_core.routing.router import ROUTER_PROVIDER

from .messages import content_text

__all__ = ["ROUTER_PROVIDER", "ModelRouter", "answer_of", "for_tier", "route_request"]

#: ``stream()`` does not hand ``_stream`` its run manager: the call's key for the tier's callbacks.
_STREAM_RUN = "agentcost_stream_run"
#: The router run's manager while LangChain's ``_generate_with_cache`` runs (it may call ``_stream``).
_RUN_MANAGER: ContextVar[Any] = ContextVar("agentcost_router_run_manager", default=None)
_NOSTREAM = "nostream"  # langgraph.constants.TAG_NOSTREAM
_ANTHROPIC_TYPES = frozenset({"anthropic-chat", "anthropic-bedrock-chat", "anthropic-chat-vertexai"})
_PROMPT_CACHE_KEY_TYPES = frozenset({"openai-chat", "azure-openai-chat", "fireworks-chat"})


def _model_of(runnable: Any) -> Any:
    """The chat model behind a tier (a model, or a model with tools bound)."""
    while hasattr(runnable, "bound") and not isinstance(runnable, BaseChatModel):
        runnable = runnable.bound
    return runnable


def _model_id(model: Any) -> str | None:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _child_callbacks(manager: Any, run_id: Any, is_async: bool = False) -> Any:
    """A callback manager for the tier's call, nested under the router's run ``run_id`` (LLM run
    managers have no ``get_child``): ``manager``'s inheritable handlers, tags and metadata. The
    tier's run is tagged ``nostream``: LangGraph's ``stream_mode="messages"`` streams the router's
    run (what the router answers, after any cascade), not each tier's tokens a second time."""
    cls = AsyncCallbackManager if is_async else CallbackManager
    return cls(
        handlers=list(manager.inheritable_handlers),
        inheritable_handlers=list(manager.inheritable_handlers),
        parent_run_id=run_id,
        tags=[*manager.inheritable_tags, _NOSTREAM],
        inheritable_tags=list(manager.inheritable_tags),
        metadata=dict(manager.inheritable_metadata),
        inheritable_metadata=dict(manager.inheritable_metadata),
    )


def _with_handler_defaults(md: Mapping[str, Any], callbacks: Any) -> Mapping[str, Any]:
    """Run metadata completed with the attribution defaults of an attached ``CostCallbackHandler``,
    so a budget-aware policy checks the same scope the handler charges."""
    handlers = callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", None) or ()
    for h in handlers:
        defaults = getattr(getattr(h, "recorder", None), "defaults", None)
        defaults = defaults.as_dict() if hasattr(defaults, "as_dict") else defaults
        if isinstance(defaults, dict) and any(defaults.values()):
            return {**{k: v for k, v in defaults.items() if v is not None}, **md}
    return md


def _strip_cache_control(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    out = []
    for m in messages:
        content = m.content
        if isinstance(content, list) and any(isinstance(b, dict) and "cache_control" in b for b in content):
            blocks = [{k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b for b in content]
            m = m.model_copy(update={"content": blocks})
        out.append(m)
    return out



def _last_human_text(messages: Sequence[BaseMessage]) -> str:
    for m in reversed(messages):
        if m.type == "human":
            return content_text(m.content)
    return ""


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def route_request(
    messages: Sequence[BaseMessage],
    *,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    tools: int = 0,
    trace: Any = None,
    callbacks: Any = None,
) -> RouteRequest:
    """The :class:`RouteRequest` for a LangChain model call: the last human text, a chars/4 token
    estimate, message and tool counts, and from the run's metadata and tags the step
    (``langgraph_node`` / ``agentcost_step``), ``user_tier``, ``latency_sensitive`` and the budget
    scope (``user_id``, ``session_id`` / ``thread_id`` / ``conversation_id``, ``feature``,
    ``agent_id``; completed with an attached ``CostCallbackHandler``'s defaults, so a budget-aware
    policy checks the scope the handler charges). Used by :class:`ModelRouter` and
    ``RouterMiddleware`` alike."""
    md = _with_handler_defaults(metadata or {}, callbacks)
    session = md.get("session_id") or md.get("thread_id") or md.get("conversation_id")
    scope = ScopeContext(
        trace_id=_str(trace),
        session_id=_str(session),
        user_id=_str(md.get("user_id")),
        feature=_str(md.get("feature")),
        agent_id=_str(md.get("agent_id")),
    )
    return RouteRequest(
        text=_last_human_text(messages),
        context_tokens=sum(len(content_text(m.content)) for m in messages) // 4,
        messages=len(messages),
        tools=tools,
        step=_str(md.get("langgraph_node") or md.get("agentcost_step")),
        tags=tuple(tags or ()),
        user_tier=_str(md.get("user_tier")),
        latency_sensitive=bool(md.get("latency_sensitive", False)),
        scope=scope,
    )


def for_tier(
    model: Any, messages: Sequence[BaseMessage], settings: Mapping[str, Any]
) -> tuple[list[BaseMessage], dict[str, Any]]:
    """``messages`` and call settings for a tier's model, provider-only settings stripped:
    Anthropic ``cache_control`` markers for other providers, ``prompt_cache_key`` for non-OpenAI."""
    llm_type = getattr(_model_of(model), "_llm_type", None)
    msgs = list(messages) if llm_type in _ANTHROPIC_TYPES else _strip_cache_control(messages)
    kw = dict(settings)
    if "prompt_cache_key" in kw and llm_type not in _PROMPT_CACHE_KEY_TYPES:
        kw.pop("prompt_cache_key")
    return msgs, kw


def answer_of(message: BaseMessage) -> tuple[str, Any]:
    """(text, raw) of a model's answer, for a cascade's validator."""
    return content_text(message.content), message


def _answer_of_chunks(chunks: list[ChatGenerationChunk]) -> tuple[str, Any]:
    if not chunks:
        return "", None
    message = chunks[0].message
    for c in chunks[1:]:
        message = message + c.message
    return answer_of(message)


class ModelRouter(BaseChatModel):
    """``ModelRouter(tiers={name: chat_model, ...}, policy=..., default=None, catalog=None)``.

    ``policy``: a core routing policy (or a list / ``|`` chain); ``default``: the tier when no
    policy decides (else the top tier); ``catalog``: the price catalog ranking the tiers. Every
    ``BaseChatModel`` option applies to the router's own run (``cache=``, ``callbacks=``,
    ``tags=``, ``metadata=``, ``rate_limiter=`` ...).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tiers: dict[str, Any]
    policy: Any
    default: str | None = None
    catalog: Any = None
    _router: Router = PrivateAttr()
    _dispatch: Dispatch = PrivateAttr()
    _tool_count: int = PrivateAttr(default=0)
    _params: dict[str, Any] = PrivateAttr(default_factory=dict)
    _stream_runs: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, tiers: Mapping[str, Any], policy: Any, default: str | None = None, **kwargs: Any) -> None:
        if not isinstance(tiers, Mapping) or not tiers:
            raise ConfigurationError("ModelRouter needs tiers={'name': chat_model, ...} (at least one)")
        super().__init__(tiers=dict(tiers), policy=policy, default=default, **kwargs)
        ids = {name: _model_id(_model_of(m)) for name, m in self.tiers.items()}
        self._router = Router(ids, policy, default=default, catalog=self.catalog)
        self._dispatch = Dispatch(self._router)
        self._params = {"tiers": ids, "policy": repr(self._router.policy), "default": default}

    @property
    def router(self) -> Router:
        """The core router (its ``tiers`` are ranked cheapest first)."""
        return self._router

    @property
    def _llm_type(self) -> str:
        return "agentcost-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self._params  # also the cache key's model part: the tiers and the policy

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {"ls_provider": ROUTER_PROVIDER, "ls_model_name": "router", "ls_model_type": "chat"}

    # --- tools -------------------------------------------------------------------------------
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ModelRouter:  # type: ignore[override]
        """Bind ``tools`` on every tier (each in its own provider's format)."""
        bound = {name: m.bind_tools(tools, **kwargs) for name, m in self.tiers.items()}
        out = self.model_copy(update={"tiers": bound})
        out._tool_count = len(tools)
        return out

    # --- deciding ----------------------------------------------------------------------------
    def _run(self, run_manager: Any, kwargs: Mapping[str, Any]) -> tuple[Any, Any, bool] | None:
        """The router's own model run as ``(manager, run_id, is_async)``: ``run_manager`` when
        LangChain passed it, else the run ``stream`` / ``astream`` set up (see "streams" below),
        else the run ``_generate_with_cache`` is in. Deciding and the tier's callbacks use it alike."""
        if run_manager is not None:
            return run_manager, run_manager.run_id, isinstance(run_manager, AsyncCallbackManagerForLLMRun)
        run = self._stream_runs.get(kwargs.get(_STREAM_RUN))  # type: ignore[arg-type]
        if run is not None:
            return run
        run_manager = _RUN_MANAGER.get()
        if run_manager is not None:
            return run_manager, run_manager.run_id, isinstance(run_manager, AsyncCallbackManagerForLLMRun)
        return None

    def _request(self, messages: Sequence[BaseMessage], run_manager: Any, kwargs: Mapping[str, Any]) -> RouteRequest:
        run = self._run(run_manager, kwargs)
        manager, run_id = (run[0], run[1]) if run is not None else (None, None)
        tools = kwargs.get("tools")  # bound with ``.bind(tools=...)``, else counted by bind_tools
        return route_request(
            messages,
            metadata=getattr(manager, "metadata", None),
            tags=getattr(manager, "tags", None) or (),
            tools=len(tools) if isinstance(tools, (list, tuple)) else self._tool_count,
            trace=getattr(manager, "parent_run_id", None) or run_id,
            callbacks=getattr(manager, "handlers", None),
        )

    def decide(self, messages: Sequence[BaseMessage], run_manager: Any = None, **kwargs: Any) -> RoutingDecision:
        """The decision for these messages under the router's run (``run_manager``'s, else the
        current ``invoke`` / ``stream`` run's: its metadata, tags and handlers); nothing is called."""
        return self._router.route(self._request(messages, run_manager, kwargs))

    async def adecide(self, messages: Sequence[BaseMessage], run_manager: Any = None, **kwargs: Any) -> RoutingDecision:
        """:meth:`decide` for async code: a policy that may block (an embedding call, a shared
        budget store) decides in a worker thread, never on the event loop."""
        return await self._router.aroute(self._request(messages, run_manager, kwargs))

    def _prepare(self, attempt: Attempt, messages: Sequence[BaseMessage], stop: list[str] | None,
                 run_manager: Any, kwargs: Mapping[str, Any]) -> tuple[Any, list[BaseMessage], dict[str, Any], dict[str, Any]]:  # fmt: skip
        """The tier's runnable, messages, call kwargs and config (the decision in its metadata,
        the router run's child callbacks)."""
        runnable = self.tiers[attempt.tier]
        msgs, kw = for_tier(runnable, messages, kwargs)
        if stop is not None:
            kw["stop"] = stop
        config: dict[str, Any] = {"metadata": {ROUTE_KEY: attempt.route}}
        run = self._run(run_manager, kwargs)
        if run is not None:
            config["callbacks"] = _child_callbacks(*run)
        kw.pop(_STREAM_RUN, None)
        return runnable, msgs, kw, config

    # --- streams ----------------------------------------------------------------------------
    # LangChain calls ``_stream`` without the run manager of the router's model run: from
    # ``invoke`` when streaming is wanted (e.g. LangGraph's ``stream_mode="messages"``) and from
    # ``stream``. For the first, the run manager is in ``_RUN_MANAGER`` while LangChain's
    # ``_generate_with_cache`` runs; ``stream`` / ``astream`` are LangChain's own, with the run's
    # id fixed up front, so ``_stream`` finds the run (its metadata and tags to decide on, the
    # callbacks for the tier's call nested under it) under a key in its kwargs.
    def _generate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                             run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        token = _RUN_MANAGER.set(run_manager)
        try:
            return super()._generate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
        finally:
            _RUN_MANAGER.reset(token)

    async def _agenerate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                                    run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        token = _RUN_MANAGER.set(run_manager)
        try:
            return await super()._agenerate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
        finally:
            _RUN_MANAGER.reset(token)

    def _stream_callbacks(self, config: Any, is_async: bool) -> tuple[Any, str]:
        """The run ``stream`` / ``astream`` is about to start, as ``_run`` returns it: its callback
        manager (the run's metadata, tags and handlers) and its id, fixed up front."""
        config = ensure_config(config)
        run_id = config.get("run_id") or uuid.uuid4()
        cls = AsyncCallbackManager if is_async else CallbackManager
        manager = cls.configure(config.get("callbacks"), self.callbacks, self.verbose, config.get("tags"), self.tags,
                                config.get("metadata"), self.metadata)  # fmt: skip
        key = uuid.uuid4().hex
        self._stream_runs[key] = (manager, run_id, is_async)
        return {**config, "run_id": run_id}, key

    def stream(  # type: ignore[override]
        self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        config, key = self._stream_callbacks(config, False)
        try:
            yield from super().stream(input, config, stop=stop, **{**kwargs, _STREAM_RUN: key})
        finally:
            self._stream_runs.pop(key, None)

    async def astream(  # type: ignore[override]
        self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        config, key = self._stream_callbacks(config, True)
        try:
            async for chunk in super().astream(input, config, stop=stop, **{**kwargs, _STREAM_RUN: key}):
                yield chunk
        finally:
            self._stream_runs.pop(key, None)

    # --- calls -------------------------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        def call(attempt: Attempt) -> BaseMessage:
            runnable, msgs, kw, config = self._prepare(attempt, messages, stop, run_manager, kwargs)
            return runnable.invoke(msgs, config, **kw)

        message = self._dispatch.call(self.decide(messages, run_manager, **kwargs), call, answer_of)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        async def call(attempt: Attempt) -> BaseMessage:
            runnable, msgs, kw, config = self._prepare(attempt, messages, stop, run_manager, kwargs)
            return await runnable.ainvoke(msgs, config, **kw)

        message = await self._dispatch.acall(await self.adecide(messages, run_manager, **kwargs), call, answer_of)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:  # fmt: skip
        def open_stream(attempt: Attempt) -> Iterator[ChatGenerationChunk]:
            runnable, msgs, kw, config = self._prepare(attempt, messages, stop, run_manager, kwargs)
            for chunk in runnable.stream(msgs, config, **kw):
                yield ChatGenerationChunk(message=chunk)

        yield from self._dispatch.stream(self.decide(messages, run_manager, **kwargs), open_stream, _answer_of_chunks)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:  # fmt: skip
        async def open_stream(attempt: Attempt) -> AsyncIterator[ChatGenerationChunk]:
            runnable, msgs, kw, config = self._prepare(attempt, messages, stop, run_manager, kwargs)
            async for chunk in runnable.astream(msgs, config, **kw):
                yield ChatGenerationChunk(message=chunk)

        decision = await self.adecide(messages, run_manager, **kwargs)
        async for chunk in await self._dispatch.astream(decision, open_stream, _answer_of_chunks):
            yield chunk
