"""agentcost for LangChain: exact cost capture for chains, agents and LangGraph graphs.

    from agentcost_langchain import CostCallbackHandler
    handler = CostCallbackHandler(feature="support")
    chain.invoke(inputs, config={"callbacks": [handler], "metadata": {"user_id": "u1"}})
    handler.total_cost  # Decimal
"""

from .callbacks import AsyncCostCallbackHandler, CostCallbackHandler
from .guard import GuardedAgent, GuardedResult, guard
from .memory import TieredChatMessageHistory, TieredMemory
from .response_cache import ResponseCache
from .router import ModelRouter
from .tracking import track_costs

__all__ = [
    "AsyncCostCallbackHandler",
    "CostCallbackHandler",
    "GuardedAgent",
    "GuardedResult",
    "ModelRouter",
    "ResponseCache",
    "TieredChatMessageHistory",
    "TieredMemory",
    "guard",
    "track_costs",
]
