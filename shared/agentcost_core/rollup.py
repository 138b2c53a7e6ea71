"""Roll events up by attribution fields and a time window: counts, tokens, exact dollars,
percentiles per call and per session, unpriced calls, cache savings, and a monthly projection."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from typing import Any, Iterable, Sequence

from .events import CostEvent
from .ledger.base import FILTERABLE
from .usage import Usage

__all__ = [
    "CALL_KINDS", "GROUPABLE", "NOTICE_KINDS", "Rollup", "RollupRow", "canonical_money", "notice_subject", "percentile",
    "rollup",
]  # fmt: skip

GROUPABLE = frozenset(FILTERABLE | {"day", "hour", "month"})
#: Event kinds that are billable calls; every other kind (guard notices) is counted apart.
CALL_KINDS = frozenset({"llm", "embedding", "tool"})
#: Guard notices a report lists (budget warnings and halts), in display order, with the ``extra`` field
#: that names what each one is about: the budget's name, the halt's or nudge's reason, the breaker's tool.
NOTICE_KINDS = {
    "budget.warning": "budget",
    "budget.exceeded": "budget",
    "budget.escalated": "budget",
    "halt": "reason",
    "guard.nudge": "reason",
    "guard.circuit_open": "tool",
}
_ZERO = Decimal(0)
_MONTH_S = Decimal(30 * 86400)


def percentile(sorted_values: Sequence[Decimal], q: float) -> Decimal | None:
    """Nearest-rank percentile of already sorted values (exact: returns one of them)."""
    if not sorted_values:
        return None
    rank = max(1, -(-int(q * 1000) * len(sorted_values) // 100_000))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def canonical_money(d: Decimal) -> Decimal:
    """``d`` without trailing zeros (whole dollars keep no exponent): the one form of a value computed
    by prices (savings), whether summed call by call (here) or from summed tokens (in the database)."""
    with localcontext() as ctx:
        ctx.prec = 60
        n = d.normalize()
        return n.quantize(Decimal(1)) if n.as_tuple().exponent > 0 else n  # type: ignore[operator]


def notice_subject(e: CostEvent) -> str:
    """What a guard notice is about: its budget's name, its halt / nudge reason or its tool ("" if unknown)."""
    value = (e.extra or {}).get(NOTICE_KINDS.get(e.kind, ""))
    return "" if value is None else str(value)


def _key_of(e: CostEvent, field_name: str) -> str | None:
    if field_name in ("day", "hour", "month"):
        dt = datetime.fromtimestamp(e.ts, tz=timezone.utc)
        return dt.strftime({"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00", "month": "%Y-%m"}[field_name])
    return getattr(e, field_name)


@dataclass
class RollupRow:
    key: tuple[str | None, ...]
    calls: int = 0
    priced_calls: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0
    error_calls: int = 0
    cache_hits: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: Decimal = _ZERO
    cache_savings: Decimal = _ZERO  # LLM-cache hits: the cost they avoided
    prompt_cache_savings: Decimal = _ZERO  # provider prompt caching: reads billed below input price
    routed_calls: int = 0  # calls a router sent to a tier
    routed_cost: Decimal = _ZERO
    routing_savings: Decimal = _ZERO  # routed calls: their cost on the policy's top tier minus what they cost
    per_call: dict[str, Decimal | None] = field(default_factory=dict)
    per_session: dict[str, Decimal | None] = field(default_factory=dict)
    sessions: int = 0
    unpriced_models: list[str] = field(default_factory=list)
    first_ts: float | None = None
    last_ts: float | None = None
    #: Guard events by kind (``budget.warning``, ``budget.exceeded``, ``halt`` ...), not counted as calls.
    notices: dict[str, int] = field(default_factory=dict)
    #: The same notices by (kind, subject): ``("budget.exceeded", "session-cap"): 2``; see :func:`notice_subject`.
    notice_subjects: dict[tuple[str, str], int] = field(default_factory=dict)
    _costs: list[Decimal] = field(default_factory=list, repr=False)
    _by_session: dict[str, Decimal] = field(default_factory=dict, repr=False)

    def add(self, e: CostEvent, prompt_cache_saving: Decimal | None, routing_saving: Decimal | None = None) -> None:
        if e.kind not in CALL_KINDS:  # budget warnings, halts, routing decisions: not calls
            self.notices[e.kind] = self.notices.get(e.kind, 0) + 1
            if e.kind in NOTICE_KINDS:
                key = (e.kind, notice_subject(e))
                self.notice_subjects[key] = self.notice_subjects.get(key, 0) + 1
            return
        self.calls += 1
        self.usage = self.usage + e.usage
        if e.cache_hit:
            self.cache_hits += 1
            if e.saved:
                self.cache_savings += e.saved
        if e.estimated:
            self.estimated_calls += 1
        if e.error:
            self.error_calls += 1
        if e.cost is None:
            if not e.cache_hit and not e.error:
                self.unpriced_calls += 1
                if e.model not in self.unpriced_models:
                    self.unpriced_models.append(e.model or "<unknown>")
        else:
            self.priced_calls += 1
            self.cost += e.cost
            self._costs.append(e.cost)
            if e.session_id is not None:
                self._by_session[e.session_id] = self._by_session.get(e.session_id, _ZERO) + e.cost
        if prompt_cache_saving:
            self.prompt_cache_savings += prompt_cache_saving
        if routing_saving is not None:
            self.routed_calls += 1
            self.routed_cost += e.cost or _ZERO
            self.routing_savings += routing_saving
        self.first_ts = e.ts if self.first_ts is None else min(self.first_ts, e.ts)
        self.last_ts = e.ts if self.last_ts is None else max(self.last_ts, e.ts)

    def finish(self) -> None:
        costs = sorted(self._costs)
        self.per_call = {f"p{q}": percentile(costs, q) for q in (50, 95, 99)}
        sess = sorted(self._by_session.values())
        self.sessions = len(sess)
        self.per_session = {f"p{q}": percentile(sess, q) for q in (50, 95, 99)}
        self.prompt_cache_savings = canonical_money(self.prompt_cache_savings)
        self.routing_savings = canonical_money(self.routing_savings)

    @property
    def cache_read_share(self) -> Decimal | None:
        """Cache reads / prompt tokens (input + cache reads + writes), to 4 places; None without prompt tokens."""
        prompt = self.usage.prompt_tokens
        if not prompt:
            return None
        return (Decimal(self.usage.cache_read) / Decimal(prompt)).quantize(Decimal("0.0001"))

    @property
    def label(self) -> str:
        return " / ".join("—" if k is None else str(k) for k in self.key)

    def as_dict(self) -> dict[str, Any]:
        s = lambda d: None if d is None else str(d)  # noqa: E731
        return {
            "key": list(self.key),
            "calls": self.calls,
            "priced_calls": self.priced_calls,
            "unpriced_calls": self.unpriced_calls,
            "unpriced_models": self.unpriced_models,
            "estimated_calls": self.estimated_calls,
            "error_calls": self.error_calls,
            "cache_hits": self.cache_hits,
            "tokens": {**self.usage.as_dict(), "total": self.usage.total},
            "cost": str(self.cost),
            "cache_savings": str(self.cache_savings),
            "prompt_cache_savings": str(self.prompt_cache_savings),
            "cache_read_share": s(self.cache_read_share),
            "routed_calls": self.routed_calls,
            "routed_cost": str(self.routed_cost),
            "routing_savings": str(self.routing_savings),
            "per_call": {k: s(v) for k, v in self.per_call.items()},
            "sessions": self.sessions,
            "per_session": {k: s(v) for k, v in self.per_session.items()},
            "notices": dict(self.notices),
            "notice_subjects": [
                {"kind": kind, "subject": subject, "count": n} for (kind, subject), n in self.notice_subjects.items()
            ],
        }


