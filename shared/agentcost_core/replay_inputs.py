"""Recorded traffic from outside a ledger, as :class:`CostEvent` values :func:`~.replay.replay` reads:
a LangSmith run export and OpenTelemetry GenAI spans.

* :func:`langsmith_events` — a JSON list of LangSmith runs (``client.list_runs`` dumped, or the
  ``{"runs": [...]}`` of an export; JSON lines work too). ``llm`` runs become model calls, ``tool``
  runs tool calls; chains are left out. Usage comes from the message's ``usage_metadata`` in
  ``outputs`` (its web searches from the Responses API's content blocks or Anthropic's
  ``usage.server_tool_use`` in ``response_metadata``, priced at the model's fee per request), else from the run's ``prompt_tokens`` / ``completion_tokens`` and their details;
  the model from ``extra.invocation_params`` or ``ls_model_name``. Attribution from the run's
  metadata: ``session_id`` / ``thread_id`` / ``conversation_id``, ``user_id``, ``feature``,
  ``agent_id``, ``langgraph_node`` (or the run's name) as the step.
* :func:`otel_events` — OTLP JSON (``{"resourceSpans": ...}``, what the collector's file exporter
  and OTLP/HTTP JSON carry) or a list of spans as the Python SDK writes them (``span.to_json()``).
  Spans with ``gen_ai.usage.*`` tokens (or ``gen_ai.operation.name`` chat / text_completion /
  embeddings) become model calls, ``execute_tool`` spans tool calls. ``gen_ai.usage.input_tokens``
  counts every input token, cache reads and writes included (the conventions' rule); attribution
  from ``gen_ai.conversation.id``, ``user.id`` and the ``agentcost.*`` attributes.

Both read LangChain's ``usage_metadata`` shape through the core parser, and price every call with
the :class:`~agentcost_core.accountant.Accountant` (the call path's pricing) on its usage: a cost
recorded in the input is kept in ``extra["recorded_cost"]`` and used only for a model the catalog
does not price. A call with no usage is unpriced (cost unknown), never $0. Input that is not what
it claims to be raises :class:`~agentcost_core.errors.ConfigurationError` naming the run or span.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .accountant import Accountant
from .errors import ConfigurationError, UsageFormatError
from .events import CostEvent
from .parsers.anthropic import server_tools
from .parsers.langchain import usage_and_tier
from .parsers.openai import responses_server_tools
from .prices import PriceCatalog
from .usage import Usage

__all__ = ["langsmith_events", "otel_events"]

_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})


def _load(source: str | os.PathLike[str] | Any, what: str) -> Any:
    """Parsed JSON from a path (JSON, or JSON lines), or ``source`` itself when it is already data."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = Path(source)
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise ConfigurationError(f"cannot read the {what} {path}: {e}") from None
    try:
        return json.loads(text)
    except ValueError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise ConfigurationError(f"{path} is not JSON or JSON lines ({e})") from None


def _ts(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value)  # 3.11+ reads a trailing Z
        except ValueError:
            return None
        return dt.timestamp() if dt.tzinfo else dt.replace(tzinfo=UTC).timestamp()
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class _Pricer:
    def __init__(self, catalog: PriceCatalog | None) -> None:
        self.acc = Accountant(catalog)

    def event(self, model: str | None, usage: Usage | None, recorded: Decimal | None,
              server_tools: dict[str, int] | None = None, **kw: Any) -> CostEvent:  # fmt: skip
        """A model call's event, priced by the Accountant (the recorded cost only for a model it does
        not price); its server-side tool requests priced as the call path prices them (those without
        a fee are listed in ``extra["server_tools_unpriced"]``, not in the cost)."""
        cost = None
        price = self.acc.price(model)
        extra = dict(kw.get("extra") or {})
        if usage is not None and not kw.get("error"):
            cost = self.acc.ledger_cost(usage, model, service_tier=kw.get("service_tier"))
            if cost is None:
                cost = recorded
            elif server_tools and price is not None:
                fee, unpriced = self.acc.tool_fee(price, server_tools)
                cost += fee
                if unpriced:
                    extra["server_tools_unpriced"] = list(unpriced)
        if server_tools:
            extra["server_tool_requests"] = dict(server_tools)
        if recorded is not None:
            extra["recorded_cost"] = str(recorded)
        if extra:
            kw["extra"] = extra
        return CostEvent(model, usage or Usage(), cost, priced=cost is not None,
                         provider=kw.pop("provider", None) or (price.provider if price else None), **kw)  # fmt: skip


# --- LangSmith ------------------------------------------------------------------------------------
def _message_server_tools(message: Mapping[str, Any]) -> dict[str, int] | None:
    """The server-side tool requests of a serialized AI message: the Responses API's tool-call
    content blocks, or Anthropic's ``usage.server_tool_use`` in its ``response_metadata``."""
    metadata = message.get("response_metadata")
    usage = metadata.get("usage") if isinstance(metadata, Mapping) else None
    return responses_server_tools(message.get("content")) or server_tools(usage)


