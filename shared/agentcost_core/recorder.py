"""The engine both adapters drive: price a call, build its :class:`CostEvent`, keep running
totals and hand the event to the ledger. Framework objects never reach this module."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from decimal import Decimal
from typing import Any

from .events import ATTRIBUTION_FIELDS, CostEvent, new_event_id, text_ids
from .ledger import Ledger
from .prices import PriceCatalog
from .prices.model_ids import canonical_provider, provider_hint
from .usage import Usage

__all__ = ["CostRecorder", "RecorderResults", "resolve_ledger"]

logger = logging.getLogger("agentcost")

_warned_unpriced: set[str] = set()
_warn_lock = threading.Lock()
_ZERO = Decimal(0)
_time = time.time
_new_event = object.__new__

#: CostEvent's fields, every one of which record_call sets (checked here at import).
_EVENT_FIELDS = (
    "model", "usage", "cost", "provider", "kind", "priced", "estimated", "cache_hit", "saved",
    "requested_model", "service_tier", "user_id", "session_id", "feature", "agent_id", "task_id",
    "step", "trace_id", "span_id", "parent_id", "latency_s", "error", "framework", "tier", "extra", "ts", "id",
)  # fmt: skip
if tuple(f.name for f in dataclasses.fields(CostEvent)) != _EVENT_FIELDS:  # not an assert: kept under python -O
    raise ImportError("CostEvent fields changed: update CostRecorder.record_call and _EVENT_FIELDS")


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


def warn_unpriced_once(model: str | None) -> None:
    key = model or "<no model name>"
    if key in _warned_unpriced:
        return
    with _warn_lock:
        if key in _warned_unpriced:
            return
        _warned_unpriced.add(key)
    logger.warning(
        "agentcost: no price for model %r; its calls are recorded as UNPRICED (cost None), not $0. "
        "Add it with PriceCatalog.default().merged({...}) or AGENTCOST_PRICES=path.json",
        key,
    )


class CostRecorder:
    """Prices and records calls for one handler; keeps that handler's events and totals."""

    def __init__(
        self,
        ledger: Ledger | str | None = None,
        *,
        catalog: PriceCatalog | None = None,
        framework: str | None = None,
        keep_events: bool = True,
        **attribution: str | None,
    ) -> None:
        unknown = set(attribution) - set(ATTRIBUTION_FIELDS)
        if unknown:
            raise TypeError(f"unknown attribution field(s) {sorted(unknown)}; use {list(ATTRIBUTION_FIELDS)}")
        self.ledger = resolve_ledger(ledger)
        self.catalog = catalog if catalog is not None else PriceCatalog.default()
        if not isinstance(self.catalog, PriceCatalog):
            raise TypeError(f"catalog must be a PriceCatalog, got {type(self.catalog).__name__}")
        self.framework = framework
        self.defaults: dict[str, str | None] = {k: attribution.get(k) for k in ATTRIBUTION_FIELDS}
        self.keep_events = keep_events
        self.events: list[CostEvent] = []
        self.internal_errors = 0
        self._lock = threading.Lock()
        # Running total: when events are kept it is summed on read from the events not yet summed
        # (a list append is the hot path's only shared write); otherwise it is kept as calls land.
        self._total = _ZERO
        # Cursors of the incremental passes: (events covered, the last of them).
        self._summed: tuple[int, Any] = (0, None)  # events in _total
        self._texted: tuple[int, Any] = (0, None)  # events whose ids are text
        self._usage_acc: dict[str, Usage] = {}  # only when events are not kept
        self._providers: dict[str | None, str | None] = {}

    def _resume(self, events: list[CostEvent], cursor: tuple[int, Any]) -> int:
        """Where an incremental pass over ``events`` picks up: after the event it last covered, if
        that event is still where it was; from the start if the owner cleared, cut or refilled it."""
        n, last = cursor
        if n and (n > len(events) or events[n - 1] is not last):
            return 0
        return n

    def settled_events(self) -> list[CostEvent]:
        """:attr:`events`, every one with its ids as text (see :func:`text_ids`)."""
        events = self.events
        with self._lock:
            n = len(events)
            for i in range(self._resume(events, self._texted), n):
                text_ids(events[i])
            self._texted = (n, events[n - 1] if n else None)
        return events

    @property
    def total_cost(self) -> Decimal:
        """Exact USD of the priced events recorded so far."""
        if not self.keep_events:
            return self._total
        with self._lock:
            events = self.events
            n = len(events)
            start = self._resume(events, self._summed)
            total = self._total if start else _ZERO
            for i in range(start, n):
                cost = events[i].cost
                if cost is not None:
                    total += cost
            self._total, self._summed = total, (n, events[n - 1] if n else None)
            return total

    @property
    def usage_by_model(self) -> dict[str, Usage]:
        """Summed usage per served model (computed on read, off the hot path)."""
        if not self.keep_events:
            return dict(self._usage_acc)
        out: dict[str, Usage] = {}
        for e in list(self.events):
            if e.model and e.usage:
                prev = out.get(e.model)
                out[e.model] = e.usage if prev is None else prev + e.usage
        return out

    def record(
        self,
        model: str | None,
        usage: Usage | None,
        *,
        requested_model: str | None = None,
        provider: str | None = None,
        service_tier: str | None = None,
        estimated: bool = False,
        cache_hit: bool = False,
        error: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        feature: str | None = None,
        agent_id: str | None = None,
        task_id: str | None = None,
        step: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_id: str | None = None,
        latency_s: float | None = None,
        extra: dict[str, Any] | None = None,
        kind: str = "llm",
        event_id: str | None = None,
        tier: str | None = None,
    ) -> CostEvent:
        """Price one call and record it. ``usage=None`` (a failed call) records no cost."""
        return self.record_call(
            model, usage, requested_model, provider, service_tier, estimated, cache_hit, error,
            user_id, session_id, feature, agent_id, task_id, step, trace_id, span_id, parent_id,
            latency_s, extra, kind, event_id, tier,
        )  # fmt: skip

    def record_call(
        self,
        model: str | None,
        usage: Usage | None,
        requested_model: str | None,
        provider: str | None,
        service_tier: str | None,
        estimated: bool,
        cache_hit: bool,
        error: str | None,
        user_id: str | None,
        session_id: str | None,
        feature: str | None,
        agent_id: str | None,
        task_id: str | None,
        step: str | None,
        trace_id: str | None,
        span_id: str | None,
        parent_id: str | None,
        latency_s: float | None,
        extra: dict[str, Any] | None,
        kind: str = "llm",
        event_id: str | None = None,
        tier: str | None = None,
        format_provider: str | None = None,
    ) -> CostEvent:
        """:meth:`record` with positional arguments, for the adapters' hot paths. ``trace_id``,
        ``span_id``, ``parent_id`` and ``event_id`` may be UUIDs: they become text when the event
        is stored or read (:func:`~agentcost_core.events.text_ids`). ``format_provider`` (the
        provider whose usage format the response had) names the provider when neither
        ``provider`` nor the catalog does."""
        d = self.defaults
        model = model or requested_model
        price = self.catalog.get(model)
        if price is None and requested_model and requested_model != model:
            price = self.catalog.get(requested_model)
        cost: Decimal | None = None
        saved: Decimal | None = None
        if usage is None:
            usage = Usage()
        elif price is not None:
            cost = price.cost(usage, service_tier)
        if cache_hit:
            saved, cost = cost, _ZERO
        elif price is None and error is None and kind == "llm":
            warn_unpriced_once(model)
        if provider is not None:
            try:
                provider = self._providers[provider]
            except KeyError:
                provider = self._providers.setdefault(provider, canonical_provider(provider))
        # Built slot by slot: calling the class would run its generated __init__ (27 parameters, a
        # frame of its own) through type.__call__; this runs once per model call. Every field is
        # set here (checked against the dataclass at import, see _EVENT_FIELDS).
        event = _new_event(CostEvent)
        event.model = model
        event.usage = usage
        event.cost = cost
        event.provider = provider or (
            price.provider if price is not None else format_provider or provider_hint(model or "")
        )
        event.kind = kind
        event.priced = cost is not None
        event.estimated = estimated
        event.cache_hit = cache_hit
        event.saved = saved
        event.requested_model = requested_model
        event.service_tier = service_tier
        event.user_id = user_id or d["user_id"]
        event.session_id = session_id or d["session_id"]
        event.feature = feature or d["feature"]
        event.agent_id = agent_id or d["agent_id"]
        event.task_id = task_id or d["task_id"]
        event.step = step
        event.trace_id = trace_id
        event.span_id = span_id
        event.parent_id = parent_id
        event.latency_s = latency_s
        event.error = error
        event.framework = self.framework
        event.tier = tier
        event.extra = extra
        event.ts = _time()
        event.id = event_id or new_event_id()
        if self.keep_events:
            self.events.append(event)  # atomic; total_cost and usage_by_model are derived on read
        else:
            with self._lock:
                if model:
                    prev = self._usage_acc.get(model)
                    self._usage_acc[model] = usage if prev is None else prev + usage
                if cost is not None:
                    self._total += cost
        self.ledger.record(event)
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
        return self.recorder.settled_events()

    @property
    def total_cost(self) -> Decimal:
        """Exact USD of this handler's priced events (unpriced ones are counted separately)."""
        return self.recorder.total_cost

    @property
    def usage_by_model(self) -> dict[str, Usage]:
        return self.recorder.usage_by_model

    @property
    def unpriced_calls(self) -> int:
        return sum(1 for e in self.recorder.events if e.kind == "llm" and not e.priced and not e.error)

    @property
    def internal_errors(self) -> int:
        return self.recorder.internal_errors

    def flush(self) -> None:
        """Store every event recorded so far in the ledger."""
        self.recorder.ledger.flush()
