"""One routed call: call the decided tier and, under a :class:`CascadePolicy`, validate its answer
and escalate — the same loop for every adapter, sync, async and streaming.

The adapters (``agentcost_langchain.ModelRouter`` and ``RouterMiddleware``,
``agentcost_llamaindex.RouterLLM``) decide with :meth:`Router.route` (async code:
:meth:`Router.aroute`) and hand :class:`Dispatch`
two plain callables: ``call(attempt)`` runs the attempt's tier (through the framework's normal
path, so the call is billed and recorded like any other) and ``read(answer)`` returns the answer's
``(text, raw)`` for the validator (``raw`` carries logprobs when the provider sent them).

    dispatch = Dispatch(router)
    answer = dispatch.call(router.route(request), call=run_tier, read=text_of)

Without a cascade in the policy there is exactly one attempt. With one, a rejected answer is
followed by one call to the next cascade tier (up to ``max_escalations``); the answer returned is
the last one. The escalation target goes through the policy's constraints (``UserTierCap``,
``BudgetDowngrade``, ...) like any decision: when they keep it at or below the tier that answered,
there is no escalation and that answer stands (the attempt's route reason says why). Each attempt
has its own ``route`` metadata (a fresh id, the tier, the reason — an escalation's reads
``cascade: nano answer rejected (why); escalated to frontier``), which the adapter attaches to
that call.

Streams under a cascade are buffered while an escalation is still possible (an answer can only
be validated once it is complete); the last possible tier streams live.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .cascade import CascadePolicy, escalation_reason
from .decision import RoutingDecision
from .policy import PolicyChain
from .router import Router

__all__ = ["Attempt", "Dispatch", "cascade_of"]

logger = logging.getLogger("agentcost.routing")

A = TypeVar("A")
C = TypeVar("C")


def cascade_of(policy: Any) -> CascadePolicy | None:
    """The :class:`CascadePolicy` in a policy (or policy chain), if any."""
    for p in policy.policies if isinstance(policy, PolicyChain) else [policy]:
        if isinstance(p, CascadePolicy):
            return p
    return None


@dataclass(frozen=True)
class Attempt:
    """One call of a routed request: the tier, the decision behind it and the ``route`` metadata
    that links the call to its decision in the ledger."""

    tier: str
    model: str | None
    decision: RoutingDecision
    route: dict[str, Any] = field(repr=False)
    escalations: int = 0
    escalated_from: str | None = None
    #: Whether a rejected answer would be escalated (a cascade tier follows, within
    #: ``max_escalations``, and the constraints allow a dearer tier).
    may_escalate: bool = False


class Dispatch:
    """``Dispatch(router)``: runs routed calls for one router (see the module docstring)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.cascade = cascade_of(router.policy)

    # --- the steps -----------------------------------------------------------------------------
    # An escalation target goes through the policy's constraints (user cap, budget downgrade) like
    # any decision. Each attempt checks up front where a rejection would lead: when the constraints
    # keep that at or below the attempt's own tier, the attempt cannot escalate (its answer stands,
    # unvalidated, and its route says why). The ``a*`` forms constrain off the event loop when the
    # policy may block.
    def first(self, decision: RoutingDecision) -> Attempt:
        """The attempt for a fresh decision."""
        return self._attempt(decision, 0, None)

    async def afirst(self, decision: RoutingDecision) -> Attempt:
        """:meth:`first` for async code."""
        return await self._aattempt(decision, 0, None)

    def can_escalate(self, attempt: Attempt) -> bool:
        """Whether a rejected answer of ``attempt`` would be followed by another call."""
        return attempt.may_escalate

    def after(self, attempt: Attempt, text: str, raw: Any = None) -> Attempt | None:
        """The next attempt when ``attempt``'s answer is rejected; None when the answer stands."""
        target = self._rejected(attempt, text, raw)
        if target is None:
            return None
        target = self.router.constrain(target)
        return self._attempt(target, attempt.escalations + 1, attempt.tier) if self._above(target, attempt) else None

    async def aafter(self, attempt: Attempt, text: str, raw: Any = None) -> Attempt | None:
        """:meth:`after` for async code."""
        target = self._rejected(attempt, text, raw)
        if target is None:
            return None
        target = await self.router.aconstrain(target)
        if not self._above(target, attempt):
            return None
        return await self._aattempt(target, attempt.escalations + 1, attempt.tier)

    def _next(self, decision: RoutingDecision, escalations: int, why: str) -> RoutingDecision | None:
        """The cascade's next tier after ``decision`` as an (unconstrained) escalation decision."""
        cascade = self.cascade
        if cascade is None or escalations >= cascade.max_escalations:
            return None
        nxt = cascade.next_tier(decision.tier)
        if nxt is None:
            return None
        reason = escalation_reason(why, decision.tier, nxt)
        return RoutingDecision(nxt, reason, "cascade", decision.score, decision.features, request=decision.request)

    def _rejected(self, attempt: Attempt, text: str, raw: Any) -> RoutingDecision | None:
        if not attempt.may_escalate:
            return None
        assert self.cascade is not None  # may_escalate says there is one
        ok, why = self.cascade.validate(text, raw=raw)
        return None if ok else self._next(attempt.decision, attempt.escalations, why)

    def _above(self, target: RoutingDecision, attempt: Attempt) -> bool:
        """Whether the constrained ``target`` is a dearer tier than the one that answered."""
        tiers = self.router.tiers
        if tiers[target.tier].rank > tiers[attempt.tier].rank:
            return True
        logger.info("agentcost routing: no escalation past %s: %s", attempt.tier, "; ".join(target.adjustments))
        return False

    def _attempt(self, decision: RoutingDecision, escalations: int, escalated_from: str | None) -> Attempt:
        probe = self._next(decision, escalations, "if rejected")
        ceiling = None if probe is None else self.router.constrain(probe)
        return self._make(decision, escalations, escalated_from, probe, ceiling)

    async def _aattempt(self, decision: RoutingDecision, escalations: int, escalated_from: str | None) -> Attempt:
        probe = self._next(decision, escalations, "if rejected")
        ceiling = None if probe is None else await self.router.aconstrain(probe)
        return self._make(decision, escalations, escalated_from, probe, ceiling)

    def _make(self, decision: RoutingDecision, escalations: int, escalated_from: str | None,
              probe: RoutingDecision | None, ceiling: RoutingDecision | None) -> Attempt:  # fmt: skip
        may_escalate = probe is not None
        if ceiling is not None and self.router.tiers[ceiling.tier].rank <= self.router.tiers[decision.tier].rank:
            capped = "; ".join(ceiling.adjustments) or f"constraints keep it at {ceiling.tier}"
            decision = decision.moved(decision.tier, f"no escalation past {decision.tier}: {capped}")
            may_escalate = False
        route = self.router.metadata(decision)
        if escalated_from is not None:
            route["escalated_from"] = escalated_from
        return Attempt(
            tier=decision.tier,
            model=route["model"],
            decision=decision,
            route=route,
            escalations=escalations,
            escalated_from=escalated_from,
            may_escalate=may_escalate,
        )

    # --- whole calls ---------------------------------------------------------------------------
    def call(self, decision: RoutingDecision, call: Callable[[Attempt], A], read: Callable[[A], tuple[str, Any]]) -> A:
        """Run the routed call; returns the answer that stands."""
        attempt = self.first(decision)
        while True:
            answer = call(attempt)
            nxt = self.after(attempt, *read(answer)) if self.can_escalate(attempt) else None
            if nxt is None:
                return answer
            attempt = nxt

    async def acall(
        self,
        decision: RoutingDecision,
        call: Callable[[Attempt], Awaitable[A]],
        read: Callable[[A], tuple[str, Any]],
    ) -> A:
        """:meth:`call` for an async ``call``."""
        attempt = await self.afirst(decision)
        while True:
            answer = await call(attempt)
            nxt = await self.aafter(attempt, *read(answer)) if self.can_escalate(attempt) else None
            if nxt is None:
                return answer
            attempt = nxt

    def stream(
        self,
        decision: RoutingDecision,
        open_stream: Callable[[Attempt], Iterable[C]],
        read: Callable[[list[C]], tuple[str, Any]],
    ) -> Iterator[C]:
        """The routed call as a stream of chunks; the first attempt's stream is opened now (the
        tier's call starts where the caller asked for it). ``read`` gets all chunks of a buffered
        attempt."""
        attempt = self.first(decision)
        return self._rest(attempt, open_stream(attempt), open_stream, read)

    def _rest(self, attempt: Attempt, stream: Iterable[C], open_stream: Callable[[Attempt], Iterable[C]],
              read: Callable[[list[C]], tuple[str, Any]]) -> Iterator[C]:  # fmt: skip
        while self.can_escalate(attempt):
            chunks = list(stream)
            nxt = self.after(attempt, *read(chunks))
            if nxt is None:
                yield from chunks
                return
            attempt = nxt
            stream = open_stream(attempt)
        yield from stream

    async def astream(
        self,
        decision: RoutingDecision,
        open_stream: Callable[[Attempt], Any],
        read: Callable[[list[C]], tuple[str, Any]],
    ) -> AsyncIterator[C]:
        """:meth:`stream` for an async ``open_stream`` (returning an awaitable of an async
        iterator, or an async iterator itself); awaiting it opens the first attempt's stream."""
        attempt = await self.afirst(decision)
        return self._arest(attempt, await _opened(open_stream(attempt)), open_stream, read)

    async def _arest(self, attempt: Attempt, stream: Any, open_stream: Callable[[Attempt], Any],
                     read: Callable[[list[C]], tuple[str, Any]]) -> AsyncIterator[C]:  # fmt: skip
        while self.can_escalate(attempt):
            chunks = [c async for c in stream]
            nxt = await self.aafter(attempt, *read(chunks))
            if nxt is None:
                for c in chunks:
                    yield c
                return
            attempt = nxt
            stream = await _opened(open_stream(attempt))
        async for c in stream:
            yield c


async def _opened(stream: Any) -> Any:
    """An async iterator from what an async stream opener returned (awaitable or iterator)."""
    if hasattr(stream, "__aiter__"):
        return stream
    return await stream
