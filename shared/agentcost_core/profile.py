"""Where the tokens go: a profile of recorded traffic, as findings with a dollar figure each and the
control that addresses it (``agentcost profile``).

* **context growth** — prompt tokens by step index within sessions (the quadratic context curve:
  each step resends everything before it) and the share of session cost spent after step
  ``late_after``; addressed by memory (a context budget).
* **model choice** — calls on an expensive model or tier whose step kind (classify, extract,
  summarize …) or short output suggests a cheap model could do them, and the money a route to
  ``cheap_model`` would have saved on the same recorded usage and server-side tool requests (at its
  fees); addressed by routing.
* **runaway tail** — sessions that cost more than the p99 session, their share of spend and their
  loop signature (calls, the most repeated step and tool); addressed by budgets (a per-session cap)
  and stuck detection.
* **prompt cache** — prompt tokens resent within a session but billed at the full input price.
  The ledger keeps no prompt-prefix fingerprint, so this is an estimate from input-token
  repetition: each call is assumed to resend the previous call's prompt (same model) as its prefix,
  and the figure ignores cache-write premiums, so it is an upper bound; addressed by caching.

Every dollar figure is priced with :class:`~agentcost_core.accountant.Accountant` — the pricing the
call path uses — on the recorded usage; the recorded cost is used for what was spent.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .accountant import Accountant, server_tool_requests
from .errors import ConfigurationError
from .events import CostEvent
from .prices import PriceCatalog
from .rollup import CALL_KINDS, percentile
from .usage import Usage

__all__ = ["CHEAP_STEP_WORDS", "EXPENSIVE_TIERS", "Finding", "Profile", "StepPoint", "profile"]

_ZERO = Decimal(0)
#: Step names that suggest work a small model does well.
CHEAP_STEP_WORDS = (
    "classif", "route", "router", "intent", "extract", "summar", "title", "tag", "label", "format",
    "moderat", "detect", "translate", "rewrite", "grade", "check", "validat",
)  # fmt: skip
#: Router tiers that count as expensive.
EXPENSIVE_TIERS = frozenset({"frontier", "reasoning"})
#: Step indexes past this are shown together in the context curve.
CURVE_CAP = 100


@dataclass
class StepPoint:
    """Calls at one step index (1 = a session's first call) across sessions."""

    index: int
    calls: int = 0
    prompt_tokens: int = 0
    cost: Decimal = _ZERO

    @property
    def mean_prompt_tokens(self) -> int:
        return self.prompt_tokens // self.calls if self.calls else 0

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "mean_prompt_tokens": self.mean_prompt_tokens, "cost": str(self.cost)}  # fmt: skip


@dataclass
class Finding:
    """One place the money goes, with what it costs (``dollars``, meaning ``measure``) and the control."""

    name: str  # context_growth, model_choice, runaway_tail, prompt_cache
    title: str
    dollars: Decimal
    measure: str
    control: str  # memory, routing, budgets, caching
    advice: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "dollars": str(self.dollars), "measure": self.measure,
                "control": self.control, "advice": self.advice, "detail": self.detail}  # fmt: skip


@dataclass
class Profile:
    calls: int
    cost: Decimal
    sessions: int
    curve: list[StepPoint]
    findings: list[Finding]

    def finding(self, name: str) -> Finding:
        return next(f for f in self.findings if f.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "cost": str(self.cost), "sessions": self.sessions,
                "context_curve": [p.as_dict() for p in self.curve],
                "findings": [f.as_dict() for f in self.findings]}  # fmt: skip


def _share(part: Decimal, whole: Decimal) -> str | None:
    return None if not whole else str((part / whole).quantize(Decimal("0.0001")))


def _cheap_reason(e: CostEvent, short_output: int) -> str | None:
    step = (e.step or "").lower()
    for word in CHEAP_STEP_WORDS:
        if word in step:
            return f"step {e.step!r}"
    if e.usage.output <= short_output:
        return f"output <= {short_output} tokens"
    return None


