"""Tool-result caching for LlamaIndex: ``CachedTool`` wraps a ``FunctionTool`` (or any
``BaseTool``) so a call with the same arguments, within the tool's TTL, answers from the core's
:class:`~agentcost_core.tool_cache.ToolCache` instead of running again.

    search = CachedTool(FunctionTool.from_defaults(search_orders), ttl=300)
    agent = FunctionAgent(tools=[search, send_email], llm=llm)     # send_email: never cached

A hit is a ``ToolOutput`` with the cached content and raw output (and this call's input) and is
recorded as a ``kind="tool"`` event with ``cache_hit=True``; error outputs are never kept. The
entry's scope (``user_id`` by default) comes from ``instrument_tags``, as every LlamaIndex call's
attribution does. A tool that takes the workflow ``Context`` is refused: its result depends on state.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.tools import BaseTool, ToolMetadata, ToolOutput, adapt_to_async_tool
from llama_index.core.tools.types import AsyncBaseTool

from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.errors import ConfigurationError
from agentcost_core.tool_cache import ToolCache, own_copy

__all__ = ["CachedTool"]


class CachedTool(AsyncBaseTool):
    """``CachedTool(tool, *, ttl=None, cache=None, cost=None, scope=("user_id",), ledger=None,
    **attribution)``: ``ttl`` seconds for this tool (or a shared ``cache=`` that lists it);
    ``cost``: what one call of the tool costs (what a hit saves)."""

    def __init__(
        self,
        tool: BaseTool,
        *,
        ttl: float | None = None,
        cache: ToolCache | None = None,
        cost: Decimal | str | None = None,
        scope: tuple[str, ...] = ("user_id",),
        ledger: Any = None,
        **attribution: str | None,
    ) -> None:
        if not isinstance(tool, BaseTool):
            raise TypeError(f"CachedTool wraps a LlamaIndex BaseTool (e.g. a FunctionTool), got {type(tool).__name__}")
        if getattr(tool, "requires_context", False):
            raise ConfigurationError(f"tool {tool.metadata.get_name()!r} reads the workflow Context: "
                                     "its results depend on state and are not cached")  # fmt: skip
        self.tool = tool
        self._async = adapt_to_async_tool(tool)
        self.name = tool.metadata.get_name()
        if cache is not None:
            if ttl is not None or cost is not None or ledger is not None or attribution:
                raise TypeError("pass either cache= or the settings of a new cache (ttl, cost, ledger ...), not both")
            if not cache.caches(self.name):
                raise ConfigurationError(f"the cache given to CachedTool has no TTL for tool {self.name!r}")
            self.cache = cache
        elif ttl is None:
            raise ConfigurationError(f"CachedTool({self.name!r}) needs ttl= (seconds) or cache=")
        else:
            self.cache = ToolCache({self.name: ttl}, cost={self.name: cost} if cost is not None else None,
                                   scope=scope, ledger=ledger, framework="llamaindex", **attribution)  # fmt: skip

    def __repr__(self) -> str:
        return f"CachedTool({self.name!r}, cache={self.cache!r})"

    @property
    def metadata(self) -> ToolMetadata:
        return self.tool.metadata

    def _attribution(self) -> Attribution:
        return read_attribution(active_instrument_tags.get(), defaults=self.cache.recorder.defaults)

    def _hit(self, args: tuple[Any, ...], kwargs: dict[str, Any], who: Attribution) -> ToolOutput | None:
        hit = self.cache.lookup(self.name, _key_args(args, kwargs), attribution=who)
        if hit is None:
            return None
        blocks, raw_output = hit.value
        return ToolOutput(blocks=copy.deepcopy(blocks), tool_name=self.name,
                          raw_input={"args": args, "kwargs": kwargs}, raw_output=own_copy(raw_output))  # fmt: skip

    def _keep(self, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any], who: Attribution) -> None:
        if isinstance(out, ToolOutput) and not out.is_error:
            kept = (copy.deepcopy(out.blocks), own_copy(out.raw_output))
            self.cache.store(self.name, _key_args(args, kwargs), kept, attribution=who)

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        who = self._attribution()
        hit = self._hit(args, kwargs, who)
        if hit is not None:
            return hit
        out = self.tool(*args, **kwargs)
        self._keep(out, args, kwargs, who)
        return out

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        who = self._attribution()
        hit = self._hit(args, kwargs, who)
        if hit is not None:
            return hit
        out = await self._async.acall(*args, **kwargs)
        self._keep(out, args, kwargs, who)
        return out


def _key_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs if not args else {"args": list(args), "kwargs": kwargs}
