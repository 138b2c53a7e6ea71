"""OTelExporter on the core's one call path (CostRecorder.record_outcome), with the real SDK."""

from __future__ import annotations

import logging

import pytest

from agentcost_core import CostRecorder, Usage
from agentcost_core.attribution import Attribution
from agentcost_core.call import EmbeddingCall, ModelCall, Outcome
from agentcost_core.exporters import Exporters
from agentcost_core.otel import OTelExporter


def _call(model: str = "gpt-4o", **attribution: str) -> ModelCall:
    return ModelCall(model, attribution=Attribution.of(attribution), provider="openai")


def test_a_model_call_becomes_metrics_and_a_span_with_the_ledger_values(telemetry):
    rec = CostRecorder("memory://", exporters=[telemetry.exporter], feature="search", agent_id="planner", user_id="u1")
    usage = Usage(input=1000, cache_read=3000, cache_write_5m=500, output=400, reasoning=150)
    outcome = Outcome(usage=usage, model="gpt-4o-2024-08-06", latency_s=1.25, first_chunk_s=0.2)
    event, _ = rec.record_outcome(_call(), outcome)
    assert event.cost is not None and event.cost > 0

    (span,) = telemetry.finished()
    a = span.attributes
    assert span.name == "chat gpt-4o"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o" and a["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert a["gen_ai.usage.input_tokens"] == 4500  # inclusive: full-price + cache read + cache write
    assert a["gen_ai.usage.output_tokens"] == 400
    assert a["gen_ai.usage.cache_read.input_tokens"] == 3000
    assert a["gen_ai.usage.cache_write.input_tokens"] == 500
    assert a["gen_ai.usage.reasoning.output_tokens"] == 150
    assert a["gen_ai.usage.cost.amount"] == float(event.cost)
    assert a["gen_ai.usage.cost.currency"] == "USD" and a["gen_ai.usage.cost.source"] == "local"
    assert a["gen_ai.response.time_to_first_chunk"] == 0.2
    assert a["user.id"] == "u1" and a["agentcost.feature"] == "search" and a["agentcost.event_id"] == event.id
    # the span runs from the call's real start to its real end
    assert span.end_time == int(event.ts * 1e9)
    assert span.end_time - span.start_time == int(1.25 * 1e9)

    common = {"gen_ai.request.model": "gpt-4o", "agentcost.feature": "search", "agentcost.agent_id": "planner"}
    for kind, value in (
        ("input", 4500),
        ("output", 400),
        ("cache_read", 3000),
        ("cache_write", 500),
        ("reasoning", 150),
    ):
        p = telemetry.point("gen_ai.client.token.usage", **{"gen_ai.token.type": kind}, **common)
        assert (p.count, p.sum) == (1, value)
    assert telemetry.point("gen_ai.usage.cost").sum == pytest.approx(float(event.cost))
    assert telemetry.point("gen_ai.client.operation.duration").sum == 1.25
    assert telemetry.point("gen_ai.client.operation.time_to_first_chunk").sum == 0.2
    assert telemetry.point("gen_ai.client.inference.usage.input_tokens").value == 4500
    assert telemetry.point("gen_ai.client.inference.usage.cache_write.input_tokens").value == 500
    assert telemetry.point("gen_ai.client.inference.usage.reasoning.output_tokens").value == 150
    assert telemetry.point("gen_ai.client.inference.operation.output_tokens").sum == 400
    # user ids stay off metrics unless asked for
    assert all("agentcost.user_id" not in p.attributes for p in telemetry.points("gen_ai.client.token.usage"))


def test_user_id_on_metrics_when_the_user_opts_in(telemetry):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    exporter = OTelExporter(meter_provider=MeterProvider(metric_readers=[reader]), spans=False, user_id_on_metrics=True)
    rec = CostRecorder("memory://", exporters=[exporter], user_id="u7")
    rec.record_outcome(_call(), Outcome(usage=Usage(input=10, output=5), latency_s=0.1))
    data = reader.get_metrics_data()
    names = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    (p,) = names["gen_ai.usage.cost"].data.data_points
    assert p.attributes["agentcost.user_id"] == "u7"


def test_a_failed_call_is_an_error_span_without_cost(telemetry):
    rec = CostRecorder("memory://", exporters=[telemetry.exporter])
    rec.record_outcome(_call(), Outcome(error=TimeoutError("slow"), latency_s=2.0))
    (span,) = telemetry.finished()
    assert span.status.status_code.name == "ERROR"
    assert "gen_ai.usage.cost.amount" not in span.attributes
    assert telemetry.point("gen_ai.client.operation.duration").attributes["error.type"] == "TimeoutError"
    assert telemetry.points("gen_ai.client.token.usage") == []


