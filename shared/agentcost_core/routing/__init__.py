"""Model-tier routing: pick the cheapest tier that can do each step.

Policies — choosers: :class:`StaticPolicy`, :class:`HeuristicPolicy`, :class:`SemanticPolicy`,
:class:`CascadePolicy`; constraints: :class:`UserTierCap`, :class:`BudgetDowngrade`,
:class:`LatencyPreference`. Compose with ``|`` or a list. :class:`Router` applies them;
:class:`Dispatch` runs a decided call (the cascade: call, validate, escalate) for the adapters
(``agentcost_langchain.ModelRouter`` / ``RouterMiddleware``, ``agentcost_llamaindex.RouterLLM``).
"""

from __future__ import annotations

from .cascade import CascadePolicy
from .decision import RouteRequest, RoutingDecision
from .dispatch import Attempt, Dispatch, cascade_of
from .heuristic import HeuristicPolicy, complexity
from .policy import BudgetDowngrade, LatencyPreference, Policy, PolicyChain, StaticPolicy, UserTierCap, as_policy
from .router import ROUTE_KEY, Router, RoutingError
from .semantic import SemanticPolicy
from .tiers import Tier, TierSet

__all__ = [
    "ROUTE_KEY",
    "Attempt",
    "BudgetDowngrade",
    "CascadePolicy",
    "Dispatch",
    "HeuristicPolicy",
    "LatencyPreference",
    "Policy",
    "PolicyChain",
    "RouteRequest",
    "Router",
    "RoutingDecision",
    "RoutingError",
    "SemanticPolicy",
    "StaticPolicy",
    "Tier",
    "TierSet",
    "UserTierCap",
    "as_policy",
    "cascade_of",
    "complexity",
]