@dataclass
class Rollup:
    by: tuple[str, ...]
    rows: list[RollupRow]
    total: RollupRow
    since: float | None
    until: float | None

    @property
    def window_s(self) -> float:
        start = self.since if self.since is not None else self.total.first_ts
        end = self.until if self.until is not None else time.time()
        if start is None:
            return 0.0
        return max(end - start, 0.0)

    @property
    def projected_monthly(self) -> Decimal | None:
        """Spend over 30 days at the window's rate (None for an empty or instant window)."""
        w = self.window_s
        if w < 1 or not self.total.calls:
            return None
        return (self.total.cost * _MONTH_S / Decimal(repr(w))).quantize(Decimal("0.01"))

    def as_dict(self) -> dict[str, Any]:
        pm = self.projected_monthly
        return {
            "by": list(self.by),
            "since": self.since,
            "until": self.until,
            "window_s": self.window_s,
            "projected_monthly": None if pm is None else str(pm),
            "rows": [r.as_dict() for r in self.rows],
            "total": self.total.as_dict(),
        }


def rollup(
    events: Iterable[CostEvent],
    *,
    by: str | Sequence[str] = "feature",
    since: float | None = None,
    until: float | None = None,
    catalog: Any = None,
) -> Rollup:
    """Aggregate ``events`` grouped by ``by`` (attribution fields, ``model``, ``day``…).

    Rows are sorted by cost, highest first. ``catalog`` (default: the packaged one) is used to
    value prompt-cache savings: what cache reads would have cost at the full input price.
    """
    fields_ = (by,) if isinstance(by, str) else tuple(by)
    for f in fields_:
        if f not in GROUPABLE:
            raise ValueError(f"cannot group by {f!r}; choose from {sorted(GROUPABLE)}")
    if catalog is None:
        from .prices import PriceCatalog

        catalog = PriceCatalog.default()
    groups: dict[tuple[str | None, ...], RollupRow] = defaultdict(lambda: RollupRow(()))
    total = RollupRow(("total",))
    for e in events:
        if since is not None and e.ts < since:
            continue
        if until is not None and e.ts >= until:
            continue
        saving = None
        if e.usage.cache_read and e.cost is not None:
            price = catalog.get(e.model)
            if price is not None:
                p = price.prices_for(e.usage, e.service_tier)
                saving = e.usage.cache_read * (p.input - p.cache_read) / Decimal(1_000_000)
        routed = None
        top = (e.extra or {}).get("top_model") if e.tier is not None and e.kind == "llm" else None
        if top and e.cost is not None:  # what the same usage would have cost on the top tier
            top_cost = catalog.cost(top, e.usage, service_tier=e.service_tier)
            if top_cost is not None:
                routed = top_cost - e.cost
        key = tuple(_key_of(e, f) for f in fields_)
        row = groups[key]
        if not row.key:
            row.key = key
        row.add(e, saving, routed)
        total.add(e, saving, routed)
    rows = list(groups.values())
    for r in rows:
        r.finish()
    total.finish()
    rows.sort(key=lambda r: (-r.cost, -r.calls, r.label))
    return Rollup(fields_, rows, total, since, until)
