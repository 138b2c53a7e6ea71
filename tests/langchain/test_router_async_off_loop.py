"""ModelRouter and RouterMiddleware never block the event loop to decide: a ``SemanticPolicy``
whose embeddings do blocking I/O, or a ``BudgetDowngrade`` over a shared budget store, decides in a
worker thread under ``ainvoke`` / ``astream`` / an async agent; cheap policies decide inline, on
the loop's own thread (no thread hop). The blocking calls wait on a gate that only a heartbeat on
the running loop opens (``tests/loop_gate.py``)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain.agents import create_agent
from langchain_core.embeddings import Embeddings
from langchain_core.messages import HumanMessage
from loop_gate import Gate, run_watched

from agentcost_core import Budget, BudgetEnforcer, Ledger
from agentcost_core.budgets import CounterStore, MemoryStore
from agentcost_core.routing import BudgetDowngrade, HeuristicPolicy, Policy, SemanticPolicy
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.middleware import RouterMiddleware
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel

NANO, FRONTIER = "gpt-4.1-nano", "gpt-4.1"


def tiers() -> dict[str, Any]:
    return {
        "nano": ScriptedChatModel(script=["nano answer"], model=NANO),
        "frontier": ScriptedChatModel(script=["frontier answer"], model=FRONTIER),
    }


def vector(text: str) -> list[float]:
    return [float("refund" in text), float("code" in text), 1.0]


class NetworkEmbeddings(Embeddings):
    """Stands for OpenAIEmbeddings: the sync methods block (on the gate) like an HTTP call."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.gate.block()
        return [vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.gate.block()
        return vector(text)


def semantic_router(gate: Gate) -> ModelRouter:
    policy = SemanticPolicy({"nano": ["refund status"], "frontier": ["write code"]}, NetworkEmbeddings(gate))
    return ModelRouter(tiers(), policy)


def handler() -> CostCallbackHandler:
    return CostCallbackHandler(Ledger("memory://", sync=True))


def tiers_of(h: CostCallbackHandler) -> list[str | None]:
    return [e.tier for e in h.events if e.kind == "llm"]


async def test_semantic_policy_embeds_off_the_event_loop_under_ainvoke() -> None:
    gate, h = Gate(), handler()
    out = await run_watched(gate, semantic_router(gate).ainvoke("where is my refund", {"callbacks": [h]}))
    assert out.content == "nano answer" and tiers_of(h) == ["nano"]
    assert len(gate.released) == 2 and gate.loop_kept_running  # the examples, then the request


async def test_semantic_policy_embeds_off_the_event_loop_under_astream() -> None:
    gate, h = Gate(), handler()
    router = semantic_router(gate)

    async def stream() -> str:
        return "".join([c.content async for c in router.astream("please write code", {"callbacks": [h]})])

    assert await run_watched(gate, stream()) == "frontier answer" and tiers_of(h) == ["frontier"]
    assert gate.loop_kept_running


async def test_semantic_policy_embeds_off_the_event_loop_in_an_async_agent_with_router_middleware() -> None:
    gate, h = Gate(), handler()
    agent = create_agent(ScriptedChatModel(script=["unused"], model=FRONTIER), [],
                         middleware=[RouterMiddleware(semantic_router(gate))])  # fmt: skip
    out = await run_watched(gate, agent.ainvoke({"messages": [HumanMessage("where is my refund")]}, {"callbacks": [h]}))
    assert out["messages"][-1].content == "nano answer" and tiers_of(h) == ["nano"]
    assert gate.loop_kept_running


class StalledStore(CounterStore):
    """A shared store (think Redis) whose reads block on the gate; counters kept in memory."""

    shared = True

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.memory = MemoryStore()

    def reserve(self, claims: Any, now: float, lease: Any = None) -> Any:
        return self.memory.reserve(claims, now, lease)

    def settle(self, claims: Any, actual: Any, lease_id: str | None = None) -> Any:
        return self.memory.settle(claims, actual, lease_id)

    def read(self, key: str, now: float | None = None) -> Any:
        self.gate.block()
        return self.memory.read(key, now)

    def reset(self, key: str | None = None) -> None:
        self.memory.reset(key)


async def test_budget_downgrade_reads_a_shared_store_off_the_event_loop() -> None:
    gate, h = Gate(), handler()
    budget = Budget(usd=1, per="user_day", on_exceed="downgrade", store=StalledStore(gate))
    router = ModelRouter(
        tiers(), HeuristicPolicy(("nano", "frontier")) | BudgetDowngrade(BudgetEnforcer([budget], alerts=[]))
    )
    out = await run_watched(gate, router.ainvoke("hello", {"callbacks": [h], "metadata": {"user_id": "u1"}}))
    assert out.content == "nano answer" and gate.loop_kept_running and len(gate.released) == 1


class WhereDecided(Policy):
    """A constraint that notes the thread each decision ran in (and changes nothing)."""

    constraint = True

    def __init__(self, blocking: bool) -> None:
        self.blocking = blocking
        self.threads: list[int] = []

    def adjust(self, decision: Any, request: Any, tiers: Any) -> Any:
        self.threads.append(threading.get_ident())
        return decision


async def test_cheap_policies_decide_on_the_event_loop_and_blocking_ones_in_a_worker() -> None:
    loop_thread = threading.get_ident()
    cheap, blocking = WhereDecided(blocking=False), WhereDecided(blocking=True)
    for where in (cheap, blocking):
        router = ModelRouter(tiers(), HeuristicPolicy(("nano", "frontier")) | where)
        await router.ainvoke("hello")
        _ = [c async for c in router.astream("hello")]
        agent = create_agent(
            ScriptedChatModel(script=["unused"], model=FRONTIER), [], middleware=[RouterMiddleware(router)]
        )
        await agent.ainvoke({"messages": [HumanMessage("hello")]})
    assert cheap.threads == [loop_thread] * 3
    assert len(blocking.threads) == 3 and loop_thread not in blocking.threads


def test_sync_calls_decide_in_the_calling_thread() -> None:
    blocking = WhereDecided(blocking=True)
    router = ModelRouter(tiers(), HeuristicPolicy(("nano", "frontier")) | blocking)
    router.invoke("hello")
    list(router.stream("hello"))
    assert blocking.threads == [threading.get_ident()] * 2
    asyncio.run(router.ainvoke("hello"))
    assert blocking.threads[-1] != threading.get_ident()


def test_a_semantic_policy_over_in_process_fake_embeddings_decides_inline() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    routes = {"nano": ["refund status"], "frontier": ["write code"]}
    assert not SemanticPolicy(routes, DeterministicFakeEmbedding(size=8)).blocking
    assert SemanticPolicy(routes, NetworkEmbeddings(Gate())).blocking
