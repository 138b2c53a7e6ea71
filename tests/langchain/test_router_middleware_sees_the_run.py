"""RouterMiddleware decides with the run's metadata, tags and scope (issue 12, defect 4a) and
escalates a rejected cascade answer (defect 4b), on real ``create_agent`` agents with scripted
chat models."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage

from agentcost_core import Budget, BudgetEnforcer, Ledger
from agentcost_core.budgets import MemoryStore
from agentcost_core.routing import BudgetDowngrade, CascadePolicy, StaticPolicy, UserTierCap
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.middleware import RouterMiddleware
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel

NANO, FRONTIER = "gpt-4.1-nano", "gpt-4.1"


def tiers(nano: list[Any] | None = None, frontier: list[Any] | None = None) -> dict[str, Any]:
    return {
        "nano": ScriptedChatModel(script=nano or ["nano answer"], model=NANO, max_tokens=300),
        "frontier": ScriptedChatModel(script=frontier or ["frontier answer"], model=FRONTIER, max_tokens=300),
    }


def agent_with(policy: Any, **scripts: Any) -> Any:
    router = ModelRouter(tiers(**scripts), policy)
    default = ScriptedChatModel(script=["the agent's own model answered"], model=FRONTIER)
    return create_agent(default, tools=[], middleware=[RouterMiddleware(router)])


def llm_tiers(h: CostCallbackHandler) -> list[str | None]:
    return [e.tier for e in h.events if e.kind == "llm"]


def ask(agent: Any, h: CostCallbackHandler, **config: Any) -> str:
    out = agent.invoke({"messages": [HumanMessage("Summarise my account activity")]}, {"callbacks": [h], **config})
    return out["messages"][-1].content


def test_user_tier_cap_caps_a_free_users_call_from_the_run_metadata() -> None:
    agent = agent_with(StaticPolicy({}, default="frontier") | UserTierCap({"free": "nano"}))
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    assert ask(agent, h, metadata={"user_tier": "free"}) == "nano answer"
    assert ask(agent, h, metadata={"user_tier": "enterprise"}) == "frontier answer"
    assert llm_tiers(h) == ["nano", "frontier"]
    capped = [e for e in h.events if e.kind == "llm"][0]
    assert "user plan 'free' is capped at nano" in capped.extra["route_reason"]


def test_static_policy_routes_a_middleware_call_by_a_run_tag() -> None:
    agent = agent_with(StaticPolicy({"triage": "nano"}, default="frontier"))
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    assert ask(agent, h, tags=["triage"]) == "nano answer"
    assert ask(agent, h) == "frontier answer"
    assert llm_tiers(h) == ["nano", "frontier"]
    assert [e for e in h.events if e.kind == "llm"][0].extra["route_reason"] == "tag 'triage' routes to nano"


def test_budget_downgrade_in_middleware_moves_a_users_calls_to_nano_past_warn_at() -> None:
    budget = Budget(usd="0.01", per="user_day", on_exceed="downgrade", warn_at=0.25, store=MemoryStore())
    enforcer = BudgetEnforcer([budget], alerts=[])
    agent = agent_with(
        StaticPolicy({}, default="frontier") | BudgetDowngrade(enforcer),
        frontier=["A detailed answer " * 40],
    )
    h = CostCallbackHandler(Ledger("memory://", sync=True), budgets=enforcer)
    served = []
    for _ in range(6):
        ask(agent, h, metadata={"user_id": "u-heavy"})
        served.append(llm_tiers(h)[-1])
    first_nano = served.index("nano")
    assert first_nano >= 1 and set(served[:first_nano]) == {"frontier"} and set(served[first_nano:]) == {"nano"}
    # the downgrade is per scope: another user still gets the frontier tier
    ask(agent, h, metadata={"user_id": "u-light"})
    assert llm_tiers(h)[-1] == "frontier"
    downgraded = [e for e in h.events if e.kind == "llm"][first_nano]
    assert "a downgrade budget passed its threshold" in downgraded.extra["route_reason"]


def refund_cascade() -> CascadePolicy:
    return CascadePolicy(("nano", "frontier"), validator=lambda text: "refund" in text or "no refund mentioned")


def test_middleware_cascade_escalates_a_rejected_answer_to_frontier() -> None:
    agent = agent_with(refund_cascade(), nano=["I am not sure."], frontier=["You can get a refund within 30 days."])
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    out = agent.invoke({"messages": [HumanMessage("Can I get my money back?")]}, {"callbacks": [h]})
    answers = [m.content for m in out["messages"] if isinstance(m, AIMessage)]
    assert answers == ["You can get a refund within 30 days."]  # the rejected answer is not kept
    calls = [e for e in h.events if e.kind == "llm"]
    assert [(e.tier, e.model) for e in calls] == [("nano", NANO), ("frontier", FRONTIER)]
    assert all(e.priced and e.cost > 0 for e in calls)  # both calls are billed
    assert "no refund mentioned" in calls[1].extra["route_reason"]
    assert len([e for e in h.events if e.kind == "route"]) == 2


def test_middleware_cascade_escalates_under_an_async_agent() -> None:
    agent = agent_with(refund_cascade(), nano=["I am not sure."], frontier=["A refund is possible."])
    h = CostCallbackHandler(Ledger("memory://", sync=True))

    async def run() -> Any:
        return await agent.ainvoke({"messages": [HumanMessage("Refund?")]}, {"callbacks": [h]})

    out = asyncio.run(run())
    assert out["messages"][-1].content == "A refund is possible."
    assert llm_tiers(h) == ["nano", "frontier"]


def test_middleware_cascade_keeps_an_accepted_cheap_answer() -> None:
    agent = agent_with(refund_cascade(), nano=["Yes, a refund is possible."])
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    assert ask(agent, h) == "Yes, a refund is possible."
    assert llm_tiers(h) == ["nano"]
