"""What every adapter's handler records through: the :class:`Accountant` prices a call once, the
recorder keeps the handler's events and totals and hands each event to the ledger. Framework
objects never reach this module."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import Any

from .accountant import PRICED_KINDS, Accountant, warn_unpriced_once
from .attribution import Attribution
from .call import EmbeddingCall, ModelCall, Outcome, describe_error
from .events import CostEvent
from .exporters import Exporters
from .ledger import Ledger
from .prices import PriceCatalog
from .prompt_log import PromptLogging
from .usage import Usage

__all__ = ["CostRecorder", "RecorderResults", "resolve_ledger", "warn_unpriced_once"]

logger = logging.getLogger("agentcost")
_ZERO = Decimal(0)


def resolve_ledger(ledger: Ledger | str | None) -> Ledger:
    """A :class:`Ledger` from a Ledger, a URL, or None (the default URL). For a file or server
    URL each caller gets its own reference to the process-wide ledger of that URL
    (:meth:`Ledger.shared`): every handler uses one writer, and closing one handler's ledger
    drops only its reference."""
    if isinstance(ledger, Ledger):
        return ledger
    if ledger is None or isinstance(ledger, str):
        if isinstance(ledger, str) and ledger.strip().lower().startswith("memory:"):
            return Ledger(ledger, sync=True)  # a list append needs no writer thread
        return Ledger.shared(ledger)
    raise TypeError(f"ledger must be a Ledger, a URL string or None, got {type(ledger).__name__}")


class CostRecorder:
    """Records calls for one handler through its :class:`Accountant`; keeps that handler's events
    (or, with ``keep_events=False``, running totals only) and sends every event to the ledger.
    ``log_prompts=True`` (or a :class:`~agentcost_core.prompt_log.PromptLogging` with redaction
    hooks) turns prompt logging on (see :mod:`agentcost_core.prompt_log`);
    ``exporters=[...]`` get every event after the ledger (see :mod:`agentcost_core.exporters`)."""

    def __init__(
        self,
        ledger: Ledger | str | None = None,
        *,
        catalog: PriceCatalog | None = None,
        accountant: Accountant | None = None,
        framework: str | None = None,
        keep_events: bool = True,
        log_prompts: bool | PromptLogging = False,
        exporters: Any = None,
        anomalies: Any = None,
        **attribution: str | None,
    ) -> None:
        #: Prompt logging's settings, or None when it is off (the default).
        self.prompt_logging = PromptLogging.of(log_prompts)
        self.defaults = Attribution.of(attribution)
        if accountant is not None and catalog is not None and accountant.catalog is not catalog:
            raise TypeError("pass either catalog= or accountant=, not both")
        self.accountant = accountant if accountant is not None else Accountant(catalog)
        self.ledger = resolve_ledger(ledger)
        self.framework = framework
        self.keep_events = keep_events
        #: Prompt logging (off by default): keep each call's prompt and response, provider error
        #: messages and tool arguments, redacted (see :mod:`agentcost_core.prompt_log`).
        self.log_prompts = self.prompt_logging is not None
        #: Where each recorded event goes besides the ledger (see :mod:`agentcost_core.exporters`);
        #: None when there are none.
        self.exporters = Exporters.of(exporters)
        self.events: list[CostEvent] = []
        self.internal_errors = 0
        self._lock = threading.Lock()
        self._total = _ZERO
        self._usage: dict[str, Usage] = {}
        #: Spend anomalies (:class:`~agentcost_core.alerts.SpendAnomalies`) fed every recorded event, or None.
        self.anomalies: Any = None
        if anomalies is not None:
            self.watch(anomalies)

    def watch(self, anomalies: Any) -> None:
        """Feed every event recorded from now on to ``anomalies`` (its baselines are read from this
        recorder's ledger unless it was given its own)."""
        if not callable(getattr(anomalies, "observe", None)):
            raise TypeError(f"anomalies= takes a SpendAnomalies, got {type(anomalies).__name__}")
        anomalies.attach(self.ledger)
        self.anomalies = anomalies

    @property
    def catalog(self) -> PriceCatalog:
        return self.accountant.catalog

    # --- totals -------------------------------------------------------------------------------
    @property
    def total_cost(self) -> Decimal:
        """Exact USD of the priced model and embedding calls: those in :attr:`events` (the list is
        the caller's to clear), or every call recorded when events are not kept."""
        if self.keep_events:
            return sum((e.cost for e in list(self.events) if e.kind in PRICED_KINDS and e.cost is not None), _ZERO)
        with self._lock:
            return self._total

    @property
    def usage_by_model(self) -> dict[str, Usage]:
        """Summed usage per served model (of :attr:`events` when they are kept)."""
        if not self.keep_events:
            with self._lock:
                return dict(self._usage)
        out: dict[str, Usage] = {}
        for e in list(self.events):
            if e.kind in PRICED_KINDS and e.model and e.usage:
                prev = out.get(e.model)
                out[e.model] = e.usage if prev is None else prev + e.usage
        return out

    def _keep(self, event: CostEvent, call: ModelCall | None = None, outcome: Outcome | None = None) -> None:
        if self.keep_events:
            self.events.append(event)
        elif event.kind in PRICED_KINDS:
            with self._lock:
                if event.model and event.usage:
                    prev = self._usage.get(event.model)
                    self._usage[event.model] = event.usage if prev is None else prev + event.usage
                if event.cost is not None:
                    self._total += event.cost
        self.ledger.record(event)
        if self.prompt_logging is not None and outcome is not None:
            self._log_prompt(event, call, outcome)
        if self.exporters is not None:
            self.exporters.event(event, call, outcome)
        if self.anomalies is not None:
            self.anomalies.observe(event)

    def _log_prompt(self, event: CostEvent, call: Any, outcome: Outcome) -> None:
        """Prompt logging: the call's redacted prompt and response to the ledger, and on the
        outcome for the exporters (``outcome.prompt``)."""
        settings = self.prompt_logging
        if not call.messages and not outcome.text and not outcome.tool_calls:
            return  # recorded by keywords (record()): no prompt to keep
        try:
            outcome.prompt = record = settings.record(event, call, outcome)  # type: ignore[union-attr]
            if settings.ledger:  # type: ignore[union-attr]
                self.ledger.record_prompt(record)
        except Exception as e:  # noqa: BLE001 - our fault (or the user's redact=): never the caller's problem
            outcome.prompt = None
            self.note_internal_error("prompt logging", e)

    # --- recording ----------------------------------------------------------------------------
    def record_outcome(self, call: ModelCall, outcome: Outcome, *, event_id: str | None = None) -> tuple[CostEvent, Decimal]:
        """Price one model call once and record it: (the event, what its budgets settle at)."""
        if call.attribution is not self.defaults:
            call.attribution = call.attribution.over(self.defaults)
        event, budget_cost = self.accountant.event(call, outcome, framework=self.framework, event_id=event_id,
                                                   log_prompts=self.log_prompts)  # fmt: skip
        self._keep(event, call, outcome)
        return event, budget_cost

    def record_route(
        self, route: dict[str, Any], call: ModelCall, *, event: bool = True
    ) -> tuple[str | None, dict[str, Any]]:
        """A router's decision for ``call``: recorded as its own ledger event (kind ``route``, parent =
        the call it chose) unless ``event=False`` (recorded already); returns the tier it chose and the
        keys that link the call's own event to the decision (for its ``extra``)."""
        if event:
            self.record(
                None, None, kind="route", step=call.step, trace_id=call.trace_id, parent_id=call.span_id,
                extra=dict(route), event_id=route.get("id"), tier=route.get("tier"), **call.attribution.as_dict(),
            )  # fmt: skip
        link = {"route_id": route.get("id"), "route_reason": route.get("reason"),
                "top_tier": route.get("top_tier"), "top_model": route.get("top_model")}  # fmt: skip
        return route.get("tier"), link

    def record(
        self,
        model: str | None,
        usage: Usage | None,
        *,
        kind: str = "llm",
        requested_model: str | None = None,
        provider: str | None = None,
        service_tier: str | None = None,
        estimated: bool = False,
        cache_hit: bool = False,
        saved: Decimal | None = None,
        error: BaseException | str | None = None,
        step: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_id: str | None = None,
        latency_s: float | None = None,
        extra: dict[str, Any] | None = None,
        event_id: str | None = None,
        tier: str | None = None,
        **attribution: str | None,
    ) -> CostEvent:
        """Record one event by keywords: a model call (``kind="llm"``) or an embedding call
        (``kind="embedding"``), priced through the accountant (``usage=None`` for a failed call), or
        another kind (route, tool, halt …). Another kind with ``cache_hit=True`` (a tool-result cache
        hit) costs $0 and keeps ``saved``."""
        a = Attribution.of(attribution).over(self.defaults)
        if kind in PRICED_KINDS and usage is not None:
            make = EmbeddingCall if kind == "embedding" else ModelCall
            call = make(requested_model or model, attribution=a, trace_id=trace_id, span_id=span_id,
                        parent_id=parent_id, step=step, provider=provider, service_tier=service_tier)  # fmt: skip
            outcome = Outcome(usage=usage, model=model, service_tier=service_tier, cache_hit=cache_hit, error=error,
                              latency_s=latency_s, extra=extra, tier=tier)  # fmt: skip
            event, _ = self.accountant.event(call, outcome, framework=self.framework, event_id=event_id,
                                             log_prompts=self.log_prompts)  # fmt: skip
            event.estimated = event.estimated or estimated
            self._keep(event, call, outcome)
            return event
        else:  # another kind of event, or a model call with nothing to price (a failure)
            event = CostEvent(
                model=model or requested_model, kind=kind, usage=usage or Usage(), requested_model=requested_model,
                provider=provider, service_tier=service_tier, step=step, trace_id=trace_id,
                error=describe_error(error, keep_message=self.log_prompts),
                span_id=span_id, parent_id=parent_id, latency_s=latency_s, extra=extra, framework=self.framework,
                tier=tier, **a.as_dict(), **({"id": event_id} if event_id else {}),
            )  # fmt: skip
            if cache_hit and kind != "llm":
                event.cache_hit, event.cost, event.priced = True, _ZERO, True
                event.saved = _ZERO if saved is None else saved
        self._keep(event)
        return event

    def note_internal_error(self, where: str, exc: BaseException) -> None:
        """Our own fault: log it with its traceback, count it, never raise into the user's run."""
        self.internal_errors += 1
        logger.error("agentcost internal error in %s: %r", where, exc, exc_info=exc)


class RecorderResults:
    """What every adapter's handler exposes, read from its ``recorder`` (a :class:`CostRecorder`)."""

    recorder: CostRecorder

    @property
    def ledger(self) -> Ledger:
        return self.recorder.ledger

    @property
    def events(self) -> list[CostEvent]:
        """This handler's events, in call order."""
        return self.recorder.events

    @property
    def total_cost(self) -> Decimal:
        """Exact USD of this handler's priced events (unpriced ones are counted separately)."""
        return self.recorder.total_cost

    @property
    def usage_by_model(self) -> dict[str, Usage]:
        return self.recorder.usage_by_model

    @property
    def unpriced_calls(self) -> int:
        return sum(1 for e in self.recorder.events if e.kind in PRICED_KINDS and not e.priced and not e.error)

    @property
    def internal_errors(self) -> int:
        return self.recorder.internal_errors

    def flush(self) -> None:
        """Store every event recorded so far in the ledger."""
        self.recorder.ledger.flush()