def _run_usage(run: Mapping[str, Any]) -> tuple[Usage | None, str | None, dict[str, int] | None]:
    outputs = run.get("outputs") or {}
    for gens in outputs.get("generations") or () if isinstance(outputs, Mapping) else ():
        for g in gens if isinstance(gens, list) else (gens,):
            msg = g.get("message") if isinstance(g, Mapping) else None
            msg = (msg.get("kwargs") or msg) if isinstance(msg, Mapping) else None
            um = msg.get("usage_metadata") if msg is not None else None
            if um:
                return (*usage_and_tier(um), _message_server_tools(msg))
    if run.get("prompt_tokens") is None and run.get("completion_tokens") is None:
        return None, None, None
    return (*usage_and_tier({
        "input_tokens": run.get("prompt_tokens") or 0,
        "output_tokens": run.get("completion_tokens") or 0,
        "input_token_details": run.get("prompt_token_details") or {},
        "output_token_details": run.get("completion_token_details") or {},
    }), None)  # fmt: skip


def _run_event(run: Mapping[str, Any], pricer: _Pricer) -> CostEvent | None:
    kind = run.get("run_type")
    if kind not in ("llm", "tool", "embedding"):
        return None
    extra = run.get("extra") or {}
    meta = {**(extra.get("metadata") or {}), **(run.get("metadata") or {})}
    params = extra.get("invocation_params") or {}
    start, end = _ts(run.get("start_time")), _ts(run.get("end_time"))
    attribution = {
        "session_id": _text(meta.get("session_id") or meta.get("thread_id") or meta.get("conversation_id")),
        "user_id": _text(meta.get("user_id")),
        "feature": _text(meta.get("feature") or meta.get("agentcost_feature")),
        "agent_id": _text(meta.get("agent_id")),
        "step": _text(meta.get("langgraph_node") or run.get("name")),
        "trace_id": _text(run.get("trace_id")),
        "span_id": _text(run.get("id")),
        "parent_id": _text(run.get("parent_run_id")),
        "error": _text(run.get("error")),
        "framework": "langsmith",
        "ts": start if start is not None else 0.0,
        "latency_s": None if start is None or end is None else max(end - start, 0.0),
    }
    if run.get("id") is not None:
        attribution["id"] = str(run["id"])
    if kind == "tool":
        return CostEvent(None, Usage(), Decimal(0), kind="tool", priced=True, **attribution)
    usage, tier, tools = _run_usage(run)
    model = _text(params.get("model") or params.get("model_name") or meta.get("ls_model_name"))
    return pricer.event(model, usage, _decimal(run.get("total_cost")), tools,
                        kind="llm" if kind == "llm" else "embedding",
                        provider=_text(meta.get("ls_provider")), service_tier=tier or _text(params.get("service_tier")),
                        **attribution)  # fmt: skip


def langsmith_events(
    source: str | os.PathLike[str] | Any, *, catalog: PriceCatalog | None = None
) -> Iterator[CostEvent]:
    """Events of a LangSmith run export (a path, or the parsed JSON), in time order."""
    data = _load(source, "LangSmith run export")
    runs = data.get("runs") if isinstance(data, Mapping) else data
    if not isinstance(runs, list):
        raise ConfigurationError('a LangSmith run export is a JSON list of runs (or {"runs": [...]})')
    pricer = _Pricer(catalog)
    events = []
    for i, run in enumerate(runs):
        if not isinstance(run, Mapping):
            raise ConfigurationError(f"LangSmith run #{i} is not an object")
        try:
            e = _run_event(run, pricer)
        except UsageFormatError as err:
            raise ConfigurationError(f"LangSmith run #{i} ({run.get('id')}): {err}") from None
        if e is not None:
            events.append(e)
    return iter(sorted(events, key=lambda e: e.ts))


# --- OpenTelemetry GenAI spans --------------------------------------------------------------------
def _otlp_value(v: Mapping[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])  # OTLP JSON writes 64-bit integers as strings
    if "arrayValue" in v:
        return [_otlp_value(x) for x in v["arrayValue"].get("values", ())]
    return None


