"""agentcost quickstart for LlamaIndex: FunctionAgents under cost control, then the cost report.

One line attaches agentcost to LlamaIndex's root instrumentation dispatcher; attribution comes from
``instrument_tags``. Offline by default (a scripted function-calling LLM that reports OpenAI-shaped
usage); with OPENAI_API_KEY set it uses gpt-4o-mini through llama-index-llms-openai.

    python examples/llamaindex_quickstart.py    # records into .agentcost/llamaindex_quickstart.db (fresh each run)
"""

from __future__ import annotations

import asyncio
import os
import sys

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.dispatcher import instrument_tags

from agentcost_core.cli import main as agentcost_cli
from agentcost_llamaindex import instrument
from agentcost_llamaindex.testing import ScriptedLLM
from example_ledger import fresh_ledger

INVENTORY = {"widget": 42, "gadget": 0, "gizmo": 7}


def stock_level(item: str) -> int:
    """How many units of an item are in stock."""
    return INVENTORY.get(item, 0)


def unit_price(item: str) -> float:
    """The unit price of an item in USD."""
    return {"widget": 2.5, "gadget": 12.0, "gizmo": 7.25}.get(item, 0.0)


SYSTEM = "You are an inventory assistant. Always check the tools before answering. " * 20


def llms():
    if os.environ.get("OPENAI_API_KEY"):
        from llama_index.llms.openai import OpenAI

        m = OpenAI(model="gpt-4o-mini", additional_kwargs={"stream_options": {"include_usage": True}})
        return m, m, "OpenAI gpt-4o-mini"
    stock = ScriptedLLM(
        model="gpt-4o-mini-2024-07-18",
        cached_share=0.5,
        script=[{"tool": "stock_level", "args": {"item": "widget"}}, "We have 42 widgets in stock."],
    )
    quote = ScriptedLLM(
        model="gpt-4.1-2025-04-14",
        cached_share=0.5,
        script=[
            {"tool": "unit_price", "args": {"item": "gizmo"}},
            {"tool": "stock_level", "args": {"item": "gizmo"}},
            "7 gizmos are available at $7.25 each: $50.75 for all of them.",
        ],
    )
    return stock, quote, "a scripted LLM (offline; set OPENAI_API_KEY for a real provider)"


SESSIONS = [
    ("stock-check", "user-1", "How many widgets do we have?"),
    ("stock-check", "user-2", "Widget stock, please."),
    ("quotes", "user-3", "Quote me every gizmo we have."),
    ("quotes", "user-1", "What would all our gizmos cost?"),
]


async def run() -> None:
    stock_llm, quote_llm, label = llms()
    agents = {
        "stock-check": FunctionAgent(tools=[stock_level], llm=stock_llm, system_prompt=SYSTEM),
        "quotes": FunctionAgent(tools=[unit_price, stock_level], llm=quote_llm, system_prompt=SYSTEM),
    }
    ledger = fresh_ledger("llamaindex_quickstart")  # this run only: the report below shows nothing older
    with instrument(ledger=ledger, agent_id="inventory") as handler:
        print(f"Running {len(SESSIONS)} sessions with {label}; ledger: {handler.ledger.url}\n")
        for i, (feature, user, question) in enumerate(SESSIONS, 1):
            before = len(handler.events)
            with instrument_tags({"feature": feature, "user_id": user, "session_id": f"li-session-{i}"}):
                answer = await agents[feature].run(question)
            calls = handler.events[before:]
            cost = sum((e.cost or 0 for e in calls), 0)
            print(f"[{feature:11}] {question}\n              → {answer}")
            print(f"              {len(calls)} model calls, {sum(e.usage.total for e in calls):,} tokens, ${cost:.6f}\n")
        print(f"This run: {len(handler.events)} model calls, ${handler.total_cost} exactly.\n")
        handler.ledger.flush()
    agentcost_cli(["report", "--ledger", ledger, "--by", "feature"])


if __name__ == "__main__":
    sys.exit(asyncio.run(run()))
