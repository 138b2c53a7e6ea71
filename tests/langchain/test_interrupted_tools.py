"""A tool that calls LangGraph ``interrupt()`` did not run yet: it runs again on resume, so what its
start counted (tool-call budgets, the stuck detector) is given back, under guard() and under the
budget middleware, on every budget store."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from agentcost_core import Budget
from agentcost_core.budgets import ScopeContext
from agentcost_core.guards.run_guard import Controls
from agentcost_langchain import guard
from agentcost_langchain.middleware import BudgetMiddleware
from agentcost_langchain.testing import ScriptedChatModel


@tool
def refund(order_id: str) -> str:
    """Refund an order after human approval."""
    return f"refund {order_id}: {interrupt({'approve': order_id})}"


def _model() -> ScriptedChatModel:
    call = AIMessage("", tool_calls=[{"name": "refund", "args": {"order_id": "7"}, "id": "c1"}])
    return ScriptedChatModel(script=[call, "Refunded."])


def test_an_interrupted_tool_call_is_counted_once_under_guard(budget_store: Any) -> None:
    budget = Budget(tool_calls=1, per="session", store=budget_store)
    guarded = guard(create_agent(_model(), [refund], checkpointer=InMemorySaver()), budgets=[budget],
                    ledger="memory://")  # fmt: skip
    cfg: Any = {"configurable": {"thread_id": "t-2"}, "metadata": {"session_id": "s-2"}}
    paused = guarded.invoke({"messages": [("user", "refund 7")]}, cfg)
    assert "__interrupt__" in paused.output
    assert budget.status(session_id="s-2").tool_calls == 0  # paused: the call did not happen yet

    resumed = guarded.invoke(Command(resume="approved"), cfg)
    assert resumed.termination_reason is None
    assert resumed.output["messages"][-1].content == "Refunded."
    assert resumed.output["messages"][-2].content == "refund 7: approved"
    assert budget.status(session_id="s-2").tool_calls == 1


def test_an_interrupted_tool_call_is_counted_once_under_the_budget_middleware(budget_store: Any) -> None:
    budget = Budget(tool_calls=1, per="session", on_exceed="block", store=budget_store)
    agent = create_agent(_model(), [refund], middleware=[BudgetMiddleware(budget, ledger="memory://")],
                         checkpointer=InMemorySaver())  # fmt: skip
    cfg: Any = {"configurable": {"thread_id": "t-3"}, "metadata": {"session_id": "s-3"}}
    assert "__interrupt__" in agent.invoke({"messages": [("user", "refund 7")]}, cfg)
    assert budget.status(session_id="s-3").tool_calls == 0

    out = agent.invoke(Command(resume="approved"), cfg)
    assert out["messages"][-2].content == "refund 7: approved"
    assert out["messages"][-1].content == "Refunded."
    assert budget.status(session_id="s-3").tool_calls == 1


def test_an_interrupted_tool_call_leaves_the_stuck_detector_as_it_was() -> None:
    budget = Budget(tool_calls=5, per="session")
    run = Controls(budgets=[budget], stuck=True).start(ScopeContext(trace_id="t", session_id="s-4"))
    run.before_tool("lookup", {"q": "x"})  # not announced by a model output
    run.after_model(None, None, text="", tool_calls=[("refund", {"order_id": "7"})])  # announced
    run.before_tool("refund", {"order_id": "7"}, call_id="c1")
    assert run.monitor.tool_calls == 2
    run.tool_interrupted("refund", call_id="c1")
    run.before_tool("refund", {"order_id": "7"}, call_id="c1")  # the resume runs it: still the announced call
    run.after_tool("refund", "refund 7: approved", call_id="c1")
    assert run.monitor.tool_calls == 2
    assert budget.status(session_id="s-4").tool_calls == 2
    run.before_tool("lookup", {"q": "y"})
    run.tool_interrupted("lookup")
    assert run.monitor.tool_calls == 2  # an unannounced call leaves the window again
    assert run.tool_calls == 2
    assert budget.status(session_id="s-4").tool_calls == 2
