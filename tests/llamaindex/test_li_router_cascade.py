"""RouterLLM escalates a rejected cascade answer (issue 12, defect 4b): on every call form the
validator rejects nano's answer, frontier answers, the answer returned is frontier's and both
calls are billed and recorded as ``llm`` events with their tiers."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from li_fakes import user
from llama_index.core.agent.workflow import FunctionAgent

from agentcost_core.routing import CascadePolicy, StaticPolicy
from agentcost_llamaindex import RouterLLM, instrument
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MINI, BIG = "gpt-4o-mini", "gpt-4o"
NOT_SURE, REFUND = "I am not sure.", "You can get a refund within 30 days."


def refund_router(nano: str = NOT_SURE, frontier: str = REFUND) -> tuple[RouterLLM, dict[str, ScriptedLLM]]:
    tiers = {"nano": ScriptedLLM(model=MINI, script=[nano]), "frontier": ScriptedLLM(model=BIG, script=[frontier])}
    policy = CascadePolicy(("nano", "frontier"), validator=lambda text: "refund" in text or "no refund mentioned")
    return RouterLLM(tiers, policy), tiers


def llm_events(h: Any) -> list[Any]:
    return [e for e in h.events if e.kind == "llm"]


async def _ask(router: RouterLLM, mode: str) -> str:
    msgs = [user("Can I get my money back after 20 days?")]
    if mode == "chat":
        return router.chat(msgs).message.content
    if mode == "achat":
        return (await router.achat(msgs)).message.content
    if mode == "stream_chat":
        return "".join(c.delta or "" for c in router.stream_chat(msgs))
    out = ""
    async for c in await router.astream_chat(msgs):
        out += c.delta or ""
    return out


@pytest.mark.parametrize("mode", ["chat", "achat", "stream_chat", "astream_chat"])
async def test_router_llm_cascade_escalates_a_rejected_answer_to_frontier(mode: str) -> None:
    router, tiers = refund_router()
    with instrument("memory://") as h:
        assert await _ask(router, mode) == REFUND
    assert tiers["nano"].turn == 1 and tiers["frontier"].turn == 1
    calls = llm_events(h)
    assert [(e.tier, e.model) for e in calls] == [("nano", MINI), ("frontier", BIG)]
    assert all(e.priced and e.cost > 0 for e in calls)  # both calls are billed
    assert "no refund mentioned" in calls[1].extra["route_reason"]
    routes = [e for e in h.events if e.kind == "route"]
    assert [r.parent_id for r in routes] == [e.span_id for e in calls]  # each attempt linked to its decision


@pytest.mark.parametrize("mode", ["chat", "astream_chat"])
async def test_router_llm_cascade_keeps_an_accepted_cheap_answer(mode: str) -> None:
    router, tiers = refund_router(nano="Yes, a refund is possible.")
    with instrument("memory://") as h:
        assert await _ask(router, mode) == "Yes, a refund is possible."
    assert tiers["frontier"].turn == 0 and [e.tier for e in llm_events(h)] == ["nano"]


async def test_router_llm_cascade_escalates_completions_too() -> None:
    tiers = {"nano": ScriptedLLM(model=MINI), "frontier": ScriptedLLM(model=BIG)}
    router = RouterLLM(tiers, CascadePolicy(("nano", "frontier"), validator=lambda text: "long enough" in text))
    with instrument("memory://") as h:
        router.complete("short")
        await router.acomplete("short")
        assert "".join(c.delta for c in router.stream_complete("short")) == "short"
    assert [e.tier for e in llm_events(h)] == ["nano", "frontier"] * 3


async def test_function_agent_on_a_cascading_router_returns_the_escalated_answer() -> None:
    router, tiers = refund_router()
    agent = FunctionAgent(tools=[], llm=router)
    with instrument("memory://") as h:
        result = await agent.run("Can I get my money back?")
    assert str(result) == REFUND
    assert [e.tier for e in llm_events(h)] == ["nano", "frontier"]


async def test_a_router_without_a_cascade_calls_one_tier_once() -> None:
    tiers = {"nano": ScriptedLLM(model=MINI, script=[NOT_SURE]), "frontier": ScriptedLLM(model=BIG)}
    router = RouterLLM(tiers, StaticPolicy({}, default="nano"))
    with instrument("memory://") as h:
        assert router.chat([user("hi")]).message.content == NOT_SURE
    assert [e.tier for e in llm_events(h)] == ["nano"] and tiers["frontier"].turn == 0
