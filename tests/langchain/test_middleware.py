"""The ``create_agent`` guard middlewares on real agents: budget wrap-up, stuck nudge then halt,
kill switch and circuit breakers, sync and async."""

from __future__ import annotations

import time

from decimal import Decimal
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from agentcost_core.budgets import ScopeContext
from agentcost_core import Budget, BudgetExceeded, Ledger, TerminationReason
from agentcost_core.budgets import MemoryStore
from agentcost_core.guards import CircuitBreaker, KillSwitch, StuckDetector
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.middleware import (
    BudgetMiddleware,
    CircuitBreakerMiddleware,
    KillSwitchMiddleware,
    StuckMiddleware,
    termination_of,
)
from agentcost_langchain.testing import ScriptedChatModel

CALLS: list[Any] = []


@tool
def search(query: str) -> str:
    """Search the order database."""
    CALLS.append(query)
    return f"results for {query}: order #4417 shipped Tuesday"


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def looping_model(n: int = 200, model: str = "gpt-4o") -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": "order 4417"}, "id": "c"}])
    return ScriptedChatModel(script=[call] * n + ["done"], model=model, max_tokens=256)


def varied_model(n: int = 200, model: str = "gpt-4o") -> ScriptedChatModel:
    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": f"order {i}"}, "id": f"c{i}"}])
        for i in range(n)
    ]
    return ScriptedChatModel(script=[*script, "done"], model=model, max_tokens=256)


def test_budget_wrap_up_ends_with_a_final_answer_within_the_cap() -> None:
    ledger = Ledger("memory://", sync=True)
    handler = CostCallbackHandler(ledger)
    mw = BudgetMiddleware(Budget(usd="0.05", per="session", on_exceed="wrap_up", store=MemoryStore()), ledger=ledger)
    agent = create_agent(varied_model(), tools=[search], middleware=[mw])
    out = agent.invoke(
        {"messages": [HumanMessage("Where is my order?")]},
        {"callbacks": [handler], "metadata": {"session_id": "wrap-1"}, "recursion_limit": 500},
    )
    final = out["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert termination_of(out["messages"]) is TerminationReason.BUDGET
    assert "order #4417" in final.content and "budget" in final.content
    assert Decimal(0) < handler.total_cost <= Decimal("0.05")
    assert len(CALLS) >= 3  # it did real work before the budget ran out
    assert [e.kind for e in ledger.events() if e.kind.startswith("budget.")][-1] == "budget.exceeded"


def test_block_budget_raises_from_the_middleware() -> None:
    mw = BudgetMiddleware(Budget(usd="0.01", on_exceed="block", store=MemoryStore()))
    agent = create_agent(varied_model(), tools=[search], middleware=[mw])
    with pytest.raises(BudgetExceeded):
        agent.invoke({"messages": [HumanMessage("go")]}, {"recursion_limit": 500})


async def test_budget_wrap_up_async() -> None:
    handler = CostCallbackHandler("memory://")
    mw = BudgetMiddleware(Budget(usd="0.03", on_exceed="wrap_up", store=MemoryStore()), session_id="async-1")
    agent = create_agent(varied_model(), tools=[search], middleware=[mw])
    out = await agent.ainvoke({"messages": [HumanMessage("go")]}, {"callbacks": [handler], "recursion_limit": 500})
    assert termination_of(out["messages"]) is TerminationReason.BUDGET
    assert handler.total_cost <= Decimal("0.03")


def test_stuck_middleware_nudges_once_then_ends_gracefully() -> None:
    seen: list[list[Any]] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            seen.append(list(messages))
            return super()._generate(messages, stop, run_manager, **kw)

    base = looping_model(30, "gpt-4o-mini")
    model = Recording(script=base.script, model=base.model, max_tokens=256)
    agent = create_agent(model, tools=[search], middleware=[StuckMiddleware(StuckDetector())])
    out = agent.invoke({"messages": [HumanMessage("Where is my order?")]}, {"recursion_limit": 100})
    assert termination_of(out["messages"]) is TerminationReason.REPEATED_TOOL
    assert len(CALLS) <= 7
    nudges = [m for msgs in seen for m in msgs[-1:] if isinstance(m, HumanMessage) and "[agentcost]" in m.content]
    assert len(nudges) == 1 and "repeating" in nudges[0].content
    assert "order #4417" in out["messages"][-1].content


def test_stuck_middleware_leaves_productive_agents_alone() -> None:
    agent = create_agent(varied_model(12, "gpt-4o-mini"), tools=[search], middleware=[StuckMiddleware()])
    out = agent.invoke({"messages": [HumanMessage("go")]}, {"recursion_limit": 100})
    assert termination_of(out["messages"]) is None and out["messages"][-1].content == "done"
    assert len(CALLS) == 12


def test_kill_switch_middleware_stops_before_the_next_tool_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    flag = tmp_path / "kill"

    @tool
    def step(n: int) -> str:
        """One step of work."""
        CALLS.append(n)
        if n == 2:
            flag.write_text('{"global": true, "reason": "incident 42"}')
        return f"step {n} ok"

    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": "step", "args": {"n": i}, "id": f"s{i}"}]) for i in range(8)
    ]
    mw = KillSwitchMiddleware(KillSwitch(env=None, file=flag, ttl=0))
    agent = create_agent(ScriptedChatModel(script=script), tools=[step], middleware=[mw])
    out = agent.invoke({"messages": [HumanMessage("go")]}, {"recursion_limit": 100})
    assert CALLS == [0, 1, 2]
    assert termination_of(out["messages"]) is TerminationReason.KILL_SWITCH
    assert "incident 42" in out["messages"][-1].content


