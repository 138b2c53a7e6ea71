"""ModelRouter decides every call form from the same run metadata and tags (``stream``, ``astream``
and LangGraph's ``stream_mode="messages"`` like ``invoke``), and a cascade's escalation goes
through the policy's constraints (``UserTierCap``, ``BudgetDowngrade``): a capped user is not
escalated past the cap, the answer stands and its route says why. An escalated call records the
documented reason. Real ``create_agent`` agents and ``RouterMiddleware`` over scripted chat models."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage

from agentcost_core import Budget, BudgetEnforcer, Ledger
from agentcost_core.budgets import MemoryStore
from agentcost_core.routing import BudgetDowngrade, CascadePolicy, HeuristicPolicy, StaticPolicy, UserTierCap
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.middleware import RouterMiddleware
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel

NANO, FRONTIER = "gpt-4.1-nano", "gpt-4.1"
HARD = "Analyze step by step and compare the tradeoffs of three database architectures, then design a migration plan with code."
NOT_SURE, REFUND = "I am not sure.", "You can get a refund within 30 days."


def tiers(nano: list[Any] | None = None, frontier: list[Any] | None = None) -> dict[str, Any]:
    return {
        "nano": ScriptedChatModel(script=nano or ["nano answer"], model=NANO, max_tokens=300),
        "frontier": ScriptedChatModel(script=frontier or ["frontier answer"], model=FRONTIER, max_tokens=300),
    }


def handler(**kw: Any) -> CostCallbackHandler:
    return CostCallbackHandler(Ledger("memory://", sync=True), **kw)


def llm_events(h: CostCallbackHandler) -> list[Any]:
    return [e for e in h.events if e.kind == "llm"]


def every_call_form(router: ModelRouter, text: str, config: dict[str, Any]) -> dict[str, Any]:
    """The router run each way a user runs it; returns each form's callback handler."""
    forms: dict[str, Any] = {
        "invoke": lambda c: router.invoke(text, c),
        "stream": lambda c: list(router.stream(text, c)),
        "astream": lambda c: asyncio.run(_collect(router.astream(text, c))),
        "agent stream_mode=messages": lambda c: list(
            create_agent(router, []).stream({"messages": [("user", text)]}, c, stream_mode="messages")
        ),
        "async agent stream_mode=messages": lambda c: asyncio.run(
            _collect(create_agent(router, []).astream({"messages": [("user", text)]}, c, stream_mode="messages"))
        ),
    }
    out = {}
    for name, run in forms.items():
        h = handler()
        run({**config, "callbacks": [h]})
        out[name] = h
    return out


async def _collect(stream: Any) -> list[Any]:
    return [c async for c in stream]


# --- 1. every call form decides from the run's metadata and tags ---------------------------------
def test_a_free_users_streamed_calls_are_capped_like_invoke() -> None:
    router = ModelRouter(tiers(), HeuristicPolicy(("nano", "frontier")) | UserTierCap({"free": "nano"}))
    for form, h in every_call_form(router, HARD, {"metadata": {"user_tier": "free"}}).items():
        assert [(e.tier, e.extra["route_reason"]) for e in llm_events(h)] == [
            ("nano", "complexity 1.00; user plan 'free' is capped at nano")
        ], form


def test_a_static_tag_routes_streamed_calls_like_invoke() -> None:
    router = ModelRouter(tiers(), StaticPolicy({"classify": "nano"}) | HeuristicPolicy(("nano", "frontier")))
    for form, h in every_call_form(router, HARD, {"tags": ["classify"]}).items():
        assert [(e.tier, e.extra["route_reason"]) for e in llm_events(h)] == [
            ("nano", "tag 'classify' routes to nano")
        ], form


def test_a_downgrade_budget_downgrades_a_streamed_call_of_that_user() -> None:
    budget = Budget(usd="0.01", per="user_day", on_exceed="downgrade", warn_at=0.001, store=MemoryStore())
    enforcer = BudgetEnforcer([budget], alerts=[])
    router = ModelRouter(tiers(), StaticPolicy({}, default="frontier") | BudgetDowngrade(enforcer))
    spender = handler(budgets=enforcer)
    router.invoke("Summarise my account", {"callbacks": [spender], "metadata": {"user_id": "u-heavy"}})
    assert [e.tier for e in llm_events(spender)] == ["frontier"]  # past warn_at from here on
    h = handler()
    list(router.stream("Summarise my account", {"callbacks": [h], "metadata": {"user_id": "u-heavy"}}))
    asyncio.run(
        _collect(router.astream("Summarise my account", {"callbacks": [h], "metadata": {"user_id": "u-heavy"}}))
    )
    assert [e.tier for e in llm_events(h)] == ["nano", "nano"]
    assert all("a downgrade budget passed its threshold" in e.extra["route_reason"] for e in llm_events(h))


