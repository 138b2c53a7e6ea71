"""Per-model-call cost of OpenTelemetry export, side by side with OpenLLMetry's LangChain instrumentation.

    python tests/benchmarks/bench_otel.py [--quick]

The call of ``bench_langchain_callback.py`` (``model.invoke("hi", config=...)`` on a minimal
``BaseChatModel`` returning a prebuilt ``ChatResult`` with realistic usage), in one process, the
variants interleaved round by round (shuffled order each round):

  (a) no handler
  (b) ``CostCallbackHandler(ledger)`` — priced, attributed, enqueued for the SQLite ledger
  (c) the same with ``exporters=[OTelExporter(meter_provider, tracer_provider)]``: a ``chat`` span
      and the GenAI metrics per call
  (d) OpenLLMetry: ``opentelemetry-instrumentation-langchain``'s ``TraceloopCallbackHandler``, built
      as its ``LangchainInstrumentor`` builds it (its defaults: spans with prompt and completion
      content, token and duration metrics), no agentcost. The instrumentor injects that handler
      into every callback manager process-wide (and its ``uninstrument`` does not take it out
      again), so it is passed here like the others, through ``config``.

Both OTel variants use the real SDK with the same providers: a ``TracerProvider`` with a
``BatchSpanProcessor`` to an exporter that discards (the network is not measured) and a
``MeterProvider`` with an in-memory reader (collected off the clock).

Ratios (calling-thread CPU): the OTel export's added cost (c − b) over OpenLLMetry's (d − a), and
agentcost with OTel in all (c − a) over OpenLLMetry (d − a).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # first: the offline tiktoken cache
from bench_langchain_callback import PrebuiltChatModel
from langchain_core.callbacks import CallbackManager
from opentelemetry.instrumentation.langchain import __version__ as openllmetry_version
from opentelemetry.instrumentation.langchain.callback_handler import TraceloopCallbackHandler
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.semconv_ai import Meters

from agentcost_core import Ledger
from agentcost_core.otel import OTelExporter
from agentcost_langchain import CostCallbackHandler

A = "(a) no handler"
B = "(b) agentcost CostCallbackHandler"
C = "(c) (b) + OTelExporter"
D = "(d) OpenLLMetry's LangChain handler"


class Discard(SpanExporter):
    """Counts the spans it is given and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def _openllmetry(tp: TracerProvider, mp: MeterProvider) -> TraceloopCallbackHandler:
    """OpenLLMetry's handler with the instruments its ``LangchainInstrumentor._instrument`` makes."""
    meter = mp.get_meter("opentelemetry.instrumentation.langchain", openllmetry_version)
    handler = TraceloopCallbackHandler(
        tp.get_tracer("opentelemetry.instrumentation.langchain", openllmetry_version),
        meter.create_histogram(Meters.LLM_OPERATION_DURATION, unit="s", description="GenAI operation duration"),
        meter.create_histogram(Meters.LLM_TOKEN_USAGE, unit="token", description="Number of tokens used"),
    )
    handler._callback_manager = CallbackManager([])  # what the instrumentor's wrapper sets: a sync manager
    return handler


def main() -> int:
    quick = _bench.quick()
    n, rounds = (20, 100) if quick else (20, 600)
    model = PrebuiltChatModel()
    tmp = tempfile.mkdtemp(prefix="agentcost-bench-otel-")
    ledger = Ledger(f"sqlite:///{tmp}/ledger.db")
    sink = Discard()
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(sink, max_queue_size=100_000, max_export_batch_size=2_048))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    try:
        plain = CostCallbackHandler(ledger, feature="bench")
        exported = CostCallbackHandler(ledger, feature="bench", exporters=[OTelExporter(mp, tp)])
        calls = {B: 0, C: 0, D: 0}

        def run_with(handler: Any, name: str | None):  # type: ignore[no-untyped-def]
            cfg = {"callbacks": [handler]} if handler is not None else None
            invoke = model.invoke

            def run(k: int) -> None:
                if name is not None:
                    calls[name] += k
                for _ in range(k):
                    invoke("hi", config=cfg)

            return run

        variants = {
            A: run_with(None, None),
            B: run_with(plain, B),
            C: run_with(exported, C),
            D: run_with(_openllmetry(tp, mp), D),
        }

        def settle() -> None:
            ledger.flush()
            tp.force_flush()

        print(f"OpenTelemetry export per model call — {_bench.machine()}, {_bench.load()}")
        print(f"{rounds} rounds × {n} calls per variant, interleaved; spans batched to a discarding exporter; "
              f"opentelemetry-instrumentation-langchain {openllmetry_version}\n")  # fmt: skip
        samples = _bench.interleaved(variants, n=n, rounds=rounds, settle=settle)
        print(_bench.table(_bench.OVERHEAD_HEADERS, _bench.overhead_rows(samples, A)))

        cpu = samples["cpu"]
        print("\nratios, calling-thread CPU:")
        for label, fn in (
            ("median of per-round Δ", _bench.paired_overhead),
            ("p10 (noise-robust)", _bench.low_overhead),
        ):
            otel_added = fn(cpu, C, B)
            ours_all = fn(cpu, C, A)
            theirs = fn(cpu, D, A)
            print(f"  {label}: OTel export added {otel_added:.1f} µs, agentcost+OTel {ours_all:.1f} µs, "
                  f"OpenLLMetry {theirs:.1f} µs")  # fmt: skip
            if theirs > 0:
                print(f"    OTel export / OpenLLMetry          = {otel_added / theirs:.2f}")
                print(f"    agentcost + OTel / OpenLLMetry     = {ours_all / theirs:.2f}")

        # --- everything arrived ----------------------------------------------------------------
        settle()
        data = reader.get_metrics_data()
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        ours_spans = calls[C]  # the warm-up blocks included
        theirs_spans = calls[D]
        print(
            f"\nspans exported: {sink.spans} (agentcost {ours_spans}, OpenLLMetry {theirs_spans}); metrics: {sorted(names)}"
        )
        missing = {"gen_ai.client.token.usage", "gen_ai.usage.cost", "gen_ai.client.operation.duration"} - names
        if (
            missing
            or sink.spans != ours_spans + theirs_spans
            or exported.recorder.exporters.errors
            or exported.internal_errors
        ):
            print(f"ERROR: missing metrics {missing} or spans, or exporter errors", file=sys.stderr)
            return 1
        print(_bench.load())
        return 0
    finally:
        tp.shutdown()
        mp.shutdown()
        ledger.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
