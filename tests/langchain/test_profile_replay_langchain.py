"""Profile and replay a ledger written by real ``create_agent`` runs (LangChain's own agent loop, the
scripted chat model reporting exact usage, our callback handler): the looping session is the runaway
the profile finds, its prompt grows step by step, and a session budget replayed over the same ledger
stops exactly that session."""

from __future__ import annotations

from decimal import Decimal

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from agentcost_core import Ledger
from agentcost_core.profile import profile
from agentcost_core.replay import Remap, Scenario, replay
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.testing import ScriptedChatModel


@tool
def search(query: str) -> str:
    """Search the order database."""
    return f"results for {query}: order #4417 shipped on Tuesday, carrier DHL, tracking 00340434161094042557"


def _run(agent_model: ScriptedChatModel, handler: CostCallbackHandler, question: str) -> None:
    from langchain.agents import create_agent

    agent = create_agent(agent_model, tools=[search])
    agent.invoke({"messages": [("user", question)]}, config={"callbacks": [handler], "recursion_limit": 100})


def test_profile_and_replay_of_real_agent_runs(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger(url, sync=True) as ledger:
        for n in range(120):  # ordinary sessions: one search, then the answer
            call = AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": f"order {n}"}, "id": "c"}])
            model = ScriptedChatModel(script=[call, "It shipped."], model="gpt-4o")
            _run(model, CostCallbackHandler(ledger, session_id=f"s{n}", feature="support"), f"where is order {n}?")
        call = AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": "where"}, "id": "c"}])
        looping = ScriptedChatModel(script=[call] * 20 + ["It shipped."], model="gpt-4o")
        _run(looping, CostCallbackHandler(ledger, session_id="loop", feature="support"), "where is my order?")
        events = ledger.events()

    calls = [e for e in events if e.kind == "llm"]
    loop = [e for e in calls if e.session_id == "loop"]
    assert len(calls) == 120 * 2 + 21 and len(loop) == 21 and all(e.cost for e in calls)
    p = profile(events)
    tail = p.finding("runaway_tail")
    assert [s["session_id"] for s in tail.detail["sessions"]] == ["loop"]
    assert tail.dollars == sum(e.cost for e in loop)
    curve = {pt.index: pt for pt in p.curve}
    assert curve[21].calls == 1 and curve[21].prompt_tokens == loop[-1].usage.prompt_tokens
    assert curve[2].mean_prompt_tokens > curve[1].mean_prompt_tokens  # each step resends the conversation
    late = p.finding("context_growth")
    assert late.dollars == sum(e.cost for e in loop[5:])  # only the loop has calls after step 5

    cap = max(sum(e.cost for e in calls if e.session_id == f"s{n}") for n in range(120))
    r = replay(events, Scenario(session_cap=cap), by="session_id")
    assert [s["session_id"] for s in r.stopped] == ["loop"]
    assert Decimal(r.stopped[0]["cost_until_stop"]) <= cap
    mini = replay(events, Scenario(remaps=[Remap("gpt-4o", "gpt-4o-mini")]))
    assert mini.total.after.cost < mini.total.before.cost == sum(e.cost for e in calls)
