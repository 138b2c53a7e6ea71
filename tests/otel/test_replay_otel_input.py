"""Replay reads the spans the real OpenTelemetry SDK exports for our calls — as OTLP JSON (the
protobuf encoding the OTLP exporters send, rendered as JSON) and as the SDK's own ``span.to_json()``
list — and gets back the ledger's usage, attribution and exact cost."""

from __future__ import annotations

import json
from decimal import Decimal

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from agentcost_core import CostRecorder, Usage
from agentcost_core.attribution import Attribution
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.replay import Remap, Scenario, replay
from agentcost_core.replay_inputs import otel_events


def _record(telemetry):
    rec = CostRecorder("memory://", exporters=[telemetry.exporter], feature="search")
    calls = [
        ("gpt-4o", "gpt-4o-2024-08-06", Usage(input=1000, cache_read=3000, output=400, reasoning=150), "s1", "plan"),
        ("gpt-4o-mini", "gpt-4o-mini", Usage(input=800, output=20), "s1", "classify"),
        ("gpt-4o", "gpt-4o", Usage(input=5000, output=300), "s2", "plan"),
    ]
    events = []
    for requested, served, usage, session, step in calls:
        call = ModelCall(requested, attribution=Attribution.of({"session_id": session}), step=step, provider="openai")
        event, _ = rec.record_outcome(call, Outcome(usage=usage, model=served, latency_s=0.5))
        events.append(event)
    return events


def _same(replayed, recorded):
    assert len(replayed) == len(recorded)
    for got, want in zip(sorted(replayed, key=lambda e: e.cost), sorted(recorded, key=lambda e: e.cost)):
        assert got.usage == want.usage and got.cost == want.cost and got.model == want.model
        assert (got.session_id, got.feature, got.step) == (want.session_id, want.feature, want.step)


def test_otlp_json_of_the_sdk_spans_replays_to_the_ledger_costs(telemetry, tmp_path):
    recorded = _record(telemetry)
    otlp = json_format.MessageToDict(encode_spans(telemetry.finished("chat")))
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(otlp))
    _same(list(otel_events(path)), recorded)
    r = replay(otel_events(path), Scenario(remaps=[Remap("gpt-4o", "gpt-4o-mini")]), by="session_id")
    rows = {row.key[0]: row for row in r.rows}
    assert rows["s1"].before.cost == recorded[0].cost + recorded[1].cost
    mini = CostRecorder("memory://").record("gpt-4o-mini", recorded[0].usage).cost
    assert rows["s1"].after.cost == mini + recorded[1].cost  # the dated gpt-4o call is remapped, exactly
    assert r.total.before.cost == sum((e.cost for e in recorded), Decimal(0))


def test_the_sdk_span_json_list_replays_too(telemetry):
    recorded = _record(telemetry)
    spans = [json.loads(s.to_json()) for s in telemetry.finished()]
    _same(list(otel_events(spans)), recorded)
