"""A LangChain agent under OTelExporter: metrics and spans carry the ledger's values; the model
and tool spans are children of the guarded run's agent span (real create_agent, real SDK)."""

from __future__ import annotations

import asyncio

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from agentcost_core import Budget, Ledger
from agentcost_core.budgets import MemoryStore
from agentcost_langchain import CostCallbackHandler, track_costs
from agentcost_langchain.guard import guard
from agentcost_langchain.testing import ScriptedChatModel


@tool
def lookup(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


SYSTEM = "You are a careful travel assistant; answer from the tools' results. " * 30  # cached by the provider


def _agent():
    return create_agent(_model(), tools=[lookup], system_prompt=SYSTEM, name="weather")


def _model(**kw) -> ScriptedChatModel:
    script = [
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "c1"}]),
        "It is sunny in Paris today, enjoy the walk.",
    ]
    return ScriptedChatModel(script=script, model="gpt-4o-2024-08-06", cached_share=0.5, **kw)


def _check_calls_against_ledger(telemetry, events) -> None:
    calls = [e for e in events if e.kind == "llm"]
    spans = {s.attributes["agentcost.event_id"]: s for s in telemetry.finished("chat ")}
    assert set(spans) == {e.id for e in calls}
    for e in calls:
        a = spans[e.id].attributes
        assert a["gen_ai.usage.cost.amount"] == float(e.cost)
        assert a["gen_ai.usage.input_tokens"] == e.usage.prompt_tokens
        assert a["gen_ai.usage.output_tokens"] == e.usage.output
        assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == e.usage.cache_read
        assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.response.model"] == e.model
    assert telemetry.point("gen_ai.usage.cost").sum == pytest.approx(float(sum(e.cost for e in calls)))
    assert telemetry.point("gen_ai.usage.cost").count == len(calls)
    inputs = telemetry.point("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"})
    assert inputs.sum == sum(e.usage.prompt_tokens for e in calls)
    cached = telemetry.point("gen_ai.client.token.usage", **{"gen_ai.token.type": "cache_read"})
    assert cached.sum == sum(e.usage.cache_read for e in calls) > 0


def test_guarded_create_agent_run_is_one_trace_with_cost_per_step(telemetry):
    ledger = Ledger("memory://", sync=True)
    agent = _agent()
    guarded = guard(agent, budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger=ledger,
                    exporters=[telemetry.exporter], feature="travel")  # fmt: skip
    result = guarded.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    assert len([e for e in result.events if e.kind == "llm"]) == 2
    assert [e.id for e in ledger.events() if e.kind == "llm"] == [e.id for e in result.events if e.kind == "llm"]

    _check_calls_against_ledger(telemetry, result.events)
    (agent_span,) = telemetry.finished("invoke_agent")
    assert agent_span.name == "invoke_agent weather"
    assert agent_span.attributes["agentcost.run.cost"] == pytest.approx(float(result.cost))
    steps = telemetry.finished("chat ") + telemetry.finished("execute_tool")
    assert sorted(s.name for s in steps) == ["chat gpt-4o-2024-08-06"] * 2 + ["execute_tool lookup"]
    for s in steps:
        assert s.parent is not None and s.parent.span_id == agent_span.context.span_id
        assert s.context.trace_id == agent_span.context.trace_id
        assert agent_span.start_time <= s.start_time <= s.end_time <= agent_span.end_time
        assert s.attributes["agentcost.feature"] == "travel"
    # the tool ran between the two model calls
    first, second = sorted(telemetry.finished("chat "), key=lambda s: s.start_time)
    (tool_span,) = telemetry.finished("execute_tool")
    assert first.end_time <= tool_span.start_time <= tool_span.end_time <= second.start_time


def test_streamed_guarded_run_reports_time_to_first_chunk(telemetry):
    agent = _agent()
    guarded = guard(agent, budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger="memory://",
                    exporters=[telemetry.exporter])  # fmt: skip
    *chunks, result = list(guarded.stream({"messages": [HumanMessage("Weather in Paris?")]}, stream_mode="messages"))
    assert chunks and result.cost > 0
    _check_calls_against_ledger(telemetry, result.events)
    (agent_span,) = telemetry.finished("invoke_agent")
    spans = telemetry.finished("chat ")
    assert all(s.parent.span_id == agent_span.context.span_id for s in spans)
    # the text answer streamed in chunks: its time to first chunk lies within the call
    streamed = [s for s in spans if "gen_ai.response.time_to_first_chunk" in s.attributes]
    assert streamed
    for s in streamed:
        assert 0 <= s.attributes["gen_ai.response.time_to_first_chunk"] * 1e9 <= s.end_time - s.start_time + 1e3
    assert telemetry.point("gen_ai.client.operation.time_to_first_chunk").count == len(streamed)


