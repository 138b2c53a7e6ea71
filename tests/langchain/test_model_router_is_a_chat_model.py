"""ModelRouter is a real LangChain chat model (issue 12, build point 4): its calls are LangChain
model runs (the tier's call a child run of the router's), ``cache=`` / ``set_llm_cache`` apply,
``bind_tools`` binds on every tier and ``with_structured_output`` works; a cascade escalates on
invoke and stream, sync and async (defect 4b)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from agentcost_core import Ledger
from agentcost_core.routing import CascadePolicy, StaticPolicy
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel

NANO, FRONTIER = "gpt-4.1-nano", "gpt-4.1"


class ToolRecording(ScriptedChatModel):
    """A scripted model that remembers the tools bound on it."""

    bound: list[str] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolRecording:  # type: ignore[override]
        self.bound.extend(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self


class ModelRuns(BaseCallbackHandler):
    """Chat-model runs as LangChain reports them: (run id, parent run id, ls_provider, metadata)."""

    def __init__(self) -> None:
        self.runs: list[tuple[UUID, UUID | None, str | None, dict[str, Any]]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        md = metadata or {}
        self.runs.append((run_id, parent_run_id, md.get("ls_provider"), md))


def two_tiers(nano: list[Any] | None = None, frontier: list[Any] | None = None) -> dict[str, Any]:
    return {
        "nano": ToolRecording(script=nano or ["nano answer"], model=NANO),
        "frontier": ToolRecording(script=frontier or ["frontier answer"], model=FRONTIER),
    }


def llm_tiers(h: CostCallbackHandler) -> list[str | None]:
    return [e.tier for e in h.events if e.kind == "llm"]


def test_the_tier_call_is_a_child_run_of_the_routers_model_run_on_invoke_and_stream() -> None:
    router = ModelRouter(two_tiers(), StaticPolicy({}, default="nano"))
    for use in ("invoke", "stream"):
        runs = ModelRuns()
        config = {"callbacks": [runs], "metadata": {"user_id": "u-1"}}
        if use == "invoke":
            router.invoke("hi", config)
        else:
            assert "".join(c.content for c in router.stream("hi", config)) == "nano answer"
        (outer, _, outer_provider, _), (_, parent, inner_provider, inner_md) = runs.runs
        assert outer_provider == "agentcost-router" and inner_provider == "openai"
        assert parent == outer  # nested under the router's run
        assert inner_md["user_id"] == "u-1" and inner_md["agentcost_route"]["tier"] == "nano"


def test_model_router_answers_from_its_llm_cache_without_calling_a_tier() -> None:
    router = ModelRouter(two_tiers(nano=["first", "second"]), StaticPolicy({}, default="nano"), cache=InMemoryCache())
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    assert router.invoke("What is our refund window?", {"callbacks": [h]}).content == "first"
    assert router.invoke("What is our refund window?", {"callbacks": [h]}).content == "first"
    first, hit = [e for e in h.events if e.kind == "llm"]
    assert first.tier == "nano" and not first.cache_hit
    assert hit.cache_hit and hit.cost == 0 and hit.saved == first.cost  # from the cache: recorded at $0
    assert hit.model == first.model


def test_set_llm_cache_applies_to_the_model_router() -> None:
    router = ModelRouter(two_tiers(nano=["first", "second"]), StaticPolicy({}, default="nano"))
    set_llm_cache(InMemoryCache())
    try:
        assert router.invoke("same question").content == "first"
        assert router.invoke("same question").content == "first"
        assert router.invoke("another question").content == "second"
    finally:
        set_llm_cache(None)


def test_bind_tools_binds_on_every_tier() -> None:
    def lookup_order(order_id: str) -> str:
        """Look up an order."""
        return order_id

    tiers = two_tiers()
    ModelRouter(tiers, StaticPolicy({}, default="nano")).bind_tools([lookup_order])
    assert tiers["nano"].bound == ["lookup_order"] and tiers["frontier"].bound == ["lookup_order"]


def test_with_structured_output_parses_the_chosen_tiers_answer() -> None:
    class Refund(BaseModel):
        days: int

    call = AIMessage("", tool_calls=[{"name": "Refund", "args": {"days": 30}, "id": "c1"}])
    router = ModelRouter(two_tiers(nano=[call]), StaticPolicy({}, default="nano"))
    assert router.with_structured_output(Refund).invoke("How many days?") == Refund(days=30)


def refund_router() -> ModelRouter:
    policy = CascadePolicy(("nano", "frontier"), validator=lambda text: "refund" in text or "no refund mentioned")
    return ModelRouter(two_tiers(nano=["I am not sure."], frontier=["A refund is possible within 30 days."]), policy)


def test_model_router_cascade_escalates_a_rejected_streamed_answer() -> None:
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    text = "".join(c.content for c in refund_router().stream("Money back?", {"callbacks": [h]}))
    assert text == "A refund is possible within 30 days."  # the rejected answer is not streamed
    assert llm_tiers(h) == ["nano", "frontier"]
    assert all(e.priced and e.cost > 0 for e in h.events if e.kind == "llm")


def test_model_router_cascade_escalates_under_async_invoke_and_stream() -> None:
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    router = refund_router()

    async def run() -> tuple[str, str]:
        out = await router.ainvoke("Money back?", {"callbacks": [h]})
        streamed = "".join([c.content async for c in router.astream("Money back?", {"callbacks": [h]})])
        return out.content, streamed

    assert asyncio.run(run()) == ("A refund is possible within 30 days.",) * 2
    assert llm_tiers(h) == ["nano", "frontier"] * 2


def test_an_agent_on_the_router_streams_each_token_once_in_messages_mode() -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    router = ModelRouter(two_tiers(nano=["hello there friend"]), StaticPolicy({}, default="nano"))
    agent = create_agent(router, tools=[])
    pieces = [m.content for m, _ in agent.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages")]
    assert "".join(pieces) == "hello there friend"


def test_an_agent_on_a_cascading_router_streams_only_the_answer_that_stands() -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    h = CostCallbackHandler(Ledger("memory://", sync=True))
    agent = create_agent(refund_router(), tools=[])
    stream = agent.stream({"messages": [HumanMessage("Money back?")]}, {"callbacks": [h]}, stream_mode="messages")
    assert "".join(m.content for m, _ in stream) == "A refund is possible within 30 days."
    assert llm_tiers(h) == ["nano", "frontier"]


def test_a_router_as_a_tier_of_a_router_records_the_inner_tiers_call() -> None:
    inner = ModelRouter(two_tiers(), StaticPolicy({}, default="frontier"))
    outer = ModelRouter({"cheap": ScriptedChatModel(script=["cheap"], model=NANO), "inner": inner},
                        StaticPolicy({}, default="inner"))  # fmt: skip
    h = CostCallbackHandler(Ledger("memory://", sync=True))
    runs = ModelRuns()
    assert "".join(c.content for c in outer.stream("hi", {"callbacks": [h, runs]})) == "frontier answer"
    ids = [r[0] for r in runs.runs]
    assert [r[1] for r in runs.runs][1:] == ids[:-1]  # outer router > inner router > tier, each nested
    assert [(e.model, e.tier) for e in h.events if e.kind == "llm"] == [(FRONTIER, "frontier")]
