"""A LlamaIndex agent under OTelExporter: metrics and spans carry the ledger's values; model and
tool spans are children of the guarded run's agent span (real FunctionAgent, real SDK)."""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool

from agentcost_core import Budget, Ledger
from agentcost_core.budgets import MemoryStore
from agentcost_llamaindex import guard, instrument
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SYSTEM = "You are a careful travel assistant; answer from the tools' results. " * 30


def lookup(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def _agent(streaming: bool) -> FunctionAgent:
    llm = ScriptedLLM(script=[{"tool": "lookup", "args": {"city": "Paris"}}, "It is sunny in Paris today."],
                      model="gpt-4o-2024-08-06", cached_share=0.5)  # fmt: skip
    return FunctionAgent(name="weather", tools=[FunctionTool.from_defaults(lookup)], llm=llm,
                         system_prompt=SYSTEM, streaming=streaming)  # fmt: skip


@pytest.mark.parametrize("streaming", [False, True])
async def test_guarded_function_agent_is_one_trace_with_the_ledger_values(telemetry, streaming):
    ledger = Ledger("memory://", sync=True)
    guarded = guard(_agent(streaming), budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger=ledger,
                    exporters=[telemetry.exporter], feature="travel")  # fmt: skip
    result = await guarded.run("Weather in Paris?")
    calls = [e for e in result.events if e.kind == "llm"]
    assert len(calls) == 2 and result.termination_reason is None
    assert {e.id for e in ledger.events() if e.kind == "llm"} == {e.id for e in calls}

    spans = {s.attributes["agentcost.event_id"]: s for s in telemetry.finished("chat ")}
    assert set(spans) == {e.id for e in calls}
    for e in calls:
        a = spans[e.id].attributes
        assert spans[e.id].name == "chat gpt-4o-2024-08-06"
        assert a["gen_ai.usage.cost.amount"] == float(e.cost)
        assert a["gen_ai.usage.input_tokens"] == e.usage.prompt_tokens
        assert a["gen_ai.usage.cache_read.input_tokens"] == e.usage.cache_read > 0
        assert a["gen_ai.usage.output_tokens"] == e.usage.output
        assert a["agentcost.feature"] == "travel"
        assert spans[e.id].end_time - spans[e.id].start_time == int(e.latency_s * 1e9)
    assert telemetry.point("gen_ai.usage.cost").sum == pytest.approx(float(result.cost))
    inputs = telemetry.point("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"})
    assert (inputs.count, inputs.sum) == (2, sum(e.usage.prompt_tokens for e in calls))

    (agent_span,) = telemetry.finished("invoke_agent")
    assert agent_span.name == "invoke_agent weather"
    assert agent_span.attributes["agentcost.run.cost"] == pytest.approx(float(result.cost))
    steps = telemetry.finished("chat ") + telemetry.finished("execute_tool")
    assert sorted(s.name for s in steps) == ["chat gpt-4o-2024-08-06"] * 2 + ["execute_tool lookup"]
    for s in steps:
        assert s.parent is not None and s.parent.span_id == agent_span.context.span_id
        assert agent_span.start_time <= s.start_time <= s.end_time <= agent_span.end_time
    if streaming:  # the final answer streamed in two chunks: its time to first chunk is measured
        assert telemetry.point("gen_ai.client.operation.time_to_first_chunk").count >= 1


async def test_instrument_takes_exporters(telemetry):
    llm = ScriptedLLM(script=["Hello there, traveller."], model="gpt-4o-mini-2024-07-18")
    with instrument("memory://", exporters=[telemetry.exporter]) as handler:
        await llm.achat([ChatMessage(role="user", content="hi")])
    (event,) = handler.events
    (span,) = telemetry.finished("chat ")
    assert span.attributes["gen_ai.usage.cost.amount"] == float(event.cost)
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


async def test_an_embedding_in_a_guarded_run_is_its_span_and_in_the_runs_cost(telemetry):
    embed = MockEmbedding(embed_dim=4, embed_batch_size=2)
    embed.model_name = "text-embedding-3-small"

    async def search(query: str) -> str:
        """Search the help center."""
        await embed.aget_text_embedding_batch([query, "refunds", "shipping"])
        return "Refunds within 30 days."

    llm = ScriptedLLM(script=[{"tool": "search", "args": {"query": "refund policy"}}, "Within 30 days."],
                      model="gpt-4o-2024-08-06")  # fmt: skip
    agent = FunctionAgent(name="helpdesk", tools=[FunctionTool.from_defaults(async_fn=search)], llm=llm,
                          streaming=False)  # fmt: skip
    guarded = guard(agent, budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger="memory://",
                    exporters=[telemetry.exporter])  # fmt: skip
    result = await guarded.run("Can I get a refund?")
    embeddings = [e for e in result.events if e.kind == "embedding"]
    assert len(embeddings) == 2 and all(e.cost for e in embeddings)

    spans = {s.attributes["agentcost.event_id"]: s for s in telemetry.finished("embeddings ")}
    assert set(spans) == {e.id for e in embeddings}
    (agent_span,) = telemetry.finished("invoke_agent")
    for e in embeddings:
        span = spans[e.id]
        assert span.name == "embeddings text-embedding-3-small"
        assert span.attributes["gen_ai.usage.cost.amount"] == float(e.cost)
        assert span.attributes["gen_ai.usage.input_tokens"] == e.usage.input
        assert span.parent is not None and span.parent.span_id == agent_span.context.span_id
    op = {"gen_ai.operation.name": "embeddings"}
    assert telemetry.point("gen_ai.usage.cost", **op).sum == pytest.approx(float(sum(e.cost for e in embeddings)))
    assert sum(p.sum for p in telemetry.points("gen_ai.usage.cost")) == pytest.approx(float(result.cost))
    assert agent_span.attributes["agentcost.run.cost"] == pytest.approx(float(result.cost))


def test_bad_exporters_fail_at_guard_construction():
    with pytest.raises(TypeError, match="export"):
        guard(_agent(False), budgets=Budget(usd="1", per="run", store=MemoryStore()), exporters=[object()])
