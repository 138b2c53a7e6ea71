"""OpenTelemetry: every recorded model or embedding call as GenAI metrics and a span, with its exact cost.

``OTelExporter(meter_provider=None, tracer_provider=None)`` (the ``otel`` extra: only
``opentelemetry-api``) is passed as ``exporters=[...]`` wherever recording is configured; it uses
the providers given, else the global ones (set by the application, never by us).

Names follow the OpenTelemetry GenAI semantic conventions:

* metrics — ``gen_ai.client.token.usage`` (histogram, ``gen_ai.token.type`` = ``input`` /
  ``output``, and ``cache_read`` / ``cache_write`` / ``reasoning`` as extra types: subsets of input
  and output), ``gen_ai.client.operation.duration``, ``gen_ai.client.operation.time_to_first_chunk``
  (streams), the inference token instruments (``gen_ai.client.inference.usage.*`` counters and
  ``gen_ai.client.inference.operation.input_tokens`` / ``output_tokens`` histograms), and the cost
  histogram ``gen_ai.usage.cost`` in USD. Attributes: ``gen_ai.operation.name``,
  ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``, and the
  attribution ``agentcost.feature`` / ``agentcost.agent_id`` (``user_id`` only with
  ``user_id_on_metrics=True``: user ids are high-cardinality). An embedding call has the same
  metrics with ``gen_ai.operation.name`` = ``embeddings`` and input tokens only;
* spans — ``chat {model}`` per model call from its real start to its real end, with
  ``gen_ai.usage.input_tokens`` (every input token, cached included), ``output_tokens``,
  ``cache_read.input_tokens``, ``cache_write.input_tokens``, ``reasoning.output_tokens``,
  ``gen_ai.usage.cost.amount`` / ``.currency`` / ``.source`` (the open cost proposal of the
  GenAI conventions; ``local``: computed by agentcost), the tier and route reason;
  ``embeddings {model}`` per embedding call (input tokens and cost), ``execute_tool {tool}`` per
  tool call and ``invoke_agent {name}`` around a guarded run, whose model, embedding and tool spans
  are its children; its ``agentcost.run.cost`` includes the embeddings;
* events — with ``prompt_events=True`` and prompt logging on, ``gen_ai.client.inference.operation.details``
  on the ``chat`` span, with the redacted ``gen_ai.input.messages`` / ``gen_ai.output.messages``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from .accountant import PRICED_KINDS
from .attribution import Attribution
from .call import ModelCall, Outcome
from .errors import ConfigurationError
from .events import CostEvent

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - the otel extra is not installed
    otel_trace = None  # type: ignore[assignment]

__all__ = ["OTelExporter"]

_SCOPE = "agentcost"
#: The GenAI conventions' event carrying a call's input and output messages (opt-in: prompt logging).
PROMPT_EVENT = "gen_ai.client.inference.operation.details"
#: Bucket boundaries the conventions advise.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
COST_BUCKETS = (0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50)

#: Our provider names → the conventions' ``gen_ai.provider.name`` values.
_PROVIDERS = {
    "google": "gcp.gemini", "vertex": "gcp.vertex_ai", "bedrock": "aws.bedrock", "azure": "azure.ai.openai",
    "mistral": "mistral_ai", "mistralai": "mistral_ai", "xai": "x_ai", "x-ai": "x_ai", "moonshot": "moonshot_ai",
}  # fmt: skip


def provider_name(provider: str | None) -> str:
    """The conventions' provider name for ours (``google`` → ``gcp.gemini``); ``unknown`` if none."""
    if not provider:
        return "unknown"
    return _PROVIDERS.get(provider, provider)


#: Our event kinds → the conventions' ``gen_ai.operation.name``.
_OPERATIONS = {"llm": "chat", "embedding": "embeddings"}


