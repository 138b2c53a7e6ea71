"""ModelRouter on real LangChain parts: LCEL, create_agent (tools on the routed tier), streaming,
async, the create_agent RouterMiddleware, cascade escalation, budget-aware downgrade, provider
settings stripped across providers, routing savings in the report, and bad input."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

from agentcost_core import Budget, BudgetEnforcer, BudgetExceeded, ConfigurationError, Ledger
from agentcost_core.budgets import MemoryStore
from agentcost_core.routing import BudgetDowngrade, HeuristicPolicy, RoutingDecision, RoutingError, StaticPolicy
from agentcost_core.routing.policy import Policy
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel

NANO, FRONTIER = "gpt-4.1-nano", "gpt-4.1"


def tiers(nano_script: list[Any] | None = None, frontier_script: list[Any] | None = None) -> dict[str, Any]:
    return {
        "nano": ScriptedChatModel(script=nano_script or ["billing"], model=NANO),
        "frontier": ScriptedChatModel(script=frontier_script or ["A careful multi-step analysis."], model=FRONTIER),
    }


def handler() -> CostCallbackHandler:
    return CostCallbackHandler(Ledger("memory://", sync=True))


def calls(h: CostCallbackHandler) -> list[Any]:
    return [e for e in h.events if e.kind == "llm"]


def routes(h: CostCallbackHandler) -> list[Any]:
    return [e for e in h.events if e.kind == "route"]


def heuristic_router(**kw: Any) -> ModelRouter:
    return ModelRouter(tiers(**kw), HeuristicPolicy(("nano", "frontier")))


def test_lcel_chain_routes_by_complexity_and_the_ledger_says_why() -> None:
    h = handler()
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | heuristic_router() | StrOutputParser()
    easy = chain.invoke({"q": "Classify this ticket as billing or shipping: 'I was charged twice'"}, {"callbacks": [h]})
    hard = chain.invoke(
        {"q": "Compare the trade-offs of event sourcing versus CRUD for our billing system and design a "
              "migration plan step by step, explaining why each step is needed."},
        {"callbacks": [h]},
    )  # fmt: skip
    assert easy == "billing" and hard == "A careful multi-step analysis."
    e1, e2 = calls(h)
    assert (e1.tier, e1.model) == ("nano", NANO) and (e2.tier, e2.model) == ("frontier", FRONTIER)
    assert "complexity" in e1.extra["route_reason"] and e2.extra["top_model"] == FRONTIER
    r1, r2 = routes(h)
    assert r1.parent_id == e1.span_id and r2.parent_id == e2.span_id  # each decision linked to its call
    assert r1.extra["policy"] == "heuristic" and r1.extra["decision_us"] >= 0
    assert len(calls(h)) == 2  # the router's own run is not a model call
    assert e1.trace_id == r1.trace_id


def test_static_policy_by_tag_and_default() -> None:
    h = handler()
    router = ModelRouter(tiers(), StaticPolicy({"triage": "nano"}, default="frontier"))
    router.invoke("anything", {"callbacks": [h], "tags": ["triage"]})
    router.invoke("anything", {"callbacks": [h]})
    assert [e.tier for e in calls(h)] == ["nano", "frontier"]
    assert calls(h)[0].extra["route_reason"] == "tag 'triage' routes to nano"


def test_streaming_and_async_go_through_the_router() -> None:
    import asyncio

    h = handler()
    router = heuristic_router(nano_script=["streamed short answer"])
    chunks = [c.content for c in router.stream("Extract the order number: order #4417 shipped", {"callbacks": [h]})]
    assert "".join(chunks) == "streamed short answer"

    async def run() -> tuple[Any, list[str]]:
        out = await router.ainvoke("Translate 'hello' to French", {"callbacks": [h]})
        pieces = [c.content async for c in router.astream("Label the sentiment: great!", {"callbacks": [h]})]
        return out, pieces

    out, pieces = asyncio.run(run())
    assert out.content == "streamed short answer" and "".join(pieces) == "streamed short answer"
    assert [e.tier for e in calls(h)] == ["nano", "nano", "nano"]
    assert all(e.usage.output > 0 and e.priced for e in calls(h))


def test_create_agent_binds_tools_on_every_tier_and_calls_them_on_the_routed_one() -> None:
    from langchain.agents import create_agent

    seen: list[str] = []

    @tool
    def lookup_order(order_id: str) -> str:
        """Look up an order."""
        seen.append(order_id)
        return f"order {order_id}: shipped"

    call = AIMessage("", tool_calls=[{"name": "lookup_order", "args": {"order_id": "4417"}, "id": "t1"}])
    router = ModelRouter(tiers(nano_script=[call, "Order 4417 has shipped."]), StaticPolicy({}, default="nano"))
    h = handler()
    out = create_agent(router, tools=[lookup_order]).invoke({"messages": [HumanMessage("Where is 4417?")]}, {"callbacks": [h]})
    assert seen == ["4417"] and out["messages"][-1].content == "Order 4417 has shipped."
    assert [e.tier for e in calls(h)] == ["nano", "nano"] and all(e.step == "model" for e in calls(h))


def test_router_middleware_swaps_the_model_per_call() -> None:
    from langchain.agents import create_agent

    from agentcost_langchain.middleware.router import RouterMiddleware

    router = ModelRouter(tiers(nano_script=["short"]), HeuristicPolicy(("nano", "frontier")))
    frontier_default = ScriptedChatModel(script=["never used"], model=FRONTIER)
    agent = create_agent(frontier_default, tools=[], middleware=[RouterMiddleware(router)])
    h = handler()
    out = agent.invoke({"messages": [HumanMessage("Classify: refund or exchange? 'I want my money back'")]}, {"callbacks": [h]})
    assert out["messages"][-1].content == "short"
    assert [(e.tier, e.model) for e in calls(h)] == [("nano", NANO)] and len(routes(h)) == 1


def test_cascade_escalates_exactly_once_and_both_calls_are_billed() -> None:
    from agentcost_core.routing.cascade import CascadePolicy

    h = handler()
    policy = CascadePolicy(("nano", "frontier"), validator=lambda text: "refund" in text or "no refund mentioned")
    router = ModelRouter(tiers(nano_script=["I am not sure."], frontier_script=["You can get a refund within 30 days."]), policy)
    out = router.invoke("Can I get my money back after 20 days?", {"callbacks": [h]})
    assert out.content == "You can get a refund within 30 days."
    first, second = calls(h)
    assert (first.tier, second.tier) == ("nano", "frontier") and first.priced and second.priced
    assert second.extra["route_reason"] == "cascade: nano answer rejected (no refund mentioned); escalated to frontier"
    assert len(routes(h)) == 2
    # a validator that always rejects still escalates only once
    h2 = handler()
    stubborn = ModelRouter(tiers(), CascadePolicy(("nano", "frontier"), validator=lambda text: False))
    stubborn.invoke("anything", {"callbacks": [h2]})
    assert [e.tier for e in calls(h2)] == ["nano", "frontier"]


def test_budget_downgrade_moves_calls_to_nano_and_never_exceeds_the_limit() -> None:
    budget = Budget(usd="0.01", per="session", on_exceed="downgrade", warn_at=0.5, store=MemoryStore())
    enforcer = BudgetEnforcer([budget], alerts=[])
    frontier_text = "A detailed answer " * 40
    capped = {
        "nano": ScriptedChatModel(script=["a short answer " * 60], model=NANO, max_tokens=300),
        "frontier": ScriptedChatModel(script=[frontier_text], model=FRONTIER, max_tokens=300),
    }
    router = ModelRouter(capped, StaticPolicy({}, default="frontier") | BudgetDowngrade(enforcer))
    h = CostCallbackHandler(Ledger("memory://", sync=True), budgets=enforcer, session_id="s-1")
    served = []
    with pytest.raises(BudgetExceeded):
        for _ in range(2000):
            router.invoke("Please analyse my account", {"callbacks": [h], "metadata": {"session_id": "s-1"}})
            served.append(calls(h)[-1].tier)
    first_nano = served.index("nano")
    assert set(served[:first_nano]) == {"frontier"} and set(served[first_nano:]) == {"nano"}
    assert sum(e.cost for e in calls(h)) <= Decimal("0.01")
    assert first_nano >= 2 and len(served) - first_nano > 10


def test_cache_control_and_prompt_cache_key_are_stripped_for_other_providers() -> None:
    sent: list[Any] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            sent.append((messages, kw))
            return super()._generate(messages, stop, run_manager, **kw)

    router = ModelRouter({"nano": Recording(script=["ok"], model=NANO), "frontier": Recording(script=["ok"], model=FRONTIER)},
                         StaticPolicy({}, default="nano"))  # fmt: skip
    marked = SystemMessage(content=[{"type": "text", "text": "policy", "cache_control": {"type": "ephemeral"}}])
    router.invoke([marked, HumanMessage("hi")], prompt_cache_key="k1")
    messages, kw = sent[-1]
    assert messages[0].content == [{"type": "text", "text": "policy"}]
    assert "prompt_cache_key" not in kw


def test_report_shows_calls_per_tier_and_routing_savings() -> None:
    h = handler()
    router = heuristic_router()
    for q in ["Extract the date: 'shipped on May 3'", "Classify: billing or tech?", "Explain why and compare the designs"]:
        router.invoke(q, {"callbacks": [h]})
    r = h.ledger.rollup(by="tier")
    by = {row.key[0]: row for row in r.rows}
    assert by["nano"].calls == 2 and by["frontier"].calls == 1
    nano_cost = sum(e.cost for e in calls(h) if e.tier == "nano")
    from agentcost_core import PriceCatalog, Usage

    top = sum(PriceCatalog.default().cost(FRONTIER, e.usage) or 0 for e in calls(h) if e.tier == "nano")
    assert by["nano"].routing_savings == top - nano_cost > 0
    assert r.total.routed_calls == 3 and by["frontier"].routing_savings == 0
    assert isinstance(Usage(), Usage)


def test_bad_input_gives_clear_errors(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigurationError, match="tiers"):
        ModelRouter({}, StaticPolicy({}, default="nano"))
    with pytest.raises(ConfigurationError, match="'mid'"):
        ModelRouter(tiers(), StaticPolicy({"x": "mid"}))
    with pytest.raises(ConfigurationError, match="default tier"):
        ModelRouter(tiers(), HeuristicPolicy(("nano", "frontier")), default="huge")
    with pytest.raises(ConfigurationError, match="thresholds"):
        HeuristicPolicy(("nano", "frontier"), thresholds=[0.3, 0.6])

    class Rogue(Policy):
        def choose(self, request, tiers):  # type: ignore[no-untyped-def]
            return RoutingDecision("gigantic", "rogue", "rogue")

    with pytest.raises(RoutingError, match="gigantic"):
        ModelRouter(tiers(), Rogue()).invoke("hi")
    with caplog.at_level(logging.WARNING, logger="agentcost.routing"):
        router = ModelRouter({"local": ScriptedChatModel(script=["ok"], model="my-local-llm"), **tiers()},
                             StaticPolicy({}, default="local"))  # fmt: skip
    assert "no catalog price" in caplog.text
    h = handler()
    router.invoke("hi", {"callbacks": [h]})
    assert calls(h)[0].tier == "local" and calls(h)[0].cost is None and not calls(h)[0].priced


def test_generate_goes_through_the_router_run_as_a_step_not_a_call() -> None:
    h = handler()
    out = heuristic_router().generate([[HumanMessage("Extract the order id: #4417")]], callbacks=[h])
    assert out.generations[0][0].text == "billing"
    assert [(e.kind, e.tier) for e in h.events] == [("route", "nano"), ("llm", "nano")]


def test_budget_downgrade_sees_the_handlers_default_attribution() -> None:
    budget = Budget(usd="0.01", per="session", on_exceed="downgrade", warn_at=0.5, store=MemoryStore())
    enforcer = BudgetEnforcer([budget], alerts=[])
    capped = {
        "nano": ScriptedChatModel(script=["a short answer " * 60], model=NANO, max_tokens=300),
        "frontier": ScriptedChatModel(script=["A detailed answer " * 40], model=FRONTIER, max_tokens=300),
    }
    router = ModelRouter(capped, StaticPolicy({}, default="frontier") | BudgetDowngrade(enforcer))
    h = CostCallbackHandler(Ledger("memory://", sync=True), budgets=enforcer, session_id="s-defaults")
    served = []
    with pytest.raises(BudgetExceeded):
        for _ in range(2000):
            router.invoke("Please analyse my account", {"callbacks": [h]})  # no session in the run metadata
            served.append(calls(h)[-1].tier)
    assert "nano" in served and served[0] == "frontier"
