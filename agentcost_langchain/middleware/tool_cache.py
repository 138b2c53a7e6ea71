"""``ToolCacheMiddleware``: tool-result caching for a ``create_agent`` agent (see
:mod:`agentcost_langchain.tool_cache`)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from langchain.agents.middleware.types import AgentMiddleware

from agentcost_core.errors import ConfigurationError
from agentcost_core.tool_cache import ToolCache

from ..tool_cache import hit_message, kept, run_attribution

__all__ = ["ToolCacheMiddleware"]


class ToolCacheMiddleware(AgentMiddleware):
    """``ToolCacheMiddleware(ttl, *, cost=None, scope=("user_id",), max_entries=10_000, ledger=None,
    **attribution)`` or ``ToolCacheMiddleware(cache=ToolCache(...))`` to share one cache.

    ``ttl`` maps tool names to seconds; any tool not listed runs every time. A hit answers the
    model's tool call with the cached result and records a tool-cache event; a miss runs the tool
    and keeps a successful result.
    """

    def __init__(
        self,
        ttl: Mapping[str, float] | None = None,
        *,
        cache: ToolCache | None = None,
        cost: Mapping[str, Decimal | str | int] | None = None,
        scope: tuple[str, ...] = ("user_id",),
        max_entries: int = 10_000,
        ledger: Any = None,
        **attribution: str | None,
    ) -> None:
        super().__init__()
        if cache is not None:
            if ttl is not None or cost is not None or ledger is not None or attribution:
                raise TypeError("pass either cache= or the settings of a new cache (ttl, cost, ledger ...), not both")
            self.cache = cache
        elif ttl is None:
            raise ConfigurationError("name the tools to cache and their TTL: ToolCacheMiddleware({'search': 300})")
        else:
            self.cache = ToolCache(ttl, cost=cost, scope=scope, max_entries=max_entries, ledger=ledger,
                                   framework="langchain", **attribution)  # fmt: skip

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        call = request.tool_call
        name = call.get("name")
        if not self.cache.caches(name):
            return handler(request)
        who = run_attribution(self.cache.recorder.defaults)
        hit = self.cache.lookup(name, call.get("args"), attribution=who)
        if hit is not None:
            return hit_message(hit.value, call)
        out = handler(request)
        pair = kept(out)
        if pair is not None:
            self.cache.store(name, call.get("args"), pair, attribution=who)
        return out

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        call = request.tool_call
        name = call.get("name")
        if not self.cache.caches(name):
            return await handler(request)
        who = run_attribution(self.cache.recorder.defaults)
        hit = self.cache.lookup(name, call.get("args"), attribution=who)
        if hit is not None:
            return hit_message(hit.value, call)
        out = await handler(request)
        pair = kept(out)
        if pair is not None:
            self.cache.store(name, call.get("args"), pair, attribution=who)
        return out