def test_model_spans_are_children_of_the_agent_span_with_its_totals(telemetry):
    rec = CostRecorder("memory://", exporters=[telemetry.exporter], agent_id="planner")
    with rec.exporters.agent_run("planner", rec.defaults) as run:
        e1, _ = rec.record_outcome(_call(), Outcome(usage=Usage(input=100, output=10), latency_s=0.1))
        rec.exporters.tool("search", 1_000, 2_000, attribution=rec.defaults)
        e2, _ = rec.record_outcome(_call(), Outcome(usage=Usage(input=200, output=20), latency_s=0.1))
        run.finish(rec.events)
    (agent,) = telemetry.finished("invoke_agent")
    assert agent.name == "invoke_agent planner"
    children = [s for s in telemetry.finished() if s.parent is not None]
    assert sorted(s.name for s in children) == ["chat gpt-4o", "chat gpt-4o", "execute_tool search"]
    assert all(s.parent.span_id == agent.context.span_id for s in children)
    assert all(s.context.trace_id == agent.context.trace_id for s in children)
    assert agent.attributes["agentcost.run.cost"] == pytest.approx(float(e1.cost + e2.cost))
    assert agent.attributes["agentcost.run.input_tokens"] == 300
    tool = telemetry.finished("execute_tool")[0]
    assert (tool.start_time, tool.end_time) == (1_000, 2_000)


def test_an_embedding_call_is_an_embeddings_span_and_its_cost_counts_in_the_run(telemetry):
    rec = CostRecorder("memory://", exporters=[telemetry.exporter], feature="rag", user_id="u1")
    with rec.exporters.agent_run("retriever", rec.defaults) as run:
        chat, _ = rec.record_outcome(_call(), Outcome(usage=Usage(input=100, output=10), latency_s=0.1))
        call = EmbeddingCall("text-embedding-3-small", texts=["refund policy", "shipping times"], provider="openai",
                             attribution=rec.defaults)  # fmt: skip
        emb, _ = rec.record_outcome(call, Outcome(usage=Usage(input=4000), latency_s=0.05))
        run.finish(rec.events)
    assert emb.kind == "embedding" and emb.cost is not None and emb.cost > 0

    (span,) = telemetry.finished("embeddings")
    a = span.attributes
    assert span.name == "embeddings text-embedding-3-small"
    assert a["gen_ai.operation.name"] == "embeddings" and a["gen_ai.request.model"] == "text-embedding-3-small"
    assert a["gen_ai.usage.input_tokens"] == 4000 and "gen_ai.usage.output_tokens" not in a
    assert a["gen_ai.usage.cost.amount"] == float(emb.cost)
    assert a["user.id"] == "u1" and a["agentcost.event_id"] == emb.id
    (agent,) = telemetry.finished("invoke_agent")
    assert span.parent.span_id == agent.context.span_id

    embeddings = {"gen_ai.operation.name": "embeddings"}
    assert telemetry.point("gen_ai.usage.cost", **embeddings).sum == pytest.approx(float(emb.cost))
    p = telemetry.point("gen_ai.client.token.usage", **embeddings, **{"gen_ai.token.type": "input"})
    assert (p.count, p.sum) == (1, 4000)
    usage = telemetry.points("gen_ai.client.token.usage")
    assert [
        p.attributes["gen_ai.token.type"] for p in usage if p.attributes["gen_ai.operation.name"] == "embeddings"
    ] == ["input"]  # an embedding has no output tokens
    assert telemetry.point("gen_ai.client.operation.duration", **embeddings).sum == 0.05
    assert sum(p.sum for p in telemetry.points("gen_ai.usage.cost")) == pytest.approx(float(chat.cost + emb.cost))
    assert agent.attributes["agentcost.run.cost"] == pytest.approx(float(chat.cost + emb.cost))


def test_an_exporter_that_raises_never_breaks_the_call_and_is_logged_once(telemetry, caplog):
    class Broken:
        def export(self, event, call, outcome):
            raise RuntimeError("exporter down")

    rec = CostRecorder("memory://", exporters=[Broken(), telemetry.exporter])
    with caplog.at_level(logging.ERROR, logger="agentcost"):
        for _ in range(3):
            rec.record_outcome(_call(), Outcome(usage=Usage(input=10, output=5), latency_s=0.1))
    assert len(rec.events) == 3 and rec.exporters.errors == 3
    assert len(telemetry.finished()) == 3  # the next exporter still ran
    assert sum("exporter down" in r.getMessage() for r in caplog.records) == 1  # rate-limited


def test_bad_exporters_fail_at_construction_and_none_cost_nothing():
    with pytest.raises(TypeError, match="export"):
        CostRecorder("memory://", exporters=[object()])
    with pytest.raises(TypeError, match="list"):
        CostRecorder("memory://", exporters=OTelExporter)
    assert CostRecorder("memory://", exporters=[]).exporters is None
    assert isinstance(CostRecorder("memory://", exporters=[OTelExporter()]).exporters, Exporters)
    with pytest.raises(TypeError):
        OTelExporter(spans="yes")


def test_the_global_providers_are_used_when_none_is_passed():
    # No provider set anywhere: the API's no-op providers; recording still works and nothing leaks.
    rec = CostRecorder("memory://", exporters=[OTelExporter()])
    rec.record_outcome(_call(), Outcome(usage=Usage(input=10, output=5), latency_s=0.1))
    assert rec.exporters.errors == 0 and len(rec.events) == 1


def test_a_routed_call_carries_its_tier_and_route_reason(telemetry):
    rec = CostRecorder("memory://", exporters=[telemetry.exporter])
    outcome = Outcome(usage=Usage(input=50, output=5), latency_s=0.1, tier="nano",
                      extra={"route_id": "r1", "route_reason": "short factual question"})  # fmt: skip
    rec.record_outcome(_call("gpt-4o-mini"), outcome)
    (span,) = telemetry.finished()
    assert span.attributes["agentcost.tier"] == "nano"
    assert span.attributes["agentcost.route.reason"] == "short factual question"
