"""What-if replay: recompute recorded traffic under a change and compare the cost before and after,
per group (any rollup field) and in total, with p50 / p95 / p99 per call and per session
(``agentcost replay``).

A :class:`Scenario` holds the changes; each call (an ``llm`` or ``embedding`` event; tool events
keep their recorded cost) goes through them in this order:

1. ``prompt_deltas``: ± N prompt tokens per call (for a feature / step): added to the full-price
   input; a cut takes input first, then cache reads, then cache writes (never below zero).
2. ``context_cap``: prompt tokens above N are cut, in the same order.
3. ``cache_hit_rate``: that share of the prompt tokens not written to cache is read from cache.
4. ``remaps``: a model (or a router tier, matched on the event's tier) served by another model.
5. prices: a call changed by any of the above, or one whose model ``prices`` prices (a price file,
   or another catalog version, which prices every call), is priced by the
   :class:`~agentcost_core.accountant.Accountant` — the call path's pricing — on its new usage, at
   the catalog's current prices (not a dated price that applied when it ran), its server-side tool
   requests (``extra["server_tool_requests"]``: web searches) at the new model's fee per request
   (a model with no fee for one of them: the call is unpriced); any other call keeps its recorded cost.
6. ``session_cap``: calls are replayed in time order per session; the call that would take the
   session past the cap (at its new cost) and every later call of the session are stopped, as a
   hard budget would; :attr:`Replay.stopped` lists the sessions, what they cost until then and
   what the stop avoided.

"Before" is always the recorded cost. An unpriced call (cost unknown) is counted apart, never as $0.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .accountant import Accountant, server_tool_requests
from .errors import ConfigurationError
from .events import CostEvent
from .prices import PriceCatalog
from .prices.model_ids import candidates
from .rollup import GROUPABLE, percentile
from .usage import Usage

__all__ = ["Remap", "Replay", "ReplayRow", "Scenario", "Scope", "Side", "replay"]

_ZERO = Decimal(0)
#: Events replayed as model calls; tool events keep their recorded cost; other kinds (notices) are left out.
_MODEL_KINDS = frozenset({"llm", "embedding"})
#: The spellings a model id resolves through (cached: a replay asks once per call and remap).
_spellings = functools.lru_cache(maxsize=4096)(candidates)


@dataclass(frozen=True)
class Scope:
    """Which calls a change applies to: a feature and / or a step (None: any)."""

    feature: str | None = None
    step: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``feature``, ``feature/step`` or ``*/step``."""
        feature, _, step = text.partition("/")
        return cls(None if feature in ("", "*") else feature, step or None)

    def matches(self, e: CostEvent) -> bool:
        return (self.feature is None or e.feature == self.feature) and (self.step is None or e.step == self.step)

    def __str__(self) -> str:
        return "all calls" if self == Scope() else f"{self.feature or '*'}{'/' + self.step if self.step else ''}"


@dataclass(frozen=True)
class Remap:
    """Calls of model (or tier) ``source`` in ``scope`` served by model ``target``."""

    source: str
    target: str
    scope: Scope = Scope()

    def matches(self, e: CostEvent) -> bool:
        """``e`` is in scope and its tier is ``source``, or its model or requested model is ``source``
        under any spelling the catalog resolves (``gpt-4o`` matches ``gpt-4o-2024-08-06``, ``openai/gpt-4o``)."""
        if not self.scope.matches(e):
            return False
        source = self.source.lower()
        return e.tier == self.source or any(m and source in _spellings(m) for m in (e.model, e.requested_model))


@dataclass
class Scenario:
    """The changes a replay applies (see the module docstring for their order)."""

    prices: PriceCatalog | None = None
    #: True: ``prices`` is a whole catalog (another version) that reprices every call; False: a price
    #: file merged on the current catalog that reprices the calls of the models it names.
    prices_replace: bool = False
    remaps: Sequence[Remap] = ()
    prompt_deltas: Sequence[tuple[int, Scope]] = ()
    cache_hit_rate: Decimal | None = None
    context_cap: int | None = None
    session_cap: Decimal | None = None

    def __post_init__(self) -> None:
        if self.cache_hit_rate is not None:
            rate = _finite(self.cache_hit_rate)
            if rate is None or not 0 <= rate <= 1:
                raise ConfigurationError(f"cache_hit_rate must be between 0 and 1, got {self.cache_hit_rate}")
            self.cache_hit_rate = rate
        if self.context_cap is not None and (isinstance(self.context_cap, bool) or self.context_cap < 1):
            raise ConfigurationError(f"context_cap must be a positive number of tokens, got {self.context_cap!r}")
        if self.session_cap is not None:
            cap = _finite(self.session_cap)
            if cap is None or not cap > 0:
                raise ConfigurationError(f"session_cap must be a finite amount > 0 USD, got {self.session_cap}")
            self.session_cap = cap

    def describe(self) -> list[str]:
        out = []
        if self.prices is not None:
            out.append("prices: " + ("another catalog version" if self.prices_replace else "price file on top"))
        out += [f"remap {r.source} -> {r.target} ({r.scope})" for r in self.remaps]
        out += [f"prompt {n:+d} tokens per call ({s})" for n, s in self.prompt_deltas]
        if self.cache_hit_rate is not None:
            out.append(f"prompt-cache hit rate {self.cache_hit_rate}")
        if self.context_cap is not None:
            out.append(f"context cap {self.context_cap:,} prompt tokens")
        if self.session_cap is not None:
            out.append(f"session budget ${self.session_cap}")
        return out


