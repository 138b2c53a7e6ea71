"""The real OpenTelemetry SDK on the test's own providers (never the global ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentcost_core.otel import OTelExporter


@dataclass
class Telemetry:
    exporter: OTelExporter
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self, prefix: str = "") -> list[Any]:
        return [s for s in self.spans.get_finished_spans() if s.name.startswith(prefix)]

    def points(self, metric: str) -> list[Any]:
        """Every data point of ``metric`` collected so far (cumulative)."""
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        out.extend(m.data.data_points)
        return out

    def point(self, metric: str, **attrs: Any) -> Any:
        found = [p for p in self.points(metric) if all(p.attributes.get(k) == v for k, v in attrs.items())]
        assert len(found) == 1, (metric, attrs, [dict(p.attributes) for p in self.points(metric)])
        return found[0]


@pytest.fixture
def telemetry() -> Telemetry:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    yield Telemetry(OTelExporter(meter_provider=mp, tracer_provider=tp), spans, reader, tp)
    tp.shutdown()
    mp.shutdown()
