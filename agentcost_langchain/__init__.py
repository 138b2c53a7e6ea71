"""agentcost for LangChain: exact cost capture for chains, agents and LangGraph graphs.

    from agentcost_langchain import CostCallbackHandler
    handler = CostCallbackHandler(feature="support")
    chain.invoke(inputs, config={"callbacks": [handler], "metadata": {"user_id": "u1"}})
    handler.total_cost  # Decimal
"""

from .callbacks import AsyncCostCallbackHandler, CostCallbackHandler
from .embeddings import CostTrackedEmbeddings
from .guard import GuardedAgent, GuardedResult, guard
from .memory import TieredChatMessageHistory, TieredMemory
from .response_cache import ResponseCache
from .router import ModelRouter
from .tool_cache import cached_tool
from .tracking import track_costs

__all__ = [
    "AsyncCostCallbackHandler",
    "CostCallbackHandler",
    "CostTrackedEmbeddings",
    "GuardedAgent",
    "GuardedResult",
    "ModelRouter",
    "ResponseCache",
    "TieredChatMessageHistory",
    "TieredMemory",
    "ToolCacheMiddleware",
    "cached_tool",
    "guard",
    "track_costs",
]


def __getattr__(name: str) -> object:  # ToolCacheMiddleware needs langchain >= 1.0; the rest only langchain-core
    if name == "ToolCacheMiddleware":
        from .middleware.tool_cache import ToolCacheMiddleware

        return ToolCacheMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
