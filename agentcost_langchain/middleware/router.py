"""``RouterMiddleware``: route each model call of a ``create_agent`` agent to a tier.

    router = ModelRouter(tiers={"nano": nano_model, "frontier": frontier_model}, policy=...)
    agent = create_agent(frontier_model, tools, middleware=[RouterMiddleware(router)])

``wrap_model_call`` decides on the request's messages and swaps the model with
``request.override(model=...)`` (the agent binds its tools on whichever tier is chosen). When the
tier is another provider, provider-only settings are stripped from the request (Anthropic
``cache_control`` in messages, ``prompt_cache_key`` in model settings). The decision reaches the
capture handler through a context variable, so the call's ledger event carries the tier and the
reason and the decision is recorded as a ``route`` event.
"""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware.types import AgentMiddleware

from ..callbacks import ACTIVE_ROUTE
from ..router import _ANTHROPIC_TYPES, _PROMPT_CACHE_KEY_TYPES, ModelRouter, _model_of, _strip_cache_control

__all__ = ["RouterMiddleware"]


class RouterMiddleware(AgentMiddleware):
    """``RouterMiddleware(router)`` with a :class:`ModelRouter` (its tiers and policy)."""

    def __init__(self, router: ModelRouter) -> None:
        super().__init__()
        if not isinstance(router, ModelRouter):
            raise TypeError(f"RouterMiddleware takes a ModelRouter, got {type(router).__name__}")
        self.router = router

    def _swap(self, request: Any) -> tuple[Any, dict[str, Any]]:
        decision = self.router.decide(request.messages)
        model = _model_of(self.router.tiers[decision.tier])
        llm_type = getattr(model, "_llm_type", None)
        overrides: dict[str, Any] = {"model": model}
        if llm_type not in _ANTHROPIC_TYPES:
            overrides["messages"] = _strip_cache_control(request.messages)
        settings = dict(request.model_settings or {})
        if "prompt_cache_key" in settings and llm_type not in _PROMPT_CACHE_KEY_TYPES:
            settings.pop("prompt_cache_key")
            overrides["model_settings"] = settings
        return request.override(**overrides), self.router.router.metadata(decision)

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        request, meta = self._swap(request)
        token = ACTIVE_ROUTE.set(meta)
        try:
            return handler(request)
        finally:
            ACTIVE_ROUTE.reset(token)

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        request, meta = self._swap(request)
        token = ACTIVE_ROUTE.set(meta)
        try:
            return await handler(request)
        finally:
            ACTIVE_ROUTE.reset(token)
