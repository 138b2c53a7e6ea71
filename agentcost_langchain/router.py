"""``ModelRouter``: a drop-in chat model that sends each call to the cheapest tier that can do it.

    router = ModelRouter(tiers={"nano": ChatOpenAI(model="gpt-5-nano"), "frontier": ChatOpenAI(model="gpt-5")},
                         policy=StaticPolicy({"classify": "nano"}) | HeuristicPolicy(("nano", "frontier")))
    chain = prompt | router | parser                       # LCEL
    agent = create_agent(router, tools)                    # tools are bound on every tier
    agent = create_agent(model, tools, middleware=[RouterMiddleware(router)])  # or swap per call

The decision (tier, reason, score, features, decision time) travels to the capture handler in
the inner call's metadata: the model call's event carries ``event.tier`` and the reason, and the
decision is its own ``route`` event linked to that call. The router's own run is not a model call
(the handler records only the tier's call). When the chosen tier is another provider,
provider-only settings are stripped: Anthropic ``cache_control`` markers for non-Anthropic tiers,
``prompt_cache_key`` for non-OpenAI tiers.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, Mapping, Sequence

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from agentcost_core.errors import ConfigurationError
from agentcost_core.routing import ROUTE_KEY, Router, RouteRequest, RoutingDecision
from agentcost_core.routing.router import ROUTER_PROVIDER

from .messages import content_text

__all__ = ["ROUTER_PROVIDER", "ModelRouter"]

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


def _child_callbacks(run_manager: Any) -> Any:
    """A callback manager for the tier's call, nested under the router's run (LLM run managers
    have no ``get_child``): the inheritable handlers, tags and metadata, parented to the router."""
    cls = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
    return cls(
        handlers=list(run_manager.inheritable_handlers),
        inheritable_handlers=list(run_manager.inheritable_handlers),
        parent_run_id=run_manager.run_id,
        tags=list(run_manager.inheritable_tags),
        inheritable_tags=list(run_manager.inheritable_tags),
        metadata=dict(run_manager.inheritable_metadata),
        inheritable_metadata=dict(run_manager.inheritable_metadata),
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


class ModelRouter(BaseChatModel):
    """``ModelRouter(tiers={name: chat_model, ...}, policy=..., default=None)``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tiers: dict[str, Any]
    policy: Any
    default: str | None = None
    catalog: Any = None
    _router: Router = PrivateAttr()
    _tool_count: int = PrivateAttr(default=0)
    _cascade: Any = PrivateAttr(default=None)

    def __init__(self, tiers: Mapping[str, Any], policy: Any, default: str | None = None, **kwargs: Any) -> None:
        if not isinstance(tiers, Mapping) or not tiers:
            raise ConfigurationError("ModelRouter needs tiers={'name': chat_model, ...} (at least one)")
        super().__init__(tiers=dict(tiers), policy=policy, default=default, **kwargs)
        ids = {name: _model_id(_model_of(m)) for name, m in self.tiers.items()}
        self._router = Router(ids, policy, default=default, catalog=self.catalog)
        chain = getattr(self._router.policy, "policies", [self._router.policy])
        self._cascade = next((p for p in chain if hasattr(p, "next_tier") and hasattr(p, "validate")), None)

    @property
    def router(self) -> Router:
        return self._router

    @property
    def _llm_type(self) -> str:
        return "agentcost-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"tiers": {n: _model_id(_model_of(m)) for n, m in self.tiers.items()}}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {"ls_provider": ROUTER_PROVIDER, "ls_model_name": "router", "ls_model_type": "chat"}

    # --- tools -------------------------------------------------------------------------------
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ModelRouter:  # type: ignore[override]
        """Bind ``tools`` on every tier (each in its own provider's format)."""
        bound = {name: m.bind_tools(tools, **kwargs) for name, m in self.tiers.items()}
        out = ModelRouter(bound, self.policy, self.default, catalog=self.catalog)
        out._tool_count = len(tools)
        return out

    # --- deciding ----------------------------------------------------------------------------
    def _request(self, messages: Sequence[BaseMessage], md: Mapping[str, Any], tags: Sequence[str], trace: Any) -> RouteRequest:
        text = ""
        for m in reversed(messages):
            if m.type == "human":
                text = content_text(m.content)
                break
        chars = sum(len(content_text(m.content)) for m in messages)
        from agentcost_core.budgets import ScopeContext

        session = md.get("session_id") or md.get("thread_id") or md.get("conversation_id")
        scope = ScopeContext(
            trace_id=None if trace is None else str(trace), session_id=None if session is None else str(session),
            user_id=md.get("user_id"), feature=md.get("feature"), agent_id=md.get("agent_id"),
        )  # fmt: skip
        return RouteRequest(
            text=text,
            context_tokens=chars // 4,
            messages=len(messages),
            tools=self._tool_count,
            step=md.get("langgraph_node") or md.get("agentcost_step"),
            tags=tuple(tags or ()),
            user_tier=md.get("user_tier"),
            latency_sensitive=bool(md.get("latency_sensitive", False)),
            scope=scope,
        )

    def decide(self, messages: Sequence[BaseMessage], run_manager: Any = None) -> RoutingDecision:
        md = getattr(run_manager, "metadata", None) or {}
        trace = getattr(run_manager, "parent_run_id", None) or getattr(run_manager, "run_id", None)
        return self._router.route(self._request(messages, md, getattr(run_manager, "tags", None) or (), trace))

    def _prepare(self, tier: str, messages: Sequence[BaseMessage], decision: RoutingDecision, run_manager: Any,
                 kwargs: dict[str, Any], escalated_from: str | None = None) -> tuple[Any, list[BaseMessage], dict[str, Any], dict[str, Any]]:  # fmt: skip
        runnable = self.tiers[tier]
        llm_type = getattr(_model_of(runnable), "_llm_type", None)
        msgs = list(messages)
        if llm_type not in _ANTHROPIC_TYPES:
            msgs = _strip_cache_control(msgs)
        kw = dict(kwargs)
        if "prompt_cache_key" in kw and llm_type not in _PROMPT_CACHE_KEY_TYPES:
            kw.pop("prompt_cache_key")
        meta = self._router.metadata(decision)
        if escalated_from is not None:
            meta.update(tier=tier, model=self._router.tiers[tier].model, escalated_from=escalated_from)
        config: dict[str, Any] = {"metadata": {ROUTE_KEY: meta}}
        if run_manager is not None:
            config["callbacks"] = _child_callbacks(run_manager)
        return runnable, msgs, kw, config

    def _escalation(self, tier: str, message: AIMessage, escalations: int) -> tuple[str, str] | None:
        cascade = self._cascade
        if cascade is None or escalations >= cascade.max_escalations:
            return None
        nxt = cascade.next_tier(tier)
        if nxt is None:
            return None
        logprobs = None
        lp = (message.response_metadata or {}).get("logprobs")
        if isinstance(lp, dict) and isinstance(lp.get("content"), list):
            logprobs = [t.get("logprob") for t in lp["content"] if isinstance(t, dict) and "logprob" in t]
        ok, reason = cascade.validate(content_text(message.content), logprobs=logprobs, raw=message)
        return None if ok else (nxt, reason)

    # --- calls -------------------------------------------------------------------------------
    # invoke / ainvoke / stream / astream run the tier's call under the caller's config with the
    # decision in its metadata (one LangChain model run per call, not two). ``generate`` reaches
    # ``_generate``, where the router's own run is a step the capture handler skips.
    def _plan(self, input: Any, config: Any) -> tuple[list[BaseMessage], Any, Mapping[str, Any], RoutingDecision]:
        from langchain_core.runnables.config import ensure_config

        config = ensure_config(config)
        messages = self._convert_input(input).to_messages()
        md = config.get("metadata") or {}
        scope_md = _with_handler_defaults(md, config.get("callbacks"))  # budgets see the handler's attribution
        return messages, config, md, self._router.route(self._request(messages, scope_md, config.get("tags") or (), None))

    def _tier_call(self, tier: str, messages: list[BaseMessage], decision: RoutingDecision, config: Any,
                   md: Mapping[str, Any], stop: list[str] | None, kwargs: dict[str, Any],
                   escalated_from: str | None = None) -> tuple[Any, list[BaseMessage], dict[str, Any], Any]:  # fmt: skip
        runnable, msgs, kw, inner = self._prepare(tier, messages, decision, None, kwargs, escalated_from)
        if stop is not None:
            kw["stop"] = stop
        return runnable, msgs, kw, {**config, "metadata": {**md, **inner["metadata"]}}

    def _retry(self, tier: str, message: AIMessage, escalations: int, decision: RoutingDecision) -> tuple[str, RoutingDecision] | None:  # fmt: skip
        """The next attempt of a cascade (tier, decision), or None when this answer stands."""
        step = self._escalation(tier, message, escalations)
        if step is None:
            return None
        nxt, why = step
        return nxt, decision.moved(nxt, f"cascade escalated: {why}")

    def _call(self, messages: list[BaseMessage], config: Any, md: Mapping[str, Any], decision: RoutingDecision,
              stop: list[str] | None, kwargs: dict[str, Any]) -> AIMessage:  # fmt: skip
        tier, escalated_from, escalations = decision.tier, None, 0
        while True:
            runnable, msgs, kw, cfg = self._tier_call(tier, messages, decision, config, md, stop, kwargs, escalated_from)
            message = runnable.invoke(msgs, cfg, **kw)
            nxt = self._retry(tier, message, escalations, decision)
            if nxt is None:
                return message
            escalated_from, (tier, decision), escalations = tier, nxt, escalations + 1

    async def _acall(self, messages: list[BaseMessage], config: Any, md: Mapping[str, Any], decision: RoutingDecision,
                     stop: list[str] | None, kwargs: dict[str, Any]) -> AIMessage:  # fmt: skip
        tier, escalated_from, escalations = decision.tier, None, 0
        while True:
            runnable, msgs, kw, cfg = self._tier_call(tier, messages, decision, config, md, stop, kwargs, escalated_from)
            message = await runnable.ainvoke(msgs, cfg, **kw)
            nxt = self._retry(tier, message, escalations, decision)
            if nxt is None:
                return message
            escalated_from, (tier, decision), escalations = tier, nxt, escalations + 1

    def invoke(self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any) -> AIMessage:  # type: ignore[override]
        messages, config, md, decision = self._plan(input, config)
        return self._call(messages, config, md, decision, stop, kwargs)

    async def ainvoke(self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any) -> AIMessage:  # type: ignore[override]
        messages, config, md, decision = self._plan(input, config)
        return await self._acall(messages, config, md, decision, stop, kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        config = {"callbacks": _child_callbacks(run_manager)} if run_manager is not None else {}
        message = self._call(messages, config, {}, self.decide(messages, run_manager), stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        config = {"callbacks": _child_callbacks(run_manager)} if run_manager is not None else {}
        message = await self._acall(messages, config, {}, self.decide(messages, run_manager), stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def stream(self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:  # type: ignore[override]
        messages, config, md, decision = self._plan(input, config)
        runnable, msgs, kw, cfg = self._tier_call(decision.tier, messages, decision, config, md, stop, kwargs)
        yield from runnable.stream(msgs, cfg, **kw)

    async def astream(self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:  # type: ignore[override]
        messages, config, md, decision = self._plan(input, config)
        runnable, msgs, kw, cfg = self._tier_call(decision.tier, messages, decision, config, md, stop, kwargs)
        async for chunk in runnable.astream(msgs, cfg, **kw):
            yield chunk