class OTelExporter:
    """GenAI metrics and spans for every recorded model or embedding call (see the module's doc).

    ``metrics=False`` / ``spans=False`` turn one signal off; ``user_id_on_metrics=True`` adds the
    user id to metric attributes (spans always carry it when known). ``prompt_events=True`` adds
    each call's logged prompt and response to its ``chat`` span as a
    ``gen_ai.client.inference.operation.details`` event (``gen_ai.input.messages``,
    ``gen_ai.output.messages``, ``gen_ai.tool.definitions``), already redacted; only calls
    recorded with prompt logging on (``log_prompts=``) have one (see :mod:`agentcost_core.prompt_log`).
    """

    def __init__(
        self,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        *,
        metrics: bool = True,
        spans: bool = True,
        user_id_on_metrics: bool = False,
        prompt_events: bool = False,
    ) -> None:
        if otel_trace is None:  # pragma: no cover - the otel extra is not installed
            raise ConfigurationError("OTelExporter needs opentelemetry-api: pip install 'agentcost-control[otel]'")
        for name, flag in (("metrics", metrics), ("spans", spans), ("user_id_on_metrics", user_id_on_metrics),
                           ("prompt_events", prompt_events)):  # fmt: skip
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        from . import __version__

        self.user_id_on_metrics = user_id_on_metrics
        self.prompt_events = prompt_events
        self.tracer = None
        if spans:
            tp = tracer_provider if tracer_provider is not None else otel_trace.get_tracer_provider()
            self.tracer = tp.get_tracer(_SCOPE, __version__)
        self.meter = None
        if metrics:
            mp = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
            self.meter = meter = mp.get_meter(_SCOPE, __version__)
            hist = meter.create_histogram
            self.token_usage = hist("gen_ai.client.token.usage", unit="{token}",
                                    description="Number of input and output tokens used.",
                                    explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)  # fmt: skip
            self.duration = hist("gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
                                 explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)  # fmt: skip
            self.first_chunk = hist("gen_ai.client.operation.time_to_first_chunk", unit="s",
                                    description="Time to receive the first chunk of a streamed response.",
                                    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)  # fmt: skip
            self.cost = hist("gen_ai.usage.cost", unit="USD", description="Cost of GenAI operations, in USD.",
                             explicit_bucket_boundaries_advisory=COST_BUCKETS)  # fmt: skip
            self.op_input = hist("gen_ai.client.inference.operation.input_tokens", unit="{token}",
                                 description="Input tokens per inference operation, cached included.",
                                 explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)  # fmt: skip
            self.op_output = hist("gen_ai.client.inference.operation.output_tokens", unit="{token}",
                                  description="Output tokens per inference operation, reasoning included.",
                                  explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)  # fmt: skip
            counter = meter.create_counter
            self.usage_counters = {
                kind: counter(f"gen_ai.client.inference.usage.{kind}", unit="{token}", description=text)
                for kind, text in (
                    ("input_tokens", "Input tokens used, cached included."),
                    ("output_tokens", "Output tokens used, reasoning included."),
                    ("cache_read.input_tokens", "Input tokens served from a provider-managed cache."),
                    ("cache_write.input_tokens", "Input tokens written to a provider-managed cache."),
                    ("reasoning.output_tokens", "Output tokens used for reasoning."),
                )
            }

    def __repr__(self) -> str:
        return f"OTelExporter(metrics={self.meter is not None}, spans={self.tracer is not None})"

    # --- one model call -------------------------------------------------------------------------
    def export(self, event: CostEvent, call: ModelCall | None = None, outcome: Outcome | None = None) -> None:
        """The recorder's hook: a model or embedding call's metrics and span (other kinds are skipped)."""
        operation = _OPERATIONS.get(event.kind)
        if operation is None:
            return
        requested = event.requested_model or event.model
        common: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider_name(event.provider),
        }
        if requested:
            common["gen_ai.request.model"] = requested
        if event.model:
            common["gen_ai.response.model"] = event.model
        if event.error:
            common["error.type"] = event.error.split(":", 1)[0]
        first_chunk = outcome.first_chunk_s if outcome is not None else None
        if self.meter is not None:
            self._metrics(event, common, first_chunk)
        if self.tracer is not None:
            chat = operation == "chat"
            prompt = outcome.prompt if chat and self.prompt_events and outcome is not None else None
            self._span(event, common, first_chunk, prompt)

    def _metrics(self, event: CostEvent, common: dict[str, Any], first_chunk: float | None) -> None:
        attrs = dict(common)
        if event.feature:
            attrs["agentcost.feature"] = event.feature
        if event.agent_id:
            attrs["agentcost.agent_id"] = event.agent_id
        if self.user_id_on_metrics and event.user_id:
            attrs["agentcost.user_id"] = event.user_id
        if event.latency_s is not None:
            self.duration.record(event.latency_s, attrs)
        if first_chunk is not None:
            self.first_chunk.record(first_chunk, attrs)
        if event.cost is not None:
            self.cost.record(float(event.cost), attrs)
        u = event.usage
        if not u and event.error:
            return  # a failed call reported no usage
        prompt = u.prompt_tokens
        self.token_usage.record(prompt, {**attrs, "gen_ai.token.type": "input"})
        self.op_input.record(prompt, attrs)
        modal = {**attrs, "gen_ai.token.modality": "unknown"}  # providers do not split usage by modality here
        counters = self.usage_counters
        counters["input_tokens"].add(prompt, modal)
        if event.kind == "embedding":
            return  # an embedding has input tokens only
        self.token_usage.record(u.output, {**attrs, "gen_ai.token.type": "output"})
        for kind, value in (("cache_read", u.cache_read), ("cache_write", u.cache_write), ("reasoning", u.reasoning)):
            if value:
                self.token_usage.record(value, {**attrs, "gen_ai.token.type": kind})
        self.op_output.record(u.output, attrs)
        counters["output_tokens"].add(u.output, modal)
        if u.cache_read:
            counters["cache_read.input_tokens"].add(u.cache_read, modal)
        if u.cache_write:
            counters["cache_write.input_tokens"].add(u.cache_write, modal)
        if u.reasoning:
            counters["reasoning.output_tokens"].add(u.reasoning, modal)

    def _span(self, event: CostEvent, common: dict[str, Any], first_chunk: float | None, prompt: Any = None) -> None:
        u = event.usage
        attrs = dict(common)
        attrs["gen_ai.usage.input_tokens"] = u.prompt_tokens
        if event.kind != "embedding":
            attrs["gen_ai.usage.output_tokens"] = u.output
        if u.cache_read:
            attrs["gen_ai.usage.cache_read.input_tokens"] = u.cache_read
        if u.cache_write:
            attrs["gen_ai.usage.cache_write.input_tokens"] = u.cache_write
        if u.reasoning:
            attrs["gen_ai.usage.reasoning.output_tokens"] = u.reasoning
        if event.cost is not None:
            attrs["gen_ai.usage.cost.amount"] = float(event.cost)
            attrs["gen_ai.usage.cost.currency"] = "USD"
            attrs["gen_ai.usage.cost.source"] = "local"
        else:
            attrs["agentcost.priced"] = False
        if first_chunk is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = first_chunk
        if event.estimated:
            attrs["agentcost.estimated"] = True
        if event.cache_hit:
            attrs["agentcost.cache_hit"] = True
        if event.service_tier:
            attrs["agentcost.service_tier"] = event.service_tier
        if event.tier:
            attrs["agentcost.tier"] = event.tier
        extra = event.extra
        if extra and extra.get("route_reason"):
            attrs["agentcost.route.reason"] = str(extra["route_reason"])
        if event.step:
            attrs["agentcost.step"] = event.step
        attrs.update(_attribution_attrs(event))
        attrs["agentcost.event_id"] = str(event.id)
        end_ns = int(event.ts * 1e9)
        start_ns = end_ns - int(event.latency_s * 1e9) if event.latency_s is not None else end_ns
        operation = common["gen_ai.operation.name"]
        model = common.get("gen_ai.request.model")
        name = f"{operation} {model}" if model else operation
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs, start_time=start_ns)  # type: ignore[union-attr]
        if prompt is not None:
            details = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": prompt.input_messages,
                       "gen_ai.output.messages": prompt.output_messages}  # fmt: skip
            if prompt.tool_definitions:
                details["gen_ai.tool.definitions"] = prompt.tool_definitions
            span.add_event(PROMPT_EVENT, attributes=details, timestamp=end_ns)
        if event.error:
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=end_ns)

    # --- tools and agent runs -------------------------------------------------------------------
    def tool(self, name: str, start_ns: int, end_ns: int, *, error: BaseException | None = None,
             attribution: Attribution | None = None) -> None:  # fmt: skip
        """An ``execute_tool {name}`` span from the tool call's start to its end."""
        if self.tracer is None:
            return
        attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        if attribution is not None:
            attrs.update(_attribution_attrs(attribution))
        if error is not None:
            attrs["error.type"] = type(error).__qualname__
        span = self.tracer.start_span(f"execute_tool {name}", kind=SpanKind.INTERNAL, attributes=attrs,
                                      start_time=start_ns)  # fmt: skip
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
        span.end(end_time=end_ns)

    @contextmanager
    def agent_run(self, name: str, attribution: Attribution | None = None) -> Iterator[_AgentSpan]:
        """An ``invoke_agent {name}`` span, current for the run (its calls' spans are its children)."""
        if self.tracer is None:
            yield _AgentSpan(None)
            return
        attrs: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
        if attribution is not None:
            attrs.update(_attribution_attrs(attribution))
            if attribution.agent_id:
                attrs["gen_ai.agent.id"] = attribution.agent_id
        span = self.tracer.start_span(f"invoke_agent {name}", kind=SpanKind.INTERNAL, attributes=attrs)
        token = otel_context.attach(otel_trace.set_span_in_context(span))
        try:
            yield _AgentSpan(span)
        except GeneratorExit:  # a streamed run the consumer stopped reading: not a failure
            raise
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise
        finally:
            otel_context.detach(token)
            span.end()


