"""What a routing policy sees (:class:`RouteRequest`) and what it returns (:class:`RoutingDecision`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

__all__ = ["RouteRequest", "RoutingDecision"]


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One model call about to be routed, reduced to what policies need (framework-free)."""

    text: str  # the latest user / task text
    context_tokens: int = 0  # the whole prompt's tokens (history, documents)
    messages: int = 1
    tools: int = 0
    step: str | None = None  # LangGraph node / chain / agent step name
    tags: tuple[str, ...] = ()
    user_tier: str | None = None  # free / pro / enterprise …
    latency_sensitive: bool = False  # a human is waiting
    scope: Any = None  # a budgets.ScopeContext, for budget-aware policies


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The tier chosen, why, the score and features behind it, and how long deciding took."""

    tier: str
    reason: str
    policy: str = ""
    score: float | None = None
    features: Mapping[str, float] = field(default_factory=dict)
    decision_s: float = 0.0
    adjustments: tuple[str, ...] = ()  # constraints that moved the tier (user cap, budget, latency)
    #: The request decided (set by ``Router.route``): a cascade's escalation is constrained by it too.
    request: RouteRequest | None = field(default=None, repr=False, compare=False)

    def moved(self, tier: str, why: str) -> RoutingDecision:
        return replace(self, tier=tier, reason=f"{self.reason}; {why}", adjustments=(*self.adjustments, why))

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "reason": self.reason,
            "policy": self.policy,
            "score": self.score,
            "features": dict(self.features),
            "decision_us": round(self.decision_s * 1e6, 2),
            "adjustments": list(self.adjustments),
        }