def _spans(data: Any) -> Iterator[dict[str, Any]]:
    """Every span as {name, trace_id, span_id, parent_id, start, end, error, attributes}."""
    if isinstance(data, Mapping) and "resourceSpans" in data:
        for rs in data["resourceSpans"] or ():
            resource = {
                a["key"]: _otlp_value(a.get("value") or {}) for a in (rs.get("resource") or {}).get("attributes", ())
            }
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
                for s in ss.get("spans") or ():
                    attrs = {a["key"]: _otlp_value(a.get("value") or {}) for a in s.get("attributes", ())}
                    code = (s.get("status") or {}).get("code")
                    yield {"name": s.get("name"), "trace_id": s.get("traceId"), "span_id": s.get("spanId"),
                           "parent_id": s.get("parentSpanId") or None,
                           "start": int(s.get("startTimeUnixNano") or 0) / 1e9,
                           "end": int(s.get("endTimeUnixNano") or 0) / 1e9 or None,
                           "error": code in (2, "STATUS_CODE_ERROR"), "attributes": {**resource, **attrs}}  # fmt: skip
        return
    spans = data if isinstance(data, list) else None
    if spans is None:
        raise ConfigurationError('OTel input is OTLP JSON ({"resourceSpans": ...}) or a JSON list of spans')
    for s in spans:
        if not isinstance(s, Mapping):
            raise ConfigurationError("OTel input: every span must be an object")
        ctx = s.get("context") or {}
        yield {"name": s.get("name"), "trace_id": ctx.get("trace_id"), "span_id": ctx.get("span_id"),
               "parent_id": s.get("parent_id"), "start": _ts(s.get("start_time")) or 0.0, "end": _ts(s.get("end_time")),
               "error": (s.get("status") or {}).get("status_code") == "ERROR",
               "attributes": {**((s.get("resource") or {}).get("attributes") or {}), **(s.get("attributes") or {})}}  # fmt: skip


def _span_event(span: Mapping[str, Any], pricer: _Pricer) -> CostEvent | None:
    a = span["attributes"]
    op = a.get("gen_ai.operation.name")
    has_usage = "gen_ai.usage.input_tokens" in a or "gen_ai.usage.output_tokens" in a
    if op != "execute_tool" and op not in _MODEL_OPERATIONS and not has_usage:
        return None
    start, end = span["start"], span["end"]
    attribution = {
        "session_id": _text(a.get("gen_ai.conversation.id") or a.get("session.id")),
        "user_id": _text(a.get("user.id") or a.get("agentcost.user_id") or a.get("enduser.id")),
        "feature": _text(a.get("agentcost.feature")),
        "agent_id": _text(a.get("agentcost.agent_id") or a.get("gen_ai.agent.id")),
        "task_id": _text(a.get("agentcost.task_id")),
        "step": _text(a.get("agentcost.step")),
        "tier": _text(a.get("agentcost.tier")),
        "trace_id": _text(span["trace_id"]),
        "span_id": _text(span["span_id"]),
        "parent_id": _text(span["parent_id"]),
        "error": _text(a.get("error.type")) or ("error" if span["error"] else None),
        "framework": "otel",
        "ts": start,
        "latency_s": None if end is None else max(end - start, 0.0),
    }
    if op == "execute_tool":
        attribution["step"] = attribution["step"] or _text(a.get("gen_ai.tool.name"))
        return CostEvent(None, Usage(), Decimal(0), kind="tool", priced=True, **attribution)
    usage = None
    if has_usage:
        usage, _ = usage_and_tier({
            "input_tokens": a.get("gen_ai.usage.input_tokens") or 0,
            "output_tokens": a.get("gen_ai.usage.output_tokens") or 0,
            "input_token_details": {"cache_read": a.get("gen_ai.usage.cache_read.input_tokens") or 0,
                                    "cache_creation": a.get("gen_ai.usage.cache_write.input_tokens") or 0},
            "output_token_details": {"reasoning": a.get("gen_ai.usage.reasoning.output_tokens") or 0},
        })  # fmt: skip
    model = _text(a.get("gen_ai.response.model") or a.get("gen_ai.request.model"))
    return pricer.event(model, usage, _decimal(a.get("gen_ai.usage.cost.amount")),
                        kind="embedding" if op == "embeddings" else "llm",
                        provider=_text(a.get("gen_ai.provider.name") or a.get("gen_ai.system")),
                        requested_model=_text(a.get("gen_ai.request.model")),
                        service_tier=_text(a.get("agentcost.service_tier") or a.get("gen_ai.openai.request.service_tier")),
                        **attribution)  # fmt: skip


def otel_events(source: str | os.PathLike[str] | Any, *, catalog: PriceCatalog | None = None) -> Iterator[CostEvent]:
    """Events of OTel GenAI spans (a path, or the parsed JSON), in time order."""
    data = _load(source, "OTel span file")
    pricer = _Pricer(catalog)
    events = []
    for span in _spans(data):
        try:
            e = _span_event(span, pricer)
        except UsageFormatError as err:
            raise ConfigurationError(f"OTel span {span.get('name')!r} ({span.get('span_id')}): {err}") from None
        if e is not None:
            events.append(e)
    return iter(sorted(events, key=lambda e: e.ts))
