"""What a budget says when a threshold is crossed or a call is refused: a :class:`BudgetAlert` to
the alert sinks and a ``budget.warning`` / ``budget.exceeded`` / ``budget.escalated`` event in the
ledger; a refusal is also the :class:`BudgetExceeded` the caller raises. Thresholds escalate: warn
at ``warn_at`` (70%), act at the limit, escalate at ``escalate_at`` (120%, soft budgets only). Each
is announced once per scope key (which names the period), dimension and level — a jump past several
announces each of them, lowest first; they are computed on what was really spent, never on worst cases."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from ..alerts.alert import deliver
from ..events import CostEvent
from ..halts import BudgetExceeded
from .alerts import AlertSink, BudgetAlert
from .budget import Budget, ScopeContext
from .stores.base import DIMENSIONS, Claim, Counters, units_to_usd, usd_to_units

__all__ = ["BudgetNotices", "limits_of"]

logger = logging.getLogger("agentcost.budgets")
_USD = 0
_MAX_REMEMBERED = 100_000
_VERBS = {"warning": "reached its warning threshold", "exceeded": "is over its limit",
          "escalated": "is past its escalation threshold"}  # fmt: skip


def limits_of(b: Budget) -> tuple[int | None, int | None, int | None, int | None]:
    """A budget's limits in store units (USD as integer units of 1e-10)."""
    return (None if b.usd is None else usd_to_units(b.usd), b.tokens, b.model_calls, b.tool_calls)


def _ctx_dict(ctx: ScopeContext) -> dict[str, Any]:
    return {"trace_id": ctx.trace_id, "session_id": ctx.session_id, "user_id": ctx.user_id,
            "feature": ctx.feature, "agent_id": ctx.agent_id}  # fmt: skip


class BudgetNotices:
    """Alerts and ledger events of one enforcer (``ledger`` and ``framework`` are set by the
    adapter that attaches it)."""

    def __init__(self, sinks: tuple[AlertSink, ...], ledger: Any = None) -> None:
        self.sinks = sinks
        self.ledger = ledger
        self.framework: str | None = None
        self._sent: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def refusal(self, budget: Budget, key: str, dim: int | None, counters: Counters, requested: int,
                ctx: ScopeContext, *, model: str | None = None, elapsed: float | None = None) -> BudgetExceeded:  # fmt: skip
        """Announce a refused call and return the :class:`BudgetExceeded` to raise."""
        if dim is None:
            dimension, limit, committed = "seconds", budget.seconds, round(elapsed or 0.0, 3)
            fraction = (elapsed or 0.0) / budget.seconds if budget.seconds else 1.0
            detail = f"{committed} s elapsed of {limit} s"
        else:
            dimension = DIMENSIONS[dim]
            limit_v = limits_of(budget)[dim] or 0
            committed_v = counters.committed(dim)
            if dim == _USD:
                committed, asked = units_to_usd(committed_v), units_to_usd(requested)
                limit = budget.usd
                detail = f"${committed.normalize():f} committed + ${asked.normalize():f} for this call > ${limit}"
            else:
                limit, committed = limit_v, committed_v
                detail = f"{committed} committed + {requested} for this call > {limit}"
            fraction = float(committed_v + requested) / float(limit_v) if limit_v else 1.0
        action = budget.on_exceed
        message = (
            f"budget {budget.name!r} (per {budget.per}) exceeded on {dimension}: {detail}; "
            f"action {action}" + (f" — {model}" if model else "")
        )
        alert = BudgetAlert.of("exceeded", action, budget.name, budget.per, key, dimension, limit, committed,
                               fraction, message, _ctx_dict(ctx))  # fmt: skip
        self.emit(alert, ctx)
        return BudgetExceeded(message, details={**alert.as_dict(), "action": action})

    def after_settle(self, budgets: Sequence[Budget], claims: Sequence[Claim], counters: Sequence[Counters],
                     ctx: ScopeContext) -> None:  # fmt: skip
        """Thresholds on what was really spent (settled), never on reservations' worst cases."""
        for b, claim, c in zip(budgets, claims, counters):
            for i, limit in enumerate(claim.limits):
                if not limit:
                    continue
                used = c.spent[i]
                fraction = used / limit
                # every level crossed, lowest first (one call can cross several); a hard budget's
                # "exceeded" is its refusal, and only soft budgets escalate
                if b.warn_at is not None and fraction >= b.warn_at:
                    self.threshold(b, claim.key, i, limit, used, fraction, "warning", "notify", ctx)
                if not b.hard and fraction >= 1:
                    self.threshold(b, claim.key, i, limit, used, fraction, "exceeded", b.on_exceed, ctx)
                if not b.hard and b.escalate_at is not None and fraction >= b.escalate_at:
                    self.threshold(b, claim.key, i, limit, used, fraction, "escalated", b.on_exceed, ctx)

    def threshold(self, b: Budget, key: str, dim: int, limit: int, used: int, fraction: float, level: str,
                  action: str, ctx: ScopeContext) -> None:  # fmt: skip
        """Announce a crossed threshold once per scope key, dimension and level."""
        once = (key, DIMENSIONS[dim], level)
        with self._lock:
            if once in self._sent:
                return
            if len(self._sent) > _MAX_REMEMBERED:
                self._sent.clear()
            self._sent.add(once)
        if dim == _USD:
            shown_limit, shown_used = b.usd, units_to_usd(used)
            what = f"${shown_used.normalize():f} of ${shown_limit}"
        else:
            shown_limit, shown_used = limit, used
            what = f"{used} of {limit} {DIMENSIONS[dim]}"
        verb = _VERBS[level]
        message = f"budget {b.name!r} (per {b.per}) {verb}: {what} ({fraction:.0%}); action {action}"
        alert = BudgetAlert.of(level, action, b.name, b.per, key, DIMENSIONS[dim], shown_limit, shown_used, fraction,
                               message, _ctx_dict(ctx))  # fmt: skip
        self.emit(alert, ctx)

    def emit(self, alert: BudgetAlert, ctx: ScopeContext) -> None:
        deliver(alert, self.sinks)
        if self.ledger is None:
            return
        try:
            self.ledger.record(CostEvent(
                None, kind=f"budget.{alert.level}", user_id=ctx.user_id, session_id=ctx.session_id,
                feature=ctx.feature, agent_id=ctx.agent_id, trace_id=ctx.trace_id, framework=self.framework,
                extra=alert.as_dict(),
            ))  # fmt: skip
        except Exception as e:  # pragma: no cover - defensive
            logger.error("agentcost: could not record a budget event: %r", e)
