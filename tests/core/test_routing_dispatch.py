"""The core cascade loop (``Dispatch``) every routing adapter uses: call the decided tier, validate,
escalate at most ``max_escalations`` times; sync, async, streams; no cascade means one call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentcost_core.routing import CascadePolicy, Dispatch, Router, RouteRequest, StaticPolicy

TIERS = {"nano": "gpt-4.1-nano", "mini": "gpt-4.1-mini", "frontier": "gpt-4.1"}
ANSWERS = {"nano": "not sure", "mini": "still not sure", "frontier": "a refund is possible"}


def refund_router(max_escalations: int = 1, tiers: tuple[str, ...] = ("nano", "frontier")) -> Router:
    policy = CascadePolicy(tiers, validator=lambda t: "refund" in t or "no refund", max_escalations=max_escalations)
    return Router(TIERS, policy)


def route(router: Router) -> Any:
    return router.route(RouteRequest(text="Can I get my money back?"))


def run(router: Router) -> tuple[str, list[Any]]:
    attempts: list[Any] = []

    def call(attempt: Any) -> str:
        attempts.append(attempt)
        return ANSWERS[attempt.tier]

    return Dispatch(router).call(route(router), call, lambda a: (a, None)), attempts


def test_a_rejected_answer_is_escalated_once_with_its_reason_and_its_own_route() -> None:
    answer, attempts = run(refund_router())
    assert answer == "a refund is possible"
    assert [(a.tier, a.model) for a in attempts] == [("nano", "gpt-4.1-nano"), ("frontier", "gpt-4.1")]
    first, second = (a.route for a in attempts)
    assert first["id"] != second["id"] and second["escalated_from"] == "nano" and "escalated_from" not in first
    assert second["tier"] == "frontier" and "no refund" in second["reason"]


def test_max_escalations_bounds_the_calls() -> None:
    assert [a.tier for a in run(refund_router(0))[1]] == ["nano"]
    three = ("nano", "mini", "frontier")
    assert [a.tier for a in run(refund_router(1, three))[1]] == ["nano", "mini"]
    assert [a.tier for a in run(refund_router(2, three))[1]] == ["nano", "mini", "frontier"]


def test_without_a_cascade_there_is_one_call_and_the_answer_is_not_read() -> None:
    router = Router(TIERS, StaticPolicy({}, default="nano"))

    def unreadable(answer: Any) -> tuple[str, Any]:
        raise AssertionError("no validator to feed")

    out = Dispatch(router).call(route(router), lambda a: ANSWERS[a.tier], unreadable)
    assert out == "not sure"


def test_a_failing_tier_call_propagates_without_escalating() -> None:
    router = refund_router()
    calls: list[str] = []

    def call(attempt: Any) -> str:
        calls.append(attempt.tier)
        raise RuntimeError("provider down")

    with pytest.raises(RuntimeError, match="provider down"):
        Dispatch(router).call(route(router), call, lambda a: (a, None))
    assert calls == ["nano"]


def test_async_calls_and_streams_escalate_the_same_way() -> None:
    router = refund_router()
    dispatch = Dispatch(router)
    opened: list[str] = []

    def words(attempt: Any) -> list[str]:
        opened.append(attempt.tier)
        return ANSWERS[attempt.tier].split(" ")

    def joined(chunks: list[str]) -> tuple[str, Any]:
        return " ".join(chunks), None

    assert " ".join(dispatch.stream(route(router), words, joined)) == "a refund is possible"

    async def acall(attempt: Any) -> str:
        return ANSWERS[attempt.tier]

    async def aopen(attempt: Any) -> Any:
        async def gen() -> Any:
            for w in words(attempt):
                yield w

        return gen()

    async def both() -> tuple[str, list[str]]:
        answer = await dispatch.acall(route(router), acall, lambda a: (a, None))
        chunks = [c async for c in await dispatch.astream(route(router), aopen, joined)]
        return answer, chunks

    answer, chunks = asyncio.run(both())
    assert answer == "a refund is possible" and " ".join(chunks) == "a refund is possible"
    assert opened == ["nano", "frontier", "nano", "frontier"]


def test_an_accepted_stream_is_replayed_and_the_last_tier_streams_live() -> None:
    router = refund_router()
    accepted = {"nano": "refund ok", "frontier": "unused"}
    def accepted_words(attempt: Any) -> Any:
        return iter(accepted[attempt.tier].split(" "))

    out = list(Dispatch(router).stream(route(router), accepted_words, lambda c: (" ".join(c), None)))
    assert out == ["refund", "ok"]
    live: list[str] = []

    def tracked(attempt: Any) -> Any:
        for w in ANSWERS[attempt.tier].split(" "):
            live.append(w)
            yield w

    live_stream = Dispatch(refund_router(0)).stream(route(router), tracked, lambda c: (" ".join(c), None))
    assert next(live_stream) == "not" and live == ["not"]  # no escalation possible: not buffered


def test_a_constraint_that_caps_the_escalation_target_keeps_the_answer_and_says_why() -> None:
    from agentcost_core.routing import UserTierCap

    policy = CascadePolicy(("nano", "frontier"), validator=lambda t: "refund" in t or "no refund")
    router = Router(TIERS, policy | UserTierCap({"free": "nano", "pro": "mini"}))
    dispatch = Dispatch(router)
    seen: list[Any] = []

    def call(attempt: Any) -> str:
        seen.append(attempt)
        return ANSWERS[attempt.tier]

    def ask(plan: str) -> str:
        seen.clear()
        return dispatch.call(router.route(RouteRequest(text="refund?", user_tier=plan)), call, lambda a: (a, None))

    assert ask("free") == "not sure" and [a.tier for a in seen] == ["nano"]
    capped = "cascade: try nano first; no escalation past nano: user plan 'free' is capped at nano"
    assert seen[0].route["reason"] == capped
    # a cap above the answering tier moves the escalation there (the constraint has the last word)
    assert ask("pro") == "still not sure" and [a.tier for a in seen] == ["nano", "mini"]
    assert seen[1].route["reason"] == (
        "cascade: nano answer rejected (no refund); escalated to frontier; user plan 'pro' is capped at mini"
    )
    assert ask("enterprise") == "a refund is possible" and [a.tier for a in seen] == ["nano", "frontier"]


def test_policies_say_whether_deciding_may_block() -> None:
    from agentcost_core import Budget, BudgetEnforcer
    from agentcost_core.budgets import MemoryStore
    from agentcost_core.routing import BudgetDowngrade, HeuristicPolicy, SemanticPolicy

    routes = {"nano": ["refund status"], "frontier": ["write code"]}
    assert SemanticPolicy(routes, lambda text: [1.0, float(len(text))]).blocking  # may call out: off the loop
    assert not SemanticPolicy(routes, lambda text: [1.0], blocking=False).blocking
    local = BudgetEnforcer([Budget(usd=1, per="user_day", on_exceed="downgrade", store=MemoryStore())], alerts=[])
    assert not BudgetDowngrade(local).blocking
    assert not Router(TIERS, HeuristicPolicy(("nano", "frontier")) | BudgetDowngrade(local)).blocking
    assert Router(TIERS, HeuristicPolicy(("nano", "frontier")) | SemanticPolicy(routes, lambda t: [1.0])).blocking
