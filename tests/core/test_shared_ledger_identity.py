"""Two references to one shared ledger are one ledger: the LlamaIndex memory, given the same URL as the
run's instrumentation, leaves recording its summarizer's calls to the run's handler (recorded once)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402

from agentcost_core import Ledger  # noqa: E402
from agentcost_llamaindex import TieredMemory, instrument  # noqa: E402
from agentcost_llamaindex.testing import ScriptedLLM  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def lookup(city: str) -> str:
    """Look up facts about a city."""
    return f"{city}: " + "lorem ipsum dolor sit amet " * 30


async def test_summaries_into_a_shared_url_ledger_are_recorded_once(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    summary = json.dumps({"user_context": "a traveller", "task_state": "comparing cities"})
    cheap = ScriptedLLM(script=[summary])
    memory = TieredMemory(900, summarizer=cheap, recent_turns=1, summarize_every=2, ledger=url)
    llm = ScriptedLLM(script=[{"tool": "lookup", "args": {"city": "Paris"}}, "Lovely."])
    agent = FunctionAgent(tools=[lookup], llm=llm, system_prompt="Be brief.")
    with instrument(url) as h:  # the same URL: the same shared ledger
        for run in range(4):
            await agent.run(f"run {run}: tell me about a city", memory=memory)
    memory_events = [e for e in h.events if e.feature == "memory"]
    assert memory_events  # the summarizer ran and the run's handler recorded it
    with Ledger.shared(url) as reader:  # another reference: reads what the others queued
        assert sorted(e.id for e in reader.events(feature="memory")) == sorted(e.id for e in memory_events)


async def test_a_guarded_run_under_instrument_on_one_url_records_each_call_once(tmp_path):
    from agentcost_llamaindex import guard

    url = f"sqlite:///{tmp_path}/guarded.db"
    llm = ScriptedLLM(script=[{"tool": "lookup", "args": {"city": "Paris"}}, "Lovely."])
    agent = FunctionAgent(tools=[lookup], llm=llm, system_prompt="Be brief.")
    with instrument(url) as h:
        result = await guard(agent, stuck=True, ledger=url).run("tell me about Paris")
    assert len(h.events) == len(result.events) == 2
    with Ledger.shared(url) as reader:
        assert reader.count(kind="llm") == 2  # each call once, not once per reference