class _Profiler:
    def __init__(self, acc: Accountant, *, cheap_model: str, late_after: int, short_output: int,
                 expensive_ratio: Decimal) -> None:  # fmt: skip
        self.acc = acc
        self.cheap_model = cheap_model
        self.late_after = late_after
        self.short_output = short_output
        cheap = acc.price(cheap_model)
        if cheap is None:
            raise ConfigurationError(f"cheap_model {cheap_model!r} has no price in the catalog")
        self.expensive_input = cheap.base.input * expensive_ratio
        self.calls = 0
        self.cost = _ZERO
        self.sessions: dict[str, list[CostEvent]] = defaultdict(list)
        self.route: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, e: CostEvent) -> None:
        if e.session_id is not None:
            self.sessions[e.session_id].append(e)
        if e.kind not in CALL_KINDS:
            return
        self.calls += 1
        if e.cost is not None:
            self.cost += e.cost
        self._model_choice(e)

    def _expensive(self, e: CostEvent) -> bool:
        if e.tier in EXPENSIVE_TIERS:
            return True
        price = self.acc.price(e.model, e.requested_model)
        return price is not None and price.base.input >= self.expensive_input

    def _model_choice(self, e: CostEvent) -> None:
        if e.kind != "llm" or e.cost is None or e.cache_hit or e.error or not self._expensive(e):
            return
        reason = _cheap_reason(e, self.short_output)
        if reason is None:
            return
        cheap = self.acc.ledger_cost(e.usage, self.cheap_model, server_tools=server_tool_requests(e))
        if cheap is None or cheap >= e.cost:
            return
        key = (e.feature, e.step, e.model, reason)
        row = self.route.setdefault(key, [0, _ZERO, _ZERO])
        row[0] += 1
        row[1] += e.cost
        row[2] += cheap

    # --- findings ---------------------------------------------------------------------------
    def finish(self) -> Profile:
        curve: dict[int, StepPoint] = {}
        late = session_total = _ZERO
        session_cost: dict[str, Decimal] = {}
        repeated_cost = _ZERO
        repeated_tokens = 0
        for sid, events in self.sessions.items():
            calls = sorted((e for e in events if e.kind == "llm"), key=lambda e: e.ts)
            spent = sum((e.cost for e in events if e.kind in CALL_KINDS and e.cost is not None), _ZERO)
            session_cost[sid] = spent
            prev: CostEvent | None = None
            for i, e in enumerate(calls, 1):
                point = curve.setdefault(min(i, CURVE_CAP), StepPoint(min(i, CURVE_CAP)))
                point.calls += 1
                point.prompt_tokens += e.usage.prompt_tokens
                if e.cost is not None:
                    point.cost += e.cost
                    session_total += e.cost
                    if i > self.late_after:
                        late += e.cost
                if prev is not None and prev.model == e.model and e.cost is not None and not e.cache_hit:
                    saving, tokens = self._cacheable(prev, e)
                    repeated_cost += saving
                    repeated_tokens += tokens
                prev = e
        findings = [
            self._context_finding(curve, late, session_total),
            self._route_finding(),
            self._tail_finding(session_cost),
            self._cache_finding(repeated_cost, repeated_tokens),
        ]
        findings.sort(key=lambda f: -f.dollars)
        return Profile(self.calls, self.cost, len(self.sessions), [curve[i] for i in sorted(curve)], findings)

    def _cacheable(self, prev: CostEvent, e: CostEvent) -> tuple[Decimal, int]:
        """What ``e`` would have cost less had the previous call's prompt been read from cache."""
        u = e.usage
        resent = min(prev.usage.prompt_tokens, u.prompt_tokens) - u.cache_read - u.cache_write
        moved = max(0, min(resent, u.input))
        if not moved:
            return _ZERO, 0
        cached = Usage(u.input - moved, u.cache_read + moved, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning)
        tools = server_tool_requests(e)  # the same searches either way: their fees are no saving
        after = self.acc.ledger_cost(cached, e.model, service_tier=e.service_tier, requested=e.requested_model,
                                     server_tools=tools)  # fmt: skip
        if after is None or after >= e.cost:  # type: ignore[operator]
            return _ZERO, 0
        return e.cost - after, moved  # type: ignore[operator]

    def _context_finding(self, curve: dict[int, StepPoint], late: Decimal, total: Decimal) -> Finding:
        first = curve.get(1)
        deepest = curve[max(curve)] if curve else None
        growth = None
        if first and deepest and first.mean_prompt_tokens:
            growth = str(
                (Decimal(deepest.mean_prompt_tokens) / Decimal(first.mean_prompt_tokens)).quantize(Decimal("0.1"))
            )
        return Finding(
            "context_growth",
            f"context growth: {_pct(late, total)} of session spend is in steps after step {self.late_after}",
            late,
            f"cost of session calls after step {self.late_after}",
            "memory",
            "cap input tokens with a context budget (tiered memory summarizes old history) so late steps "
            "stop resending the whole conversation",
            {
                "late_after": self.late_after,
                "late_cost": str(late),
                "session_cost": str(total),
                "late_share": _share(late, total),
                "growth_last_vs_first": growth,
            },
        )

    def _route_finding(self) -> Finding:
        rows = sorted(self.route.items(), key=lambda kv: -(kv[1][1] - kv[1][2]))
        saving = sum((cost - cheap for _, (_, cost, cheap) in rows), _ZERO)
        calls = sum(n for _, (n, _, _) in rows)
        return Finding(
            "model_choice",
            f"model choice: {calls} expensive-tier call(s) look like cheap-tier work",
            saving,
            f"saving had these calls gone to {self.cheap_model} (same recorded usage)",
            "routing",
            f"route these steps to a cheap tier ({self.cheap_model}) with a static or heuristic routing policy",
            {
                "cheap_model": self.cheap_model,
                "calls": calls,
                "groups": [
                    {
                        "feature": f,
                        "step": s,
                        "model": m,
                        "reason": r,
                        "calls": n,
                        "cost": str(c),
                        "cheap_cost": str(ch),
                        "saving": str(c - ch),
                    }
                    for (f, s, m, r), (n, c, ch) in rows
                ],
            },
        )

    def _tail_finding(self, session_cost: dict[str, Decimal]) -> Finding:
        costs = sorted(session_cost.values())
        p99 = percentile(costs, 99)
        tail = (
            []
            if p99 is None
            else sorted((s for s, c in session_cost.items() if c > p99), key=lambda s: -session_cost[s])
        )
        spent = sum((session_cost[s] for s in tail), _ZERO)
        capped = sum((session_cost[s] - p99 for s in tail), _ZERO) if p99 is not None else _ZERO
        return Finding(
            "runaway_tail",
            f"runaway tail: {len(tail)} session(s) above the p99 session cost hold {_pct(spent, self.cost)} of spend",
            spent,
            "cost of the sessions above p99",
            "budgets",
            f"a per-session budget at the p99 (${p99}) would have saved up to ${capped}; stuck detection halts "
            "the loops earlier",
            {
                "p99_session_cost": None if p99 is None else str(p99),
                "share_of_spend": _share(spent, self.cost),
                "saving_at_p99_cap": str(capped),
                "sessions": [self._signature(s, session_cost[s]) for s in tail],
            },
        )

    def _signature(self, sid: str, cost: Decimal) -> dict[str, Any]:
        events = self.sessions[sid]
        steps = Counter(e.step for e in events if e.kind == "llm" and e.step)
        # a tool call names its tool in extra["tool"] (else its step); a guard notice names the tool it is about
        tools = Counter(
            (e.extra or {}).get("tool") or (e.step or e.model if e.kind == "tool" else None) for e in events
        )
        tools.pop(None, None)
        top_step = steps.most_common(1)
        top_tool = tools.most_common(1)
        return {
            "session_id": sid, "cost": str(cost),
            "llm_calls": sum(1 for e in events if e.kind == "llm"),
            "tool_calls": sum(1 for e in events if e.kind == "tool"),
            "top_step": {"step": top_step[0][0], "count": top_step[0][1]} if top_step else None,
            "top_tool": {"tool": top_tool[0][0], "count": top_tool[0][1]} if top_tool else None,
            "halts": sum(1 for e in events if e.kind == "halt"),
        }  # fmt: skip

    def _cache_finding(self, saving: Decimal, tokens: int) -> Finding:
        return Finding(
            "prompt_cache",
            f"prompt cache: {tokens:,} resent prompt tokens billed at full input price",
            saving,
            "saving had the resent tokens been cache reads (estimate, see below)",
            "caching",
            "order context stable -> volatile and mark the stable prefix for caching (Anthropic cache_control); "
            "the ledger keeps no prefix fingerprint, so this assumes each call resends the previous call's "
            "prompt and ignores cache-write premiums (an upper bound)",
            {"resent_tokens": tokens, "basis": "input-token repetition per session"},
        )


def _pct(part: Decimal, whole: Decimal) -> str:
    return "—" if not whole else f"{(part * 100 / whole).quantize(Decimal('0.1'))}%"


def profile(
    events: Iterable[CostEvent],
    *,
    catalog: PriceCatalog | None = None,
    cheap_model: str = "gpt-4o-mini",
    late_after: int = 5,
    short_output: int = 64,
    expensive_ratio: Decimal | int = 5,
) -> Profile:
    """Profile ``events`` (a ledger's ``iter_events()``): four findings, costliest first.

    A call is on an expensive tier when its router tier is frontier / reasoning or its model's input
    price is at least ``expensive_ratio`` times ``cheap_model``'s; it looks like cheap work when its
    step names one (:data:`CHEAP_STEP_WORDS`) or its output is at most ``short_output`` tokens.
    """
    if late_after < 1 or short_output < 0:
        raise ConfigurationError("late_after must be >= 1 and short_output >= 0")
    p = _Profiler(Accountant(catalog), cheap_model=cheap_model, late_after=late_after, short_output=short_output,
                  expensive_ratio=Decimal(expensive_ratio))  # fmt: skip
    for e in events:
        p.add(e)
    return p.finish()
