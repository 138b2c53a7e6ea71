"""Guards on real LangChain agents: the callback handler with budgets, ``guard()`` around a
``create_agent`` agent, a hand-built LangGraph graph and a langchain-classic ``AgentExecutor``."""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from agentcost_core import Budget, BudgetExceeded, Ledger, TerminationReason
from agentcost_core.budgets import MemoryStore
from agentcost_core.guards.circuit_breaker import CircuitBreaker
from agentcost_core.guards.kill_switch import KillSwitch
from agentcost_core.guards.stuck import StuckDetector
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.guard import guard
from agentcost_langchain.testing import ScriptedChatModel

CALLS: list[dict[str, Any]] = []


@tool
def search(query: str) -> str:
    """Search the order database."""
    CALLS.append({"query": query})
    return f"results for {query}: order #4417 shipped"


@tool
def lookup(order: int) -> str:
    """Look up one order by number."""
    CALLS.append({"order": order})
    return f"order {order}: status shipped on day {order % 7}"


def repeating_model(n: int = 30, **kw: Any) -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": "where is my order"}, "id": "c"}])
    return ScriptedChatModel(script=[call] * n + ["Your order shipped."], max_tokens=300, **kw)


def productive_model(n: int = 12) -> ScriptedChatModel:
    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": 1000 + i}, "id": f"c{i}"}])
        for i in range(n)
    ]
    return ScriptedChatModel(script=[*script, "All twelve orders shipped."], max_tokens=300)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def ledger() -> Ledger:
    return Ledger("memory://", sync=True)


def tool_messages(result_messages: list[Any]) -> list[ToolMessage]:
    return [m for m in result_messages if isinstance(m, ToolMessage)]


# --- the callback handler ----------------------------------------------------------------------
def test_handler_with_a_budget_blocks_the_call_that_does_not_fit() -> None:
    led = ledger()
    h = CostCallbackHandler(led, budgets=Budget(usd="0.001", per="session", store=MemoryStore()), session_id="s")
    model = ScriptedChatModel(script=["A fairly long answer " * 20], model="gpt-4o", max_tokens=40)
    calls = 0
    with pytest.raises(BudgetExceeded) as err:
        for _ in range(50):
            model.invoke("hello there", config={"callbacks": [h]})
            calls += 1
    assert 0 < calls < 50
    assert err.value.reason is TerminationReason.BUDGET
    assert h.total_cost <= Decimal("0.001")
    assert [e.kind for e in led.events() if e.kind != "llm"][-2:] == ["budget.exceeded", "halt"]
    assert len([e for e in led.events() if e.kind == "llm"]) == calls  # the refused call never ran


def test_handler_without_guards_does_not_raise_errors() -> None:
    assert CostCallbackHandler("memory://").raise_error is False
    assert CostCallbackHandler("memory://", stuck=StuckDetector()).raise_error is True


# --- guard(create_agent) -----------------------------------------------------------------------
def test_create_agent_repeating_the_same_tool_call_is_nudged_then_halted() -> None:
    from langchain.agents import create_agent

    agent = create_agent(repeating_model(), tools=[search])
    result = guard(agent, stuck=StuckDetector(), ledger=ledger()).invoke({"messages": [HumanMessage("Where?")]})
    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(result.nudges) == 1 and result.nudges[0].startswith("You appear to be repeating")
    assert len(CALLS) <= 7
    assert result.output and "order #4417" in result.output  # the best answer so far: the last result
    assert result.final_message is not None and "repeated_tool" in result.final_message.content
    assert result.cost > 0 and len([e for e in result.events if e.kind == "llm"]) >= 3


def test_create_agent_calling_one_tool_productively_is_not_halted() -> None:
    from langchain.agents import create_agent

    agent = create_agent(productive_model(), tools=[lookup])
    result = guard(agent, stuck=StuckDetector(), ledger=ledger()).invoke({"messages": [HumanMessage("Check all")]})
    assert result.termination_reason is None and result.nudges == []
    assert len(CALLS) == 12
    assert result.answer == "All twelve orders shipped."