def _finite(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number (NaN and infinity are not)."""
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@dataclass
class Side:
    """Calls, tokens and cost of a group before or after the change."""

    calls: int = 0
    unpriced_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: Decimal = _ZERO
    per_call: dict[str, Decimal | None] = field(default_factory=dict)
    per_session: dict[str, Decimal | None] = field(default_factory=dict)
    _costs: list[Decimal] = field(default_factory=list, repr=False)
    _sessions: dict[str, Decimal] = field(default_factory=dict, repr=False)

    def add(self, e: CostEvent, usage: Usage, cost: Decimal | None) -> None:
        self.calls += 1
        self.usage = self.usage + usage
        if cost is None:
            if not e.error:  # a failed call with no usage has no cost; anything else is unknown, not $0
                self.unpriced_calls += 1
            return
        self.cost += cost
        self._costs.append(cost)
        if e.session_id is not None:
            self._sessions[e.session_id] = self._sessions.get(e.session_id, _ZERO) + cost

    def finish(self) -> None:
        costs, sessions = sorted(self._costs), sorted(self._sessions.values())
        self.per_call = {f"p{q}": percentile(costs, q) for q in (50, 95, 99)}
        self.per_session = {f"p{q}": percentile(sessions, q) for q in (50, 95, 99)}

    def as_dict(self) -> dict[str, Any]:
        s = lambda d: None if d is None else str(d)
        return {
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "tokens": {**self.usage.as_dict(), "total": self.usage.total},
            "cost": str(self.cost),
            "per_call": {k: s(v) for k, v in self.per_call.items()},
            "per_session": {k: s(v) for k, v in self.per_session.items()},
        }


@dataclass
class ReplayRow:
    key: tuple[str | None, ...]
    before: Side = field(default_factory=Side)
    after: Side = field(default_factory=Side)

    @property
    def delta(self) -> Decimal:
        return self.after.cost - self.before.cost

    @property
    def change(self) -> Decimal | None:
        """after / before - 1, to 4 places (None when nothing was spent before)."""
        if not self.before.cost:
            return None
        return (self.after.cost / self.before.cost - 1).quantize(Decimal("0.0001"))

    @property
    def label(self) -> str:
        return " / ".join("—" if k is None else str(k) for k in self.key)

    def as_dict(self) -> dict[str, Any]:
        change = self.change
        return {"key": list(self.key), "before": self.before.as_dict(), "after": self.after.as_dict(),
                "delta": str(self.delta), "change": None if change is None else str(change)}  # fmt: skip


@dataclass
class Replay:
    by: tuple[str, ...]
    rows: list[ReplayRow]
    total: ReplayRow
    changes: list[str]
    #: Sessions a session budget would have stopped: id, calls run / stopped, cost until the stop,
    #: the recorded cost of the whole session and what the stop avoided (both at the new prices).
    stopped: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"by": list(self.by), "changes": self.changes, "rows": [r.as_dict() for r in self.rows],
                "total": self.total.as_dict(), "stopped_sessions": self.stopped}  # fmt: skip


def _cut(u: Usage, n: int) -> Usage:
    """``u`` with ``n`` prompt tokens fewer: from input, then cache reads, then cache writes."""
    buckets = [u.input, u.cache_read, u.cache_write_5m, u.cache_write_1h]
    for i, have in enumerate(buckets):
        take = min(have, n)
        buckets[i] -= take
        n -= take
    return Usage(*buckets, output=u.output, reasoning=u.reasoning)


class _Replayer:
    def __init__(self, scenario: Scenario, catalog: PriceCatalog) -> None:
        self.s = scenario
        if scenario.prices is None:
            after = catalog
        elif scenario.prices_replace:
            after = scenario.prices
        else:
            after = catalog.merged(scenario.prices)
        self.acc = Accountant(after)
        for r in scenario.remaps:
            if self.acc.price(r.target) is None:
                raise ConfigurationError(f"remap target {r.target!r} has no price in the catalog")

    def change(self, e: CostEvent) -> tuple[Usage, Decimal | None]:
        """The call's usage and cost under the scenario (before any session budget)."""
        if e.kind not in _MODEL_KINDS or e.cache_hit or e.error:
            return e.usage, e.cost  # a tool call, an LLM-cache hit ($0), a failed call: as recorded
        s, u, model = self.s, e.usage, e.model
        changed = False
        for n, scope in s.prompt_deltas:
            if n and scope.matches(e):
                u = (
                    _cut(u, -n)
                    if n < 0
                    else Usage(u.input + n, u.cache_read, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning)
                )
                changed = True
        if s.context_cap is not None and u.prompt_tokens > s.context_cap:
            u, changed = _cut(u, u.prompt_tokens - s.context_cap), True
        if s.cache_hit_rate is not None:
            readable = u.input + u.cache_read
            read = int(s.cache_hit_rate * readable)
            if read != u.cache_read:
                u = Usage(readable - read, read, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning)
                changed = True
        for r in s.remaps:
            if r.matches(e):
                model, changed = r.target, True
                break
        if not changed and not self._repriced(e):
            return u, e.cost
        requested = e.requested_model if model == e.model else None
        tools = server_tool_requests(e)  # billed per request on top of the tokens, at the new model's fees
        return u, self.acc.ledger_cost(u, model, service_tier=e.service_tier, requested=requested, server_tools=tools)

    def _repriced(self, e: CostEvent) -> bool:
        if self.s.prices is None:
            return False
        return self.s.prices_replace or self.s.prices.get(e.model or e.requested_model) is not None


def _key(e: CostEvent, name: str) -> str | None:
    if name in ("day", "hour", "month"):
        fmt = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00", "month": "%Y-%m"}[name]
        return datetime.fromtimestamp(e.ts, tz=UTC).strftime(fmt)
    return getattr(e, name)


def replay(
    events: Iterable[CostEvent],
    scenario: Scenario,
    *,
    by: str | Sequence[str] = "feature",
    catalog: PriceCatalog | None = None,
) -> Replay:
    """Recompute ``events`` (a ledger's ``iter_events()`` or :mod:`.replay_inputs`) under ``scenario``,
    grouped by ``by`` (any rollup field). ``catalog`` (default: the packaged one) prices changed calls;
    ``scenario.prices`` goes on top of it. Rows are sorted by the cost before, highest first."""
    fields_ = (by,) if isinstance(by, str) else tuple(by)
    for f in fields_:
        if f not in GROUPABLE:
            raise ConfigurationError(f"cannot group by {f!r}; choose from {sorted(GROUPABLE)}")
    r = _Replayer(scenario, catalog if catalog is not None else PriceCatalog.default())
    groups: dict[tuple[str | None, ...], ReplayRow] = {}
    total = ReplayRow(("total",))
    sessions: dict[str, list[CostEvent]] = defaultdict(list)
    for e in events:
        if e.kind not in _MODEL_KINDS and e.kind != "tool":
            continue
        key = tuple(_key(e, f) for f in fields_)
        row = groups.get(key) or groups.setdefault(key, ReplayRow(key))
        row.before.add(e, e.usage, e.cost)
        total.before.add(e, e.usage, e.cost)
        if scenario.session_cap is not None and e.session_id is not None:
            sessions[e.session_id].append(e)
            continue
        usage, cost = r.change(e)
        row.after.add(e, usage, cost)
        total.after.add(e, usage, cost)
    stopped = []
    for sid, calls in sessions.items():
        spent = avoided = _ZERO
        ran = 0
        halted = False
        for e in sorted(calls, key=lambda e: e.ts):
            usage, cost = r.change(e)
            halted = halted or spent + (cost or _ZERO) > scenario.session_cap  # type: ignore[operator]
            if halted:  # this call and every later one of the session do not run
                avoided += cost or _ZERO
                continue
            ran += 1
            spent += cost or _ZERO
            key = tuple(_key(e, f) for f in fields_)
            groups[key].after.add(e, usage, cost)
            total.after.add(e, usage, cost)
        if halted:
            stopped.append({"session_id": sid, "calls_run": ran, "calls_stopped": len(calls) - ran,
                            "cost_until_stop": str(spent), "cost_uncapped": str(spent + avoided),
                            "avoided": str(avoided)})  # fmt: skip
    rows = list(groups.values())
    for row in [*rows, total]:
        row.before.finish()
        row.after.finish()
    rows.sort(key=lambda x: (-x.before.cost, -x.before.calls, x.label))
    stopped.sort(key=lambda s: -Decimal(s["avoided"]))
    return Replay(fields_, rows, total, scenario.describe(), stopped)
