"""The framework-free router: tiers + a policy → a decision per call, checked and timed, and the
metadata that links the decision to the model call it chose in the ledger.

Async code decides with :meth:`Router.aroute` (and :meth:`Router.aconstrain`): inline when the
policy is cheap (heuristic, static, caps: no thread hop), in a worker thread when it may block
(``policy.blocking``: an embedding call, a shared budget store), so the event loop never waits."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any, Mapping

from ..budgets.off_loop import off_loop
from ..errors import AgentCostError, ConfigurationError
from ..prices import PriceCatalog
from .decision import RouteRequest, RoutingDecision
from .policy import Policy, as_policy
from .tiers import TierSet

__all__ = ["ROUTER_PROVIDER", "ROUTE_KEY", "Router", "RoutingError"]

#: Run metadata / instrument tag carrying a routing decision to the capture handlers.
ROUTE_KEY = "agentcost_route"
#: ``ls_provider`` of a router's own model run: capture handlers treat it as a step, not a call.
ROUTER_PROVIDER = "agentcost-router"


class RoutingError(AgentCostError):
    """A policy returned a tier the router does not have (or routing could not decide)."""


class Router:
    """``Router(tiers={name: model_id}, policy, default=None)``. When no policy has an opinion the
    call goes to ``default`` (else the top tier: quality is the safe fallback)."""

    def __init__(
        self,
        tiers: Mapping[str, str | None],
        policy: Policy | list[Policy],
        *,
        default: str | None = None,
        catalog: PriceCatalog | None = None,
        order: str = "price",
    ) -> None:
        self.tiers = TierSet(tiers, catalog=catalog, order=order)
        self.policy = as_policy(policy)
        self.tiers.check(*self.policy.tier_names())
        if default is not None and default not in self.tiers:
            raise ConfigurationError(f"default tier {default!r} is not one of the tiers {self.tiers.order}")
        self.default = default
        #: Whether deciding may block on I/O (see the module docstring).
        self.blocking = bool(self.policy.blocking)

    def route(self, request: RouteRequest) -> RoutingDecision:
        t0 = time.perf_counter()
        decision = self.policy.apply(request, self.tiers, None)
        if decision is None:
            tier = self.default or self.tiers.top.name
            decision = RoutingDecision(tier, "no policy decided: default tier", "default")
        if decision.tier not in self.tiers:
            raise RoutingError(
                f"policy {decision.policy or self.policy!r} returned tier {decision.tier!r}, "
                f"but the router's tiers are {self.tiers.order}"
            )
        # a copy: a policy may hand out the same decision object to every call
        return replace(decision, decision_s=time.perf_counter() - t0, request=request)

    async def aroute(self, request: RouteRequest) -> RoutingDecision:
        """:meth:`route` for async code: in a worker thread when the policy may block."""
        if not self.blocking:
            return self.route(request)
        return await off_loop(self.route, request)  # type: ignore[no-any-return]

    def constrain(self, decision: RoutingDecision) -> RoutingDecision:
        """``decision`` after the policy's constraints (user cap, budget, latency), for the request
        it was made for: how a cascade's escalation target is checked."""
        t0 = time.perf_counter()
        request = decision.request if decision.request is not None else RouteRequest(text="")
        out = self.policy.constrain(decision, request, self.tiers)
        if out.tier not in self.tiers:
            raise RoutingError(
                f"a constraint returned tier {out.tier!r}, but the router's tiers are {self.tiers.order}"
            )
        if out is not decision:
            out = replace(out, decision_s=decision.decision_s + time.perf_counter() - t0)
        return out

    async def aconstrain(self, decision: RoutingDecision) -> RoutingDecision:
        """:meth:`constrain` for async code: in a worker thread when the policy may block."""
        if not self.blocking:
            return self.constrain(decision)
        return await off_loop(self.constrain, decision)  # type: ignore[no-any-return]

    def metadata(self, decision: RoutingDecision) -> dict[str, Any]:
        """What the capture handlers need to tag the chosen call and record the decision."""
        tier = self.tiers[decision.tier]
        return {
            "id": uuid.uuid4().hex,
            "tier": decision.tier,
            "model": tier.model,
            "top_tier": self.tiers.top.name,
            "top_model": self.tiers.top.model,
            **decision.as_dict(),
        }
