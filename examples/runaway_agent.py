"""The runaway agent: the same looping agent, unguarded and guarded, and both bills.

A support agent on claude-sonnet-4-5 keeps calling the same search over and over (the classic
weekend loop). Unguarded, only LangGraph's recursion limit stops it (kept small here so the demo
ends). Guarded with ``guard()``, a $0.25 session budget and the stuck detector stop it: one nudge,
then a halt with the best answer found so far.

Runs offline with a scripted model that reports realistic usage (prompt tokens counted exactly,
growing every step as the conversation grows). Events go to this example's own SQLite ledger
(.agentcost/runaway_agent.db, fresh each run).

    python examples/runaway_agent.py
"""

from __future__ import annotations

import sys
from decimal import Decimal

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from agentcost_core import Budget, StuckDetector
from agentcost_core.cli import main as agentcost_cli
from agentcost_langchain import CostCallbackHandler, guard
from agentcost_langchain.testing import ScriptedChatModel
from example_ledger import fresh_ledger

MODEL = "claude-sonnet-4-5-20250929"
UNGUARDED_STEPS = 40  # LangGraph's recursion limit: the only brake the unguarded agent has


@tool
def search_tickets(query: str) -> str:
    """Search past support tickets."""
    return (
        f"3 tickets match {query!r}: #881 refund approved after carrier loss; #902 replacement shipped; "
        "#917 customer asked for store credit. Policy: refund or replacement at the customer's choice."
    )


def looping_model() -> ScriptedChatModel:
    """A model stuck in a loop: the same search, every step, with a little reasoning text."""
    step = AIMessage(
        content="Let me search the tickets again to be sure before I answer.",
        tool_calls=[{"name": "search_tickets", "args": {"query": "lost parcel refund"}, "id": "t", "type": "tool_call"}],
    )
    return ScriptedChatModel(script=[step], model=MODEL, provider="anthropic", max_tokens=1024)


def main() -> int:
    question = {"messages": [HumanMessage("My parcel was lost. Can I get a refund?")]}
    system = "You are a careful support agent. Use the tools, then answer. " * 40  # a realistic system prompt

    # 1. Unguarded: runs until the recursion limit cuts it off.
    ledger = fresh_ledger("runaway_agent")  # this run only: the report below shows nothing older
    handler = CostCallbackHandler(ledger=ledger, feature="runaway-demo", session_id="unguarded")
    agent = create_agent(looping_model(), tools=[search_tickets], system_prompt=system)
    try:
        agent.invoke(question, {"callbacks": [handler], "recursion_limit": UNGUARDED_STEPS})
        unguarded_end = "finished"
    except Exception as e:  # GraphRecursionError
        unguarded_end = f"cut off by {type(e).__name__}"
    unguarded = handler.total_cost
    calls = len(handler.events)

    # 2. Guarded: same agent, a $0.25 session budget and the stuck detector.
    agent = create_agent(looping_model(), tools=[search_tickets], system_prompt=system)
    guarded = guard(
        agent,
        budgets=Budget(usd="0.25", per="session", on_exceed="wrap_up"),
        stuck=StuckDetector(),
        ledger=ledger,
        feature="runaway-demo",
        session_id="guarded",
    )
    result = guarded.invoke(question, {"recursion_limit": UNGUARDED_STEPS})
    handler.flush()
    guarded.flush()  # both runs' events are in the ledger before the report reads it
    g_calls = len([e for e in result.events if e.kind == "llm"])

    print("The runaway agent")
    print("=" * 60)
    print(f"unguarded: {calls} model calls, ${unguarded:.4f}, {unguarded_end}")
    print(f"guarded:   {g_calls} model calls, ${result.cost:.4f}, stopped: {result.termination_reason}")
    print(f"           nudges sent: {len(result.nudges)}")
    print(f"           best answer: {(result.answer or '')[:90]}...")
    if result.cost:
        print(f"the guard saved {Decimal(1) - result.cost / unguarded:.0%} of this bill;")
    print(f"at {UNGUARDED_STEPS} steps the unguarded loop only stopped because of the demo's recursion limit.")
    print()
    sys.stdout.flush()
    return agentcost_cli(["report", "--ledger", ledger, "--by", "session"])


if __name__ == "__main__":
    raise SystemExit(main())
