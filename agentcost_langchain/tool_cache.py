"""Tool-result caching for LangChain: ``ToolCacheMiddleware`` for ``create_agent`` and the
``@cached_tool`` decorator for any tool, both over the core's
:class:`~agentcost_core.tool_cache.ToolCache` (a TTL per tool; a tool not listed is never cached,
since tools may have side effects).

    agent = create_agent(model, tools=[search, send_email],
                         middleware=[ToolCacheMiddleware({"search": 300})])   # send_email: never

    @cached_tool(ttl=300)
    @tool
    def search(query: str) -> str: ...

A hit answers with the cached content (a ToolMessage for the new tool call id) and is recorded as
a ``kind="tool"`` event with ``cache_hit=True``. Results with ``status="error"`` are never kept.
The entry's scope (``user_id`` by default) is read from the run's metadata, as every handler reads it.
``ToolCacheMiddleware`` needs ``langchain`` >= 1.0; ``cached_tool`` only langchain-core.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_core.tools import tool as as_tool

from agentcost_core.attribution import Attribution, read_attribution
from agentcost_core.errors import ConfigurationError
from agentcost_core.tool_cache import ToolCache, own_copy

if TYPE_CHECKING:
    from .middleware.tool_cache import ToolCacheMiddleware

__all__ = ["ToolCacheMiddleware", "cached_tool", "hit_message", "run_attribution"]

#: ``response_metadata`` key a cached ToolMessage carries (``{"agentcost_cache": "hit"}``).
CACHE_MARK = "agentcost_cache"


def run_attribution(defaults: Attribution) -> Attribution:
    """The attribution of the run this tool call belongs to (its metadata, LangGraph's thread id)."""
    try:
        config = ensure_config()
    except Exception:  # noqa: BLE001 - outside a run: the defaults
        return defaults
    return read_attribution(config.get("metadata"), defaults=defaults, configurable=config.get("configurable"))


def hit_message(value: Any, tool_call: Mapping[str, Any]) -> ToolMessage:
    """The ToolMessage answering ``tool_call`` from a cached (content, artifact) pair."""
    content, artifact = value
    if not isinstance(content, str):
        content = copy.deepcopy(content)
    return ToolMessage(content=content, artifact=own_copy(artifact), tool_call_id=tool_call.get("id") or "",
                       name=tool_call.get("name"), response_metadata={CACHE_MARK: "hit"})  # fmt: skip


def kept(out: Any) -> tuple[Any, Any] | None:
    """What a tool's answer leaves in the cache: (content, artifact) of a successful ToolMessage."""
    if isinstance(out, ToolMessage) and out.status != "error":
        return out.content, own_copy(out.artifact)
    return None


def _model_fields(tool: BaseTool) -> frozenset[str] | None:
    """The names of the arguments the model chooses (injected ones such as a tool call id or the
    graph state are not part of the key); None when the schema cannot be read (every argument)."""
    try:
        return frozenset(tool.tool_call_schema.model_fields)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a schema we cannot read: every argument
        return None


def cached_tool(
    tool: Any = None,
    *,
    ttl: float | None = None,
    cache: ToolCache | None = None,
    cost: Decimal | str | None = None,
    ledger: Any = None,
    scope: tuple[str, ...] = ("user_id",),
    **attribution: str | None,
) -> Any:
    """A tool whose results are cached for ``ttl`` seconds (or by the shared ``cache=``, which
    must list the tool). Use as ``@cached_tool(ttl=300)`` above ``@tool`` (or above a plain
    function, which becomes a tool) or as ``cached_tool(search, ttl=300)``."""

    def wrap(inner: Any) -> BaseTool:
        if not isinstance(inner, BaseTool):
            inner = as_tool(inner)
        name = inner.name
        if cache is not None:
            if ttl is not None or cost is not None or ledger is not None or attribution:
                raise TypeError("pass either cache= or the settings of a new cache (ttl, cost, ledger ...), not both")
            store = cache
            if not store.caches(name):
                raise ConfigurationError(f"the cache given to cached_tool has no TTL for tool {name!r}")
        else:
            if ttl is None:
                raise ConfigurationError(f"cached_tool({name!r}) needs ttl= (seconds) or cache=")
            store = ToolCache({name: ttl}, cost={name: cost} if cost is not None else None, scope=scope,
                              ledger=ledger, framework="langchain", **attribution)  # fmt: skip
        return _cached(inner, store)

    return wrap if tool is None else wrap(tool)


def _cached(inner: BaseTool, cache: ToolCache) -> BaseTool:
    name = inner.name
    artifacts = inner.response_format == "content_and_artifact"
    fields = _model_fields(inner)  # once: the schema is rebuilt on every access

    def cached(value: tuple[Any, Any]) -> Any:
        content, artifact = value
        if not isinstance(content, str):
            content = copy.deepcopy(content)
        return (content, own_copy(artifact)) if artifacts else content

    def answer(message: ToolMessage) -> Any:
        if message.status == "error":
            raise ToolException(message.content)
        return (message.content, message.artifact) if artifacts else message.content

    def request(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Attribution]:
        call = {"name": name, "args": kwargs, "id": "agentcost-cached-tool", "type": "tool_call"}
        args = kwargs if fields is None else {k: v for k, v in kwargs.items() if k in fields}
        return call, args, run_attribution(cache.recorder.defaults)

    # The inner tool runs without callbacks: the outer tool's run is the one handlers see.
    def run(**kwargs: Any) -> Any:
        call, args, who = request(kwargs)
        hit = cache.lookup(name, args, attribution=who)
        if hit is not None:
            return cached(hit.value)
        message = inner.invoke(call, config={"callbacks": []})
        pair = kept(message)
        if pair is not None:
            cache.store(name, args, pair, attribution=who)
        return answer(message)

    async def arun(**kwargs: Any) -> Any:
        call, args, who = request(kwargs)
        hit = cache.lookup(name, args, attribution=who)
        if hit is not None:
            return cached(hit.value)
        message = await inner.ainvoke(call, config={"callbacks": []})
        pair = kept(message)
        if pair is not None:
            cache.store(name, args, pair, attribution=who)
        return answer(message)

    # LangChain reads the function's type hints on every call: real objects, not the strings this
    # module's ``from __future__ import annotations`` makes (evaluating those costs ~0.3 ms per call).
    run.__annotations__ = arun.__annotations__ = {"kwargs": Any, "return": Any}
    wrapped = StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=inner.description,
        args_schema=inner.args_schema,
        return_direct=inner.return_direct,
        response_format=inner.response_format,
    )
    # An error the inner tool handled (an error ToolMessage) stays an error answer; one it raises propagates.
    wrapped.handle_tool_error = bool(inner.handle_tool_error)
    wrapped.handle_validation_error = inner.handle_validation_error
    wrapped.metadata = {**(inner.metadata or {}), "agentcost_tool_cache": True}
    return wrapped


def __getattr__(name: str) -> Any:  # ToolCacheMiddleware needs langchain >= 1.0, cached_tool only langchain-core
    if name == "ToolCacheMiddleware":
        from .middleware.tool_cache import ToolCacheMiddleware

        return ToolCacheMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
