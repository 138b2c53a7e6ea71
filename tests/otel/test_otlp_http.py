"""Once over the wire: OTelExporter → the SDK's OTLP/HTTP exporters → a local receiver
(http.server in a thread) that decodes the protobuf requests. No network beyond 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentcost_core import CostRecorder, Usage
from agentcost_core.attribution import Attribution
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.otel import OTelExporter


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _attrs(kvs) -> dict:
    out = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def test_spans_and_metrics_reach_an_otlp_http_receiver(receiver, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5)))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5),
                                           export_interval_millis=3_600_000)  # fmt: skip
    mp = MeterProvider(metric_readers=[reader])
    try:
        rec = CostRecorder("memory://", exporters=[OTelExporter(meter_provider=mp, tracer_provider=tp)])
        call = ModelCall("claude-sonnet-4-5", attribution=Attribution.of({"feature": "docs"}), provider="anthropic")
        usage = Usage(input=2000, cache_read=8000, cache_write_1h=1000, output=600)
        event, _ = rec.record_outcome(call, Outcome(usage=usage, model="claude-sonnet-4-5-20250929", latency_s=3.5))
        assert mp.force_flush(timeout_millis=10_000)
    finally:
        tp.shutdown()
        mp.shutdown()

    traces = [ExportTraceServiceRequest.FromString(b) for p, b in receiver.received if p == "/v1/traces"]
    (span,) = [s for t in traces for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]
    a = _attrs(span.attributes)
    assert span.name == "chat claude-sonnet-4-5"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.usage.input_tokens"] == 11000 and a["gen_ai.usage.cache_write.input_tokens"] == 1000
    assert a["gen_ai.usage.cost.amount"] == float(event.cost) and a["gen_ai.usage.cost.currency"] == "USD"
    assert span.end_time_unix_nano - span.start_time_unix_nano == 3_500_000_000

    metrics = [ExportMetricsServiceRequest.FromString(b) for p, b in receiver.received if p == "/v1/metrics"]
    found = {m.name: m for req in metrics for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    (cost,) = found["gen_ai.usage.cost"].histogram.data_points
    assert cost.sum == pytest.approx(float(event.cost)) and found["gen_ai.usage.cost"].unit == "USD"
    tokens = {
        _attrs(p.attributes)["gen_ai.token.type"]: p.sum
        for p in found["gen_ai.client.token.usage"].histogram.data_points
    }
    assert tokens == {"input": 11000, "output": 600, "cache_read": 8000, "cache_write": 1000}
    (written,) = found["gen_ai.client.inference.usage.cache_write.input_tokens"].sum.data_points
    assert written.as_int == 1000