def test_circuit_breaker_middleware_answers_unavailable_after_failures() -> None:
    @tool
    def flaky(q: str) -> str:
        """Fails every time."""
        CALLS.append(q)
        raise RuntimeError("upstream 503")

    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": "flaky", "args": {"q": f"q{i}"}, "id": f"f{i}"}]) for i in range(4)
    ]
    now = [0.0]
    mw = CircuitBreakerMiddleware(CircuitBreaker(failure_threshold=2, reset_timeout=60, clock=lambda: now[0]))
    agent = create_agent(ScriptedChatModel(script=[*script, "I used another approach."]), tools=[flaky], middleware=[mw])
    out = agent.invoke({"messages": [HumanMessage("go")]}, {"recursion_limit": 100})
    tool_texts = [m.content for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(CALLS) == 2
    assert "upstream 503" in tool_texts[0] and "unavailable" in tool_texts[2].lower()
    assert out["messages"][-1].content == "I used another approach."


# --- regressions found in review -------------------------------------------------------------
def test_budget_middleware_counts_calls_whose_model_reports_no_usage() -> None:
    from agentcost_core.budgets import ScopeContext

    class NoUsage(ScriptedChatModel):
        def _reply(self, messages):  # type: ignore[no-untyped-def]
            reply = super()._reply(messages)
            reply.usage_metadata = None
            return reply

    mw = BudgetMiddleware(Budget(usd="0.05", per="session", store=MemoryStore()), session_id="no-usage")
    agent = create_agent(NoUsage(script=["word " * 300], model="gpt-4o", max_tokens=400), tools=[], middleware=[mw])
    for _ in range(3):
        agent.invoke({"messages": [HumanMessage("hello " * 200)]})
    usd = next(iter(mw.controls.enforcer.spent(ScopeContext(session_id="no-usage")).values()))["usd"]
    assert usd > Decimal("0.005")  # ~$0.0035 per call at gpt-4o prices, counted not $0


def test_runs_that_raise_leave_nothing_held() -> None:
    class Boom(ScriptedChatModel):
        def _generate(self, *a, **k):  # type: ignore[no-untyped-def]
            raise RuntimeError("provider 500")

    budget = Budget(usd=1, per="global_day", store=MemoryStore())
    mw = BudgetMiddleware(budget)
    agent = create_agent(Boom(model="gpt-4o"), tools=[search], middleware=[mw])
    for _ in range(20):
        with pytest.raises(RuntimeError):
            agent.invoke({"messages": [HumanMessage("go")]})
    assert budget.store.read(budget.scope_key(ScopeContext(), time.time())[0]).held == (0, 0, 0, 0)