def test_async_guarded_run_parents_its_spans_too(telemetry):
    agent = _agent()
    guarded = guard(agent, budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger="memory://",
                    exporters=[telemetry.exporter])  # fmt: skip
    result = asyncio.run(guarded.ainvoke({"messages": [HumanMessage("Weather in Paris?")]}))
    _check_calls_against_ledger(telemetry, result.events)
    (agent_span,) = telemetry.finished("invoke_agent")
    assert all(s.parent.span_id == agent_span.context.span_id for s in telemetry.finished("chat "))


def test_handler_and_track_costs_take_exporters(telemetry):
    model = ScriptedChatModel(script=["Hello there, traveller."], model="gpt-4o-mini-2024-07-18", cached_share=0.5)
    handler = CostCallbackHandler("memory://", exporters=[telemetry.exporter])
    model.invoke(SYSTEM, config={"callbacks": [handler]})
    with track_costs("memory://", exporters=[telemetry.exporter]) as tracked:
        "".join(c.content for c in model.stream(SYSTEM))
    _check_calls_against_ledger(telemetry, handler.events + tracked.events)
    streamed = telemetry.finished("chat ")[1]
    assert streamed.attributes["gen_ai.response.time_to_first_chunk"] > 0


def test_a_raising_exporter_never_breaks_the_agent(telemetry):
    class Broken:
        def export(self, event, call, outcome):
            raise RuntimeError("collector down")

        def agent_run(self, name, attribution):
            raise RuntimeError("collector down")

    agent = _agent()
    guarded = guard(agent, budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger="memory://",
                    exporters=[Broken(), telemetry.exporter])  # fmt: skip
    result = guarded.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    assert result.termination_reason is None and "sunny" in result.answer.lower()
    assert len(telemetry.finished("chat ")) == 2 and len(telemetry.finished("invoke_agent")) == 1


def test_bad_exporters_fail_at_guard_construction():
    with pytest.raises(TypeError, match="export"):
        guard(create_agent(_model(), tools=[lookup]), budgets=Budget(usd="1", per="run", store=MemoryStore()),
              exporters=[object()])  # fmt: skip


def test_a_halted_run_ends_its_agent_span_with_the_reason_and_every_call_in_it(telemetry):
    loop = AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "Paris"}, "id": "c"}])
    model = ScriptedChatModel(script=[loop] * 200, model="gpt-4o", max_tokens=300)
    agent = create_agent(model, tools=[lookup], system_prompt=SYSTEM, name="looper")
    guarded = guard(agent, budgets=Budget(usd="0.02", per="run", store=MemoryStore()), ledger="memory://",
                    exporters=[telemetry.exporter])  # fmt: skip
    result = guarded.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    assert result.termination_reason is not None
    (agent_span,) = telemetry.finished("invoke_agent")
    assert agent_span.attributes["agentcost.termination_reason"] == result.termination_reason.value
    assert agent_span.attributes["agentcost.run.cost"] == pytest.approx(float(result.cost))
    calls = [e for e in result.events if e.kind == "llm"]
    chat = telemetry.finished("chat ")
    assert len(chat) == len(calls) >= 2
    assert all(s.parent.span_id == agent_span.context.span_id for s in chat)


def test_no_prompt_text_tool_arguments_or_error_message_in_the_exports(telemetry):
    secret = "sk-proj-SECRETSECRETSECRET1234 and ann@example.com"

    @tool
    def leaky(query: str) -> str:
        """Fails with the query in its message."""
        raise ValueError(f"bad query {query}")

    script = [AIMessage(content="", tool_calls=[{"name": "leaky", "args": {"query": secret}, "id": "c1"}]), "Done."]
    agent = create_agent(ScriptedChatModel(script=script), tools=[leaky], system_prompt=f"Never say {secret}")
    guarded = guard(agent, budgets=Budget(usd="1", per="run", store=MemoryStore()), ledger="memory://",
                    exporters=[telemetry.exporter])  # fmt: skip
    try:
        guarded.invoke({"messages": [HumanMessage(f"Look up {secret}")]})
    except ValueError:
        pass  # the tool's own error reaches the user; what matters is what was exported
    exported = [str(dict(s.attributes)) + str(s.events) + str(s.status) for s in telemetry.spans.get_finished_spans()]
    exported += [str(dict(p.attributes)) for m in ("gen_ai.client.token.usage", "gen_ai.usage.cost")
                 for p in telemetry.points(m)]  # fmt: skip
    assert telemetry.finished("execute_tool leaky")
    assert exported and not any("SECRET" in x or "ann@example.com" in x or "bad query" in x for x in exported)
