"""guard() runs a guarded copy: the user's agent, its LLM and its tools are never modified, not
even while a guarded run is in flight, and the user's agent still runs unguarded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.tools import FunctionTool

from agentcost_core import Budget
from agentcost_core.halts import TerminationReason
from agentcost_llamaindex import guard
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LOOKUP = {"tool": "lookup", "args": {"q": "capital of France"}}


def _snapshot(agent: Any) -> dict[str, Any]:
    """Every public field of the agent by identity, and by value (the LLM's by its settings)."""
    return {
        name: (id(getattr(agent, name)), repr(getattr(agent, name)) if name != "llm" else None)
        for name in type(agent).model_fields
    }


def _agent_with_a_watching_tool(seen: list[Any]) -> tuple[FunctionAgent, ScriptedLLM, FunctionTool]:
    holder: dict[str, Any] = {}

    def lookup(q: str) -> str:
        """Look something up."""
        agent = holder["agent"]  # what the user's agent looks like while the (guarded) run is in flight
        seen.append((agent.llm is holder["llm"], type(agent) is FunctionAgent, list(agent.tools) == [holder["tool"]]))
        return "Paris is the capital of France."

    tool = FunctionTool.from_defaults(fn=lookup)
    llm = ScriptedLLM(model="gpt-4o", script=[LOOKUP, "Paris."], max_tokens=100)
    agent = FunctionAgent(tools=[tool], llm=llm, streaming=False)
    holder.update(agent=agent, llm=llm, tool=tool)
    return agent, llm, tool


async def test_users_agent_is_unchanged_during_and_after_a_guarded_run() -> None:
    seen: list[Any] = []
    agent, llm, tool = _agent_with_a_watching_tool(seen)
    before, llm_before, tool_before = _snapshot(agent), llm.model_dump(), (tool.fn, tool.metadata)

    result = await guard(agent, stuck=True, budgets=Budget(usd="1"), ledger="memory://").run("Capital of France?")

    assert result.termination_reason is None and result.answer == "Paris."
    assert seen == [(True, True, True)]  # inside the guarded run, the user's agent was still itself
    assert _snapshot(agent) == before
    assert agent.llm is llm and agent.tools == [tool] and type(agent) is FunctionAgent
    assert {k: v for k, v in llm.model_dump().items() if k != "turn"} == {
        k: v for k, v in llm_before.items() if k != "turn"
    }
    assert (tool.fn, tool.metadata) == tool_before


async def test_users_agent_still_runs_unguarded_after_guard() -> None:
    seen: list[Any] = []
    agent, llm, _ = _agent_with_a_watching_tool(seen)
    session = f"s-{uuid.uuid4()}"  # budgets without a store share the process's in-memory one
    guarded = guard(agent, budgets=Budget(model_calls=1, per="session"), ledger="memory://", session_id=session)

    stopped = await guarded.run("Capital of France?")  # the second model call is over the budget
    llm.turn = 0
    unguarded = await agent.run("Capital of France?")  # the user's own agent: no budget applies

    assert stopped.termination_reason is TerminationReason.BUDGET
    assert str(unguarded) == "Paris."
    assert len(seen) == 2


async def test_agent_workflow_members_are_unchanged() -> None:
    seen: list[Any] = []
    agent, llm, _ = _agent_with_a_watching_tool(seen)
    workflow = AgentWorkflow(agents=[agent])
    members = dict(workflow.agents)

    result = await guard(workflow, stuck=True, ledger="memory://").run("Capital of France?")

    assert result.termination_reason is None
    assert seen == [(True, True, True)]
    assert workflow.agents == members and workflow.agents[agent.name] is agent and agent.llm is llm
    assert type(workflow) is AgentWorkflow