def test_create_agent_budget_stops_the_loop_with_a_final_answer() -> None:
    from langchain.agents import create_agent

    agent = create_agent(repeating_model(200, model="gpt-4o"), tools=[search])
    budget = Budget(usd="0.05", per="session", store=MemoryStore())
    result = guard(agent, budgets=budget, ledger=ledger(), session_id="budget-1").invoke(
        {"messages": [HumanMessage("Where is my order?")]}
    )
    assert result.termination_reason is TerminationReason.BUDGET
    assert Decimal(0) < result.cost <= Decimal("0.05")
    assert result.final_message is not None and "budget" in result.final_message.content
    assert "order #4417" in (result.answer or "")


async def test_guard_ainvoke_halts_the_same_way() -> None:
    from langchain.agents import create_agent

    agent = create_agent(repeating_model(), tools=[search])
    result = await guard(agent, stuck=StuckDetector(), ledger=ledger()).ainvoke({"messages": [HumanMessage("?")]})
    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(result.nudges) == 1 and len(CALLS) <= 7


def test_kill_switch_file_stops_a_running_agent_before_its_next_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from langchain.agents import create_agent

    flag = tmp_path / "kill"

    @tool
    def risky(step: int) -> str:
        """A step that, at step 3, makes an operator pull the switch."""
        CALLS.append({"step": step})
        if step == 3:
            flag.write_text("agent-7")
        return f"done {step}"

    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": "risky", "args": {"step": i}, "id": f"k{i}"}]) for i in range(10)
    ]
    agent = create_agent(ScriptedChatModel(script=script), tools=[risky])
    switch = KillSwitch(env=None, file=flag, ttl=0)
    guarded = guard(agent, kill_switch=switch, ledger=ledger(), agent_id="agent-7")
    result = guarded.invoke({"messages": [HumanMessage("go")]})
    assert result.termination_reason is TerminationReason.KILL_SWITCH
    assert [c["step"] for c in CALLS] == [0, 1, 2, 3]
    other = guard(create_agent(ScriptedChatModel(script=["fine"]), tools=[risky]), kill_switch=switch,
                  ledger=ledger(), agent_id="agent-8").invoke({"messages": [HumanMessage("go")]})  # fmt: skip
    assert other.termination_reason is None  # only agent-7 is switched off
    flag.unlink()  # cleared: new runs of agent-7 proceed
    again = guard(create_agent(ScriptedChatModel(script=["fine"]), tools=[risky]), kill_switch=switch,
                  ledger=ledger(), agent_id="agent-7").invoke({"messages": [HumanMessage("go")]})  # fmt: skip
    assert again.termination_reason is None and again.answer == "fine"


def test_open_circuit_answers_for_the_tool_and_the_agent_adapts() -> None:
    from langchain.agents import create_agent

    @tool
    def flaky(q: str) -> str:
        """Always fails."""
        CALLS.append({"q": q})
        raise RuntimeError("upstream 503")

    script: list[Any] = [
        AIMessage(content="", tool_calls=[{"name": "flaky", "args": {"q": f"x{i}"}, "id": f"f{i}"}]) for i in range(3)
    ]
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=60, clock=lambda: now[0])
    agent = create_agent(ScriptedChatModel(script=[*script, "Used another approach."]), tools=[flaky])
    result = guard(agent, breaker=breaker, ledger=ledger()).invoke({"messages": [HumanMessage("go")]})
    assert len(CALLS) == 2  # the third call never reached the tool
    assert result.termination_reason is None and result.answer == "Used another approach."


