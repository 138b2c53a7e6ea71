"""Routing policies and how they compose.

A policy is either a **chooser** (it picks a tier when no earlier policy has) or a **constraint**
(it may move an already chosen tier: a user-tier cap, a budget downgrade, a latency preference).
``StaticPolicy(...) | HeuristicPolicy(...) | BudgetDowngrade(...)`` (or a list) applies them in
order: the first chooser with an opinion decides, then every constraint adjusts.

A policy whose decision may wait on I/O (``SemanticPolicy`` embedding a request over the network,
``BudgetDowngrade`` reading a shared budget store) says so with ``blocking``: the async adapters
then decide in a worker thread (:meth:`Router.aroute`), while cheap policies decide inline.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigurationError
from .decision import RouteRequest, RoutingDecision
from .tiers import TierSet

__all__ = [
    "BudgetDowngrade",
    "LatencyPreference",
    "Policy",
    "PolicyChain",
    "StaticPolicy",
    "UserTierCap",
    "as_policy",
]


class Policy:
    """Base class. Choosers override :meth:`choose`; constraints override :meth:`adjust`."""

    name = "policy"
    constraint = False
    #: Whether deciding may block on I/O (the async adapters then decide off the event loop).
    blocking = False

    def tier_names(self) -> Iterable[str]:
        """The tier names this policy may return (checked against the router's tiers)."""
        return ()

    def choose(self, request: RouteRequest, tiers: TierSet) -> RoutingDecision | None:
        return None

    def adjust(self, decision: RoutingDecision, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        return decision

    def apply(self, request: RouteRequest, tiers: TierSet, current: RoutingDecision | None) -> RoutingDecision | None:
        if self.constraint:
            return None if current is None else self.adjust(current, request, tiers)
        return current if current is not None else self.choose(request, tiers)

    def constrain(self, decision: RoutingDecision, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        """``decision`` after this policy's constraints only (a cascade's escalation target)."""
        return self.adjust(decision, request, tiers) if self.constraint else decision

    def __or__(self, other: Policy) -> PolicyChain:
        return PolicyChain([self, other])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PolicyChain(Policy):
    """Policies applied in order (see the module docstring)."""

    name = "chain"

    def __init__(self, policies: Sequence[Policy]) -> None:
        flat: list[Policy] = []
        for p in policies:
            p = as_policy(p)
            flat.extend(p.policies if isinstance(p, PolicyChain) else [p])
        if not flat:
            raise ConfigurationError("a policy chain needs at least one policy")
        self.policies = flat

    @property
    def blocking(self) -> bool:  # type: ignore[override]
        return any(p.blocking for p in self.policies)

    def tier_names(self) -> Iterable[str]:
        for p in self.policies:
            yield from p.tier_names()

    def apply(self, request: RouteRequest, tiers: TierSet, current: RoutingDecision | None) -> RoutingDecision | None:
        for p in self.policies:
            current = p.apply(request, tiers, current)
        return current

    def constrain(self, decision: RoutingDecision, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        for p in self.policies:
            decision = p.constrain(decision, request, tiers)
        return decision

    def __or__(self, other: Policy) -> PolicyChain:
        return PolicyChain([*self.policies, other])

    def __repr__(self) -> str:
        return " | ".join(repr(p) for p in self.policies)


def as_policy(policy: Any) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, (list, tuple)):
        return PolicyChain(policy)
    raise ConfigurationError(f"policy must be a Policy or a list of policies, got {type(policy).__name__}")


class StaticPolicy(Policy):
    """``StaticPolicy(routes={step_or_tag: tier}, default=tier)``: the step name (LangGraph node,
    chain run name) or any tag of the call picks the tier; ``default`` otherwise (None: no opinion,
    the next policy decides)."""

    name = "static"

    def __init__(self, routes: Mapping[str, str], default: str | None = None) -> None:
        if not isinstance(routes, Mapping):
            raise ConfigurationError("StaticPolicy routes= must be a mapping {step_or_tag: tier}")
        self.routes = dict(routes)
        self.default = default

    def tier_names(self) -> Iterable[str]:
        yield from self.routes.values()
        if self.default is not None:
            yield self.default

    def choose(self, request: RouteRequest, tiers: TierSet) -> RoutingDecision | None:
        routes = self.routes
        if request.step is not None and request.step in routes:
            return RoutingDecision(routes[request.step], f"step {request.step!r} routes to {routes[request.step]}", "static")
        for tag in request.tags:
            if tag in routes:
                return RoutingDecision(routes[tag], f"tag {tag!r} routes to {routes[tag]}", "static")
        if self.default is not None:
            return RoutingDecision(self.default, f"static default {self.default}", "static")
        return None

    def __repr__(self) -> str:
        return f"StaticPolicy(routes={self.routes!r}, default={self.default!r})"


class UserTierCap(Policy):
    """Caps the tier by the user's plan: ``UserTierCap({"free": "nano", "pro": "mid"})``; plans
    not listed (enterprise) are not capped; an unknown plan gets ``unknown`` (default: no cap)."""

    name = "user_tier"
    constraint = True

    def __init__(self, caps: Mapping[str, str | None], unknown: str | None = None) -> None:
        self.caps = dict(caps)
        self.unknown = unknown

    def tier_names(self) -> Iterable[str]:
        yield from (t for t in self.caps.values() if t is not None)
        if self.unknown is not None:
            yield self.unknown

    def adjust(self, decision: RoutingDecision, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        plan = request.user_tier
        cap = self.caps.get(plan, self.unknown) if plan is not None else self.unknown
        if cap is None or tiers[decision.tier].rank <= tiers[cap].rank:
            return decision
        return decision.moved(cap, f"user plan {plan!r} is capped at {cap}")


class BudgetDowngrade(Policy):
    """Moves calls to ``to`` (default: the cheapest tier) once a ``downgrade`` budget of the
    call's scope is past its ``warn_at`` threshold (``BudgetEnforcer.downgrade_requested``)."""

    name = "budget"
    constraint = True

    def __init__(self, enforcer: Any, to: str | None = None) -> None:
        if not hasattr(enforcer, "downgrade_requested"):
            raise ConfigurationError("BudgetDowngrade needs a BudgetEnforcer (or Controls.enforcer)")
        self.enforcer = enforcer
        self.to = to
        #: A shared store (Redis, PostgreSQL) is read over the network; in-process counters are not.
        self.blocking = not getattr(enforcer, "local", False)

    def tier_names(self) -> Iterable[str]:
        return [self.to] if self.to is not None else []

    def adjust(self, decision: RoutingDecision, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        if request.scope is None or not self.enforcer.downgrade_requested(request.scope):
            return decision
        to = self.to or tiers.cheapest.name
        if tiers[decision.tier].rank <= tiers[to].rank:
            return decision
        return decision.moved(to, "a downgrade budget passed its threshold")


class LatencyPreference(Policy):
    """When a human is waiting (``RouteRequest.latency_sensitive``), prefer ``fast`` unless the
    chooser's score is at least ``keep_above`` (a genuinely hard request stays where it was)."""

    name = "latency"
    constraint = True

    def __init__(self, fast: str, keep_above: float = 0.8) -> None:
        if isinstance(keep_above, bool) or not isinstance(keep_above, (int, float)) or not math.isfinite(keep_above):
            raise ConfigurationError(f"LatencyPreference keep_above must be a finite score, got {keep_above!r}")
        self.fast = fast
        self.keep_above = float(keep_above)

    def tier_names(self) -> Iterable[str]:
        return [self.fast]

    def adjust(self, decision: RoutingDecision, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        if not request.latency_sensitive or tiers[decision.tier].rank <= tiers[self.fast].rank:
            return decision
        if decision.score is not None and decision.score >= self.keep_above:
            return decision
        return decision.moved(self.fast, "a human is waiting: latency preferred")
