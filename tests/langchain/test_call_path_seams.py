"""Regression tests for the seams of the LangChain call path (issue 12): each test is named for
the behaviour it guards, on real LangChain / LangGraph classes with scripted models."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.caches import InMemoryCache
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import interrupt

from agentcost_core import Budget, BudgetExceeded, Ledger, PriceCatalog
from agentcost_core.budgets import MemoryStore, ScopeContext
from agentcost_core.budgets.stores.sqlite import SQLiteStore
from agentcost_core.guards import CircuitBreaker
from agentcost_core.guards.run_guard import Controls, RunGuard
from agentcost_core.halts import CallRefused
from agentcost_langchain import CostCallbackHandler, guard
from agentcost_langchain.middleware import BudgetMiddleware, CircuitBreakerMiddleware
from agentcost_langchain.testing import ScriptedChatModel


def held_and_spent(budget: Budget, **scope: Any) -> tuple[Decimal, Decimal]:
    status = budget.status(**scope)
    return status.held, status.spent


@tool
def approve(action: str) -> str:
    """Ask a human to approve an action."""
    answer = interrupt(f"approve {action}?")
    return f"approved: {answer}"


def _asks_approval() -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[{"name": "approve", "args": {"action": "refund"}, "id": "a1"}])
    return ScriptedChatModel(script=[call, "done"], model="gpt-4o")


# --- defect 2: interrupts are control flow, not tool failures -----------------------------------
def test_an_interrupt_in_a_tool_pauses_the_run_under_the_circuit_breaker_middleware() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    agent = create_agent(_asks_approval(), tools=[approve], middleware=[CircuitBreakerMiddleware(breaker)],
                         checkpointer=InMemorySaver())
    out = agent.invoke({"messages": [HumanMessage("refund me")]}, {"configurable": {"thread_id": "t-int"}})
    assert "__interrupt__" in out  # the run paused for the human
    assert breaker.allow("approve")  # and the breaker did not count it as a failure


def test_an_interrupt_in_a_tool_pauses_a_guarded_run_with_a_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    agent = create_agent(_asks_approval(), tools=[approve], checkpointer=InMemorySaver())
    result = guard(agent, breaker=breaker, ledger="memory://").invoke(
        {"messages": [HumanMessage("refund me")]}, {"configurable": {"thread_id": "t-int-2"}}
    )
    assert result.termination_reason is None
    assert "__interrupt__" in result.output
    assert breaker.allow("approve")


# --- defect 3: the service tier is part of the worst case ---------------------------------------
class PriorityModel(ScriptedChatModel):
    service_tier: str = "priority"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**super()._identifying_params, "service_tier": self.service_tier}

    def _reply(self, messages: Any) -> AIMessage:
        reply = super()._reply(messages)
        reply.response_metadata = {**reply.response_metadata, "service_tier": self.service_tier}
        return reply


def test_priority_tier_calls_never_overspend_a_hard_cap_under_the_budget_middleware(budget_store: Any) -> None:
    cap = Decimal("0.017")
    budget = Budget(usd=cap, per="global_day", on_exceed="block", store=budget_store)
    ledger = Ledger("memory://", sync=True)
    model = PriorityModel(script=["A detailed answer " * 30], model="gpt-4o", max_tokens=400)
    agent = create_agent(model, tools=[], middleware=[BudgetMiddleware(budget, ledger=ledger)])
    barrier = threading.Barrier(10)

    def one() -> None:
        barrier.wait()
        for _ in range(5):
            try:
                agent.invoke({"messages": [HumanMessage("Please analyse my account in depth " * 20)]})
            except BudgetExceeded:
                return

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held, spent = held_and_spent(budget)
    assert held == 0 and Decimal(0) < spent <= cap


# --- defects 5 and 16: unreadable usage is estimated, never a crash or a silent $0 ---------------
class OddUsageModel(ScriptedChatModel):
    odd: Any = None

    def _reply(self, messages: Any) -> AIMessage:
        reply = super()._reply(messages)
        reply.usage_metadata = self.odd  # type: ignore[assignment]
        return reply


@pytest.mark.parametrize(
    "odd",
    [[1, 2], "lots", 7, {"input_tokens": "²", "output_tokens": 3}, {"total_tokens": 50},
     {"input_tokens": None, "output_tokens": None}],
    ids=["list", "string", "int", "digit-like", "total-only", "none-counts"],
)
def test_unreadable_usage_is_estimated_and_releases_the_hold(odd: Any, budget_store: Any) -> None:
    budget = Budget(usd="1", per="global_day", store=budget_store)
    ledger = Ledger("memory://", sync=True)
    handler = CostCallbackHandler(ledger)
    agent = create_agent(OddUsageModel(script=["All done here."], model="gpt-4o", odd=odd), tools=[],
                         middleware=[BudgetMiddleware(budget)])
    out = agent.invoke({"messages": [HumanMessage("hello")]}, {"callbacks": [handler]})
    assert out["messages"][-1].content == "All done here."
    [event] = [e for e in handler.events if e.kind == "llm"]
    assert event.estimated and event.usage.total > 0 and event.cost > 0
    held, spent = held_and_spent(budget)
    assert held == 0 and spent == event.cost  # the budget and the ledger count the same dollars


# --- defect 8: an LLM-cache hit is $0 in the ledger and in the budget -----------------------------
def test_an_llm_cache_hit_costs_nothing_in_the_ledger_or_the_budget(budget_store: Any) -> None:
    budget = Budget(usd="1", per="global_day", store=budget_store)
    handler = CostCallbackHandler(Ledger("memory://", sync=True), budgets=budget)
    model = ScriptedChatModel(script=["cached answer"], model="gpt-4o", cache=InMemoryCache())
    model.invoke("same question", {"callbacks": [handler]})
    _, spent_first = held_and_spent(budget)
    model.invoke("same question", {"callbacks": [handler]})
    first, second = handler.events
    assert second.cache_hit and second.cost == 0 and second.saved == first.cost
    held, spent = held_and_spent(budget)
    assert held == 0 and spent == spent_first == first.cost


# --- defect 9: one catalog prices the ledger and the budgets --------------------------------------
def test_guard_with_a_catalog_reserves_and_settles_a_house_model_at_its_own_price(budget_store: Any) -> None:
    house = PriceCatalog.default().merged({"models": {"house-llm": {"input": "0.10", "output": "0.20", "max_output": 1000}}})
    budget = Budget(usd="0.01", per="global_day", store=budget_store)  # far below the fallback price
    agent = create_agent(ScriptedChatModel(script=["fine"], model="house-llm"), tools=[])
    result = guard(agent, budgets=budget, catalog=house, ledger="memory://").invoke({"messages": [HumanMessage("hi")]})
    assert result.termination_reason is None
    held, spent = held_and_spent(budget)
    assert held == 0 and spent == result.cost > 0


# --- defects 10 and 12: one run guard per run, none kept after it ---------------------------------
def _live_run_guards() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RunGuard))


def test_a_guarded_handler_on_a_model_keeps_no_run_state_after_its_calls() -> None:
    handler = CostCallbackHandler("memory://", budgets=Budget(usd="10", store=MemoryStore()))
    model = ScriptedChatModel(script=["ok"], model="gpt-4o", callbacks=[handler])
    prompt_chain = (lambda x: x) | model  # the handler sees the model's runs, not the chain's
    before = _live_run_guards()
    for i in range(200):
        prompt_chain.invoke(f"call {i}")
    assert len(handler.events) == 200
    assert _live_run_guards() - before <= 1


def test_concurrent_first_calls_of_one_run_share_one_run_guard() -> None:
    started: list[RunGuard] = []

    class Counting(Controls):
        def start(self, ctx: ScopeContext) -> RunGuard:
            run = super().start(ctx)
            started.append(run)
            return run

    controls = Counting(budgets=Budget(usd="10", store=MemoryStore()))
    handler = CostCallbackHandler("memory://", controls=controls)
    model = ScriptedChatModel(script=["ok"], model="gpt-4o")
    from langchain_core.runnables import RunnableLambda

    barrier = threading.Barrier(8)

    def fan_out(x: str) -> list[Any]:
        def one(i: int) -> None:
            barrier.wait()
            model.invoke(f"{x} {i}")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        from langchain_core.runnables.config import ContextThreadPoolExecutor

        with ContextThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(8)))
        return threads

    RunnableLambda(fan_out).invoke("q", {"callbacks": [handler]})
    assert len([e for e in handler.events if e.kind == "llm"]) == 8
    assert len(started) == 1


# --- defect 13: guard() leaves the user's agent as it was -----------------------------------------
def test_guard_does_not_change_the_users_graph() -> None:
    calls: list[str] = []

    @tool
    def flaky(q: str) -> str:
        """Always fails."""
        calls.append(q)
        raise RuntimeError("upstream 503")

    call = AIMessage(content="", tool_calls=[{"name": "flaky", "args": {"q": "x"}, "id": "f"}])
    agent = create_agent(ScriptedChatModel(script=[call, "gave up"], model="gpt-4o"), tools=[flaky])
    tool_node = agent.nodes["tools"].bound
    tools_before = dict(tool_node._tools_by_name)  # noqa: SLF001 - read only, to compare identities
    guarded = guard(agent, breaker=CircuitBreaker(failure_threshold=1), ledger="memory://")
    guarded.invoke({"messages": [HumanMessage("go")]})
    assert tool_node._tools_by_name == tools_before  # noqa: SLF001
    assert agent.nodes["tools"].bound is tool_node
    with pytest.raises(Exception, match="upstream 503"):  # unguarded, the error propagates as before
        agent.invoke({"messages": [HumanMessage("go")]})


# --- defect 15: the worst case counts images and the model's maximum output -----------------------
def test_image_parts_are_part_of_the_reservation() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    text_only = [HumanMessage(content=[{"type": "text", "text": "what is this?"}])]
    with_images = [HumanMessage(content=[{"type": "text", "text": "what is this?"}, image, image, image])]
    model = ScriptedChatModel(script=["a cat"], model="gpt-4o", max_tokens=100)
    # gpt-4o: 100 output tokens = $0.001; three high-detail images ~4,335 tokens = ~$0.011
    budget = Budget(usd="0.005", per="request", store=MemoryStore())
    handler = CostCallbackHandler("memory://", budgets=budget)
    model.invoke(text_only, {"callbacks": [handler]})
    with pytest.raises(BudgetExceeded):
        model.invoke(with_images, {"callbacks": [handler]})


def test_a_reasoning_model_without_max_tokens_reserves_its_maximum_output() -> None:
    model = ScriptedChatModel(script=["thought hard"], model="o3")  # no max_tokens: up to 100,000 out
    budget = Budget(usd="0.20", per="request", store=MemoryStore())  # 4,096 tokens would fit; 100,000 do not
    handler = CostCallbackHandler("memory://", budgets=budget)
    with pytest.raises(BudgetExceeded):
        model.invoke("prove it", {"callbacks": [handler]})
    capped = ScriptedChatModel(script=["thought hard"], model="o3", max_tokens=4096)
    capped.invoke("prove it", {"callbacks": [handler]})


# --- defect 16: an internal error before the call never lets it through unreserved ----------------
class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_internal_error_before_the_call_refuses_it_under_a_hard_budget() -> None:
    model = ScriptedChatModel(script=["ok"], model="gpt-4o")
    handler = CostCallbackHandler("memory://", budgets=Budget(usd="1", store=MemoryStore()))
    with pytest.raises(CallRefused, match="refused"):
        model.invoke("hi", {"callbacks": [handler], "metadata": {"user_id": Unprintable()}})
    lenient = CostCallbackHandler(
        "memory://", controls=Controls(budgets=Budget(usd="1", store=MemoryStore()), on_internal_error="allow")
    )
    assert model.invoke("hi", {"callbacks": [lenient], "metadata": {"user_id": Unprintable()}}).content == "ok"


# --- defect 17: store I/O never runs on the event loop ----------------------------------------------
class GatedStore(SQLiteStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.go = threading.Event()

    def reserve(self, claims: Any, now: float) -> Any:
        self.entered.set()
        assert self.go.wait(10)
        return super().reserve(claims, now)


async def test_a_handler_with_a_shared_budget_store_keeps_the_event_loop_running(tmp_path: Any) -> None:
    store = GatedStore(f"sqlite:///{tmp_path}/budgets.db")
    handler = CostCallbackHandler("memory://", budgets=Budget(usd="1", store=store))
    model = ScriptedChatModel(script=["ok"], model="gpt-4o")
    call = asyncio.create_task(model.ainvoke("hi", {"callbacks": [handler]}))
    ticks = 0
    while not store.entered.is_set():
        await asyncio.sleep(0)
    for _ in range(50):  # the reservation is blocked in the store: the loop still runs other tasks
        await asyncio.sleep(0)
        ticks += 1
    store.go.set()
    assert (await call).content == "ok"
    assert ticks == 50


# --- defect 14: a cancelled call leaves nothing held ------------------------------------------------
class Hanging(ScriptedChatModel):
    """A model whose async call never returns until cancelled."""

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate`` while letting the loop and worker threads run, up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


async def test_a_cancelled_ainvoke_releases_its_reservation_in_process() -> None:
    budget = Budget(usd="1", per="global_day", store=MemoryStore())
    handler = CostCallbackHandler("memory://", budgets=budget)
    task = asyncio.create_task(Hanging(model="gpt-4o").ainvoke("hi", {"callbacks": [handler]}))
    await _until(lambda: held_and_spent(budget)[0] > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: held_and_spent(budget)[0] == 0)
    assert held_and_spent(budget) == (0, 0)


async def test_a_cancelled_ainvoke_on_a_shared_store_is_released_after_the_call_timeout(tmp_path: Any) -> None:
    now = [1000.0]
    budget = Budget(usd="1", per="global_day", store=f"sqlite:///{tmp_path}/b.db")
    handler = CostCallbackHandler("memory://", budgets=budget, call_timeout=60, clock=lambda: now[0])
    task = asyncio.create_task(Hanging(model="gpt-4o").ainvoke("hi", {"callbacks": [handler]}))
    await _until(lambda: handler.pending_calls == 1)  # started: its worst case is held
    assert held_and_spent(budget)[0] > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handler.pending_calls == 1  # LangChain never reports the cancelled call's end
    now[0] += 61  # LangChain never reports the cancelled call's end: the next call gives it up
    await ScriptedChatModel(script=["ok"], model="gpt-4o").ainvoke("next", {"callbacks": [handler]})
    held, spent = held_and_spent(budget)
    assert held == 0 and spent == handler.events[-1].cost


# --- the worst case under load: 64 threads on one hard cap, every store -----------------------------
@pytest.mark.parametrize("kind", ["images", "reasoning-without-max-tokens"])
def test_64_threads_never_overspend_one_hard_cap(kind: str, budget_store: Any) -> None:
    cap = Decimal("1")
    budget = Budget(usd=cap, per="global_day", on_exceed="block", store=budget_store)
    handler = CostCallbackHandler(Ledger("memory://", sync=True), budgets=budget)
    if kind == "images":
        image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        prompt: Any = [HumanMessage(content=[{"type": "text", "text": "describe"}, image, image])]

        class Billed(ScriptedChatModel):  # the provider bills the image tokens it was sent
            def _usage(self, messages: Any, reply: Any) -> dict[str, Any]:
                usage = super()._usage(messages, reply)
                usage["input_tokens"] += 2 * 1_445
                return {**usage, "total_tokens": usage["input_tokens"] + usage["output_tokens"]}

        model: ScriptedChatModel = Billed(script=["a cat " * 200], model="gpt-4o", max_tokens=500)
    else:
        prompt = "prove the theorem"

        class Reasoner(ScriptedChatModel):  # no max_tokens: it thinks for 10,000 tokens
            def _usage(self, messages: Any, reply: Any) -> dict[str, Any]:
                usage = super()._usage(messages, reply)
                return {**usage, "output_tokens": 10_000, "total_tokens": usage["input_tokens"] + 10_000,
                        "output_token_details": {"reasoning": 9_900}}

        model = Reasoner(script=["QED"], model="o4-mini")
    barrier = threading.Barrier(64)
    refused = []

    def one() -> None:
        barrier.wait()
        for _ in range(3):
            try:
                model.invoke(prompt, {"callbacks": [handler]})
            except BudgetExceeded:
                refused.append(1)
                return

    threads = [threading.Thread(target=one) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held, spent = held_and_spent(budget)
    assert refused and held == 0 and spent <= cap
    assert spent == sum(e.cost for e in handler.events if e.kind == "llm")


def test_attaching_controls_again_never_rewrites_where_their_events_go() -> None:
    first, second = Ledger("memory://", sync=True), Ledger("memory://", sync=True)
    budget = Budget(usd="0.000001", per="request", on_exceed="block", store=MemoryStore())
    controls = Controls(budgets=budget)
    model = ScriptedChatModel(script=["ok"], model="gpt-4o", max_tokens=50)
    for ledger in (first, second):  # two handlers (e.g. two guard() invocations) share the controls
        with pytest.raises(BudgetExceeded):
            model.invoke("hi", {"callbacks": [CostCallbackHandler(ledger, controls=controls)]})
    assert [e.kind for e in first.events() if e.kind.startswith("budget")] == ["budget.exceeded"] * 2
    assert [e.kind for e in second.events() if e.kind != "llm"] == []


def test_a_guarded_agent_streams_the_agents_chunks_then_its_result() -> None:
    from agentcost_core.guards.result import GuardedResult

    @tool
    def look(action: str) -> str:
        """Look something up."""
        return "found it"

    call = AIMessage(content="", tool_calls=[{"name": "look", "args": {"action": "x"}, "id": "s1"}])
    agent = create_agent(ScriptedChatModel(script=[call, "Here it is."], model="gpt-4o"), tools=[look])
    items = list(guard(agent, budgets=Budget(usd="1", store=MemoryStore()), ledger="memory://").stream(
        {"messages": [HumanMessage("find it")]}, stream_mode="updates"))
    *chunks, result = items
    assert len(chunks) >= 3 and all(isinstance(c, dict) for c in chunks)  # model, tools, model: as they ran
    assert isinstance(result, GuardedResult) and result.termination_reason is None
    assert result.cost > 0 and len([e for e in result.events if e.kind == "llm"]) == 2