class _AgentSpan:
    """The agent span's totals: set from the run's events when it finishes. The cost (model and
    embedding calls) is the run's own attribute (``agentcost.run.cost``), not
    ``gen_ai.usage.cost.amount``, which the conventions keep to inference spans so that no sum
    counts it twice."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def finish(self, events: Sequence[CostEvent], reason: Any = None) -> None:
        if self.span is None:
            return
        calls = [e for e in events if e.kind == "llm"]
        cost = sum((e.cost for e in events if e.kind in PRICED_KINDS and e.cost is not None), Decimal(0))
        self.span.set_attribute("agentcost.run.cost", float(cost))
        self.span.set_attribute("agentcost.run.model_calls", len(calls))
        self.span.set_attribute("agentcost.run.input_tokens", sum(e.usage.prompt_tokens for e in calls))
        self.span.set_attribute("agentcost.run.output_tokens", sum(e.usage.output for e in calls))
        if reason is not None:
            self.span.set_attribute("agentcost.termination_reason", str(getattr(reason, "value", reason)))


def _attribution_attrs(source: Any) -> dict[str, str]:
    """Span attributes of a call's attribution (an event or an :class:`Attribution`)."""
    out = {}
    for field, key in (("user_id", "user.id"), ("session_id", "gen_ai.conversation.id"), ("feature", "agentcost.feature"),
                       ("agent_id", "agentcost.agent_id"), ("task_id", "agentcost.task_id")):  # fmt: skip
        value = getattr(source, field, None)
        if value:
            out[key] = str(value)
    return out