# --- guard(LangGraph graph) --------------------------------------------------------------------
def test_langgraph_graph_repeating_tool_is_nudged_then_halted() -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    model = repeating_model().bind_tools([search])

    def agent_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent_node)
    g.add_node("tools", ToolNode([search]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    graph = g.compile()
    result = guard(graph, stuck=StuckDetector(), ledger=ledger()).invoke(
        {"messages": [HumanMessage("Where?")]}, {"recursion_limit": 100}
    )
    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(result.nudges) == 1 and len(CALLS) <= 7
    assert result.events and all(e.step == "agent" for e in result.events if e.kind == "llm")


# --- guard(AgentExecutor) -----------------------------------------------------------------------
def test_agent_executor_repeating_tool_is_nudged_then_halted() -> None:
    from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a support agent."), ("human", "{input}"), ("placeholder", "{agent_scratchpad}")]
    )
    llm = repeating_model()
    executor = AgentExecutor(agent=create_tool_calling_agent(llm, [search], prompt), tools=[search], max_iterations=40)
    result = guard(executor, stuck=StuckDetector(), ledger=ledger()).invoke({"input": "Where is my order?"})
    assert result.termination_reason is TerminationReason.REPEATED_TOOL
    assert len(result.nudges) == 1 and len(CALLS) <= 7
    assert "order #4417" in (result.output or "")
    assert executor.tools == [search]  # guard() fronted a copy's tools, not the user's executor


async def test_handler_halts_async_runs_too() -> None:
    """The sync handler runs inline under ainvoke and its raise_error stops the run."""
    h = CostCallbackHandler(ledger(), budgets=Budget(usd="0.01", per="run", store=MemoryStore()))
    model = ScriptedChatModel(script=["short"], model="gpt-4o", max_tokens=100)
    await model.ainvoke("hi", config={"callbacks": [h]})
    stream = [c async for c in model.astream("hi", config={"callbacks": [h]})]
    assert stream and len(h.events) == 2
    big = ScriptedChatModel(script=["short"], model="gpt-4o", max_tokens=5000)  # worst case $0.05 > cap
    with pytest.raises(BudgetExceeded):
        await big.ainvoke("hi", config={"callbacks": [h]})
    assert len(h.events) == 2  # the refused call was never made


# --- regressions found in review -------------------------------------------------------------
def test_a_hard_cap_holds_when_tool_schemas_are_billed_as_input() -> None:
    import json

    from agentcost_core.tokens import TokenCounter

    tools = [
        {"type": "function", "function": {"name": f"tool_{i}", "description": "Look things up in the order "
         "database and return the matching rows with every column " * 3, "parameters": {"type": "object",
         "properties": {"q": {"type": "string", "description": "query " * 20}}}}}
        for i in range(15)
    ]  # fmt: skip

    class ToolBilled(ScriptedChatModel):  # bills the tool schemas it was sent, as providers do
        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            result = super()._generate(messages, stop, run_manager, **kw)
            extra = TokenCounter.for_model(self.model).count_text(json.dumps(kw.get("tools") or [])).tokens
            message = result.generations[0].message
            usage = dict(message.usage_metadata)
            usage["input_tokens"] += extra
            usage["total_tokens"] += extra
            message.usage_metadata = usage  # type: ignore[assignment]
            return result

    h = CostCallbackHandler(ledger(), budgets=Budget(usd="0.05", per="session", store=MemoryStore()), session_id="t")
    model = ToolBilled(script=["ok"], model="gpt-4o", max_tokens=50).bind(tools=tools)
    with pytest.raises(BudgetExceeded):
        for _ in range(500):
            model.invoke([HumanMessage("where is my order?")], {"callbacks": [h]})
    assert sum(e.cost for e in h.events if e.kind == "llm") <= Decimal("0.05")


def _live_run_guards() -> int:
    from agentcost_core.guards.run_guard import RunGuard

    gc.collect()
    return sum(isinstance(o, RunGuard) for o in gc.get_objects())


def test_the_handler_forgets_the_run_state_of_direct_model_calls() -> None:
    h = CostCallbackHandler(ledger(), budgets=Budget(usd=10, store=MemoryStore()))
    model = ScriptedChatModel(script=["ok"], model="gpt-4o")
    before = _live_run_guards()
    for _ in range(50):
        model.invoke("hi", {"callbacks": [h]})
    assert len(h.events) == 50
    assert _live_run_guards() == before  # no run guard outlives its call
