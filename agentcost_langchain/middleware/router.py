"""``RouterMiddleware``: route each model call of a ``create_agent`` agent to a tier.

    router = ModelRouter(tiers={"nano": nano_model, "frontier": frontier_model}, policy=...)
    agent = create_agent(frontier_model, tools, middleware=[RouterMiddleware(router)])
    agent.invoke({"messages": [...]}, {"metadata": {"user_tier": "free", "user_id": "u-1"}, "tags": ["triage"]})

``wrap_model_call`` decides with what :class:`~agentcost_langchain.ModelRouter` sees for the same
call: the request's messages and tools, and the run's metadata, tags and ``thread_id`` (from
LangGraph's run config), so ``UserTierCap`` (``user_tier``), ``StaticPolicy`` by step or tag,
``LatencyPreference`` (``latency_sensitive``) and ``BudgetDowngrade`` (the scope: ``user_id``,
``session_id`` / ``thread_id``, ``feature``, ``agent_id``) apply here too. It then swaps the model
with ``request.override(model=...)`` (the agent binds its tools on whichever tier is chosen). Under
a ``CascadePolicy`` a rejected answer is escalated once through the same handler (both calls are
billed and recorded). When the tier is another provider, provider-only settings are stripped
(Anthropic ``cache_control`` in messages, ``prompt_cache_key`` in model settings). Each call's
decision reaches the capture handler through ``ACTIVE_ROUTE``: the call's ledger event carries the
tier and the reason and the decision is recorded as a ``route`` event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware.types import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage

from agentcost_core.routing import Attempt, Dispatch, RouteRequest

from ..callbacks import ACTIVE_ROUTE
from ..router import ModelRouter, _model_of, answer_of, for_tier, route_request

__all__ = ["RouterMiddleware"]


def _run_config() -> dict[str, Any]:
    """The LangGraph run's config (empty outside a graph run)."""
    try:
        from langgraph.config import get_config

        return dict(get_config())
    except RuntimeError:  # called outside a runnable context
        return {}


def _answer(response: Any) -> tuple[str, Any]:
    """(text, raw) of the model's answer in a ``ModelResponse`` (or a bare ``AIMessage``)."""
    messages = response.result if isinstance(response, ModelResponse) else [response]
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return answer_of(message)
    return "", None


class RouterMiddleware(AgentMiddleware):
    """``RouterMiddleware(router)`` with a :class:`ModelRouter` (its tiers and policy)."""

    def __init__(self, router: ModelRouter) -> None:
        super().__init__()
        if not isinstance(router, ModelRouter):
            raise TypeError(f"RouterMiddleware takes a ModelRouter, got {type(router).__name__}")
        self.router = router
        self.dispatch = Dispatch(router.router)

    def route_request(self, request: ModelRequest) -> RouteRequest:
        """What the policy sees for this model call (the run's config read from LangGraph)."""
        config = _run_config()
        metadata = dict(config.get("metadata") or {})
        metadata.setdefault("thread_id", (config.get("configurable") or {}).get("thread_id"))
        return route_request(
            request.messages,
            metadata={k: v for k, v in metadata.items() if v is not None},
            tags=config.get("tags") or (),
            tools=len(request.tools or ()),
            callbacks=config.get("callbacks"),
        )

    def _for_attempt(self, request: ModelRequest, attempt: Attempt) -> ModelRequest:
        model = _model_of(self.router.tiers[attempt.tier])
        messages, settings = for_tier(model, request.messages, request.model_settings or {})
        return request.override(model=model, messages=messages, model_settings=settings)

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        decision = self.router.router.route(self.route_request(request))

        def call(attempt: Attempt) -> Any:
            token = ACTIVE_ROUTE.set(attempt.route)
            try:
                return handler(self._for_attempt(request, attempt))
            finally:
                ACTIVE_ROUTE.reset(token)

        return self.dispatch.call(decision, call, _answer)

    async def awrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]) -> Any:
        decision = await self.router.router.aroute(self.route_request(request))  # off the loop if it may block

        async def call(attempt: Attempt) -> Any:
            token = ACTIVE_ROUTE.set(attempt.route)
            try:
                return await handler(self._for_attempt(request, attempt))
            finally:
                ACTIVE_ROUTE.reset(token)

        return await self.dispatch.acall(decision, call, _answer)