# --- 2. a cascade's escalation goes through the constraints -------------------------------------
def cascade_router(policy_tail: Any) -> ModelRouter:
    cascade = CascadePolicy(("nano", "frontier"), validator=lambda text: "refund" in text or "no refund mentioned")
    return ModelRouter(tiers([NOT_SURE], [REFUND]), cascade | policy_tail)


CAPPED_REASON = "cascade: try nano first; no escalation past nano: user plan 'free' is capped at nano"


def test_a_free_user_is_not_escalated_past_the_cap_and_the_route_says_why() -> None:
    router = cascade_router(UserTierCap({"free": "nano"}))
    for form, h in every_call_form(router, "Can I get my money back?", {"metadata": {"user_tier": "free"}}).items():
        assert [(e.tier, e.extra["route_reason"]) for e in llm_events(h)] == [("nano", CAPPED_REASON)], form
        (route,) = [e for e in h.events if e.kind == "route"]
        assert route.extra["reason"] == CAPPED_REASON and route.extra["adjustments"] == [
            "no escalation past nano: user plan 'free' is capped at nano"
        ]
    # an uncapped plan is still escalated
    h = handler()
    assert (
        router.invoke("Can I get my money back?", {"callbacks": [h], "metadata": {"user_tier": "pro"}}).content
        == REFUND
    )
    assert [e.tier for e in llm_events(h)] == ["nano", "frontier"]


def test_a_capped_cascade_keeps_the_cheap_answer_under_ainvoke_and_middleware() -> None:
    router = cascade_router(UserTierCap({"free": "nano"}))
    h = handler()
    out = asyncio.run(router.ainvoke("Can I get my money back?", {"callbacks": [h], "metadata": {"user_tier": "free"}}))
    assert out.content == NOT_SURE and [e.tier for e in llm_events(h)] == ["nano"]
    agent = create_agent(
        ScriptedChatModel(script=["unused"], model=FRONTIER), [], middleware=[RouterMiddleware(router)]
    )
    for run in (agent.invoke, lambda *a: asyncio.run(agent.ainvoke(*a))):
        h = handler()
        out = run(
            {"messages": [HumanMessage("Can I get my money back?")]},
            {"callbacks": [h], "metadata": {"user_tier": "free"}},
        )
        assert out["messages"][-1].content == NOT_SURE
        assert [(e.tier, e.extra["route_reason"]) for e in llm_events(h)] == [("nano", CAPPED_REASON)]


def test_a_downgrade_budget_past_warn_at_stops_a_cascade_escalation() -> None:
    budget = Budget(usd="0.01", per="user_day", on_exceed="downgrade", warn_at=0.001, store=MemoryStore())
    enforcer = BudgetEnforcer([budget], alerts=[])
    router = cascade_router(BudgetDowngrade(enforcer))
    h = handler(budgets=enforcer)
    first = router.invoke("Can I get my money back?", {"callbacks": [h], "metadata": {"user_id": "u-1"}})
    assert first.content == REFUND and [e.tier for e in llm_events(h)] == [
        "nano",
        "frontier",
    ]  # under warn_at: escalated
    # the same rejected nano answer again, now past warn_at: no escalation
    again = router.invoke("Can I get my money back?", {"callbacks": [h], "metadata": {"user_id": "u-1"}})
    assert again.content == NOT_SURE and [e.tier for e in llm_events(h)][2:] == ["nano"]
    assert llm_events(h)[2].extra["route_reason"] == (
        "cascade: try nano first; no escalation past nano: a downgrade budget passed its threshold"
    )


# --- 6. the escalated call's reason --------------------------------------------------------------
@pytest.mark.parametrize("form", ["invoke", "stream", "astream"])
def test_an_escalated_call_records_the_documented_reason(form: str) -> None:
    router = cascade_router(UserTierCap({"free": "nano"}))
    h = every_call_form(router, "Can I get my money back?", {})[form]
    nano, frontier = llm_events(h)
    assert nano.extra["route_reason"] == "cascade: try nano first"
    assert (
        frontier.extra["route_reason"] == "cascade: nano answer rejected (no refund mentioned); escalated to frontier"
    )
