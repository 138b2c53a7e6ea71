"""Budget alerts: the :class:`~agentcost_core.alerts.Alert` a budget sends when it crosses its
warning threshold (``warn_at``, 70% by default), its limit, or — for a soft budget — its escalation
threshold (``escalate_at``, 120% by default).

A sink is any callable taking an alert (:class:`~agentcost_core.alerts.WebhookSink`, a pager,
metrics). The default sink logs. A sink that raises is logged and skipped: alerting never breaks a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..alerts.alert import Alert, AlertSink, log_alert

__all__ = ["LEVEL_SEVERITY", "AlertSink", "BudgetAlert", "log_alert"]

#: A budget alert's level and its severity.
LEVEL_SEVERITY = {"warning": "warning", "exceeded": "error", "escalated": "critical"}


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetAlert(Alert):
    """The budget kind of :class:`Alert` (``kind`` is ``budget.<level>``, ``value`` the committed
    amount, ``baseline`` the limit). ``level`` is ``"warning"`` (crossed ``warn_at``),
    ``"exceeded"`` (a call did not fit, or a soft budget went over) or ``"escalated"`` (a soft
    budget crossed ``escalate_at``); ``action`` is what was done (``notify``, ``downgrade``,
    ``wrap_up``, ``block``)."""

    level: str
    action: str
    budget: str  # the budget's name
    per: str
    key: str
    dimension: str  # usd, tokens, model_calls, tool_calls, seconds
    limit: Decimal | int | float
    committed: Decimal | int | float  # spent + held (+ the refused request, for "exceeded")
    fraction: float

    @classmethod
    def of(cls, level: str, action: str, budget: str, per: str, key: str, dimension: str,
           limit: Decimal | float, committed: Decimal | float, fraction: float, message: str,
           context: dict[str, Any]) -> BudgetAlert:  # fmt: skip
        return cls(kind=f"budget.{level}", severity=LEVEL_SEVERITY[level], message=message, attribution=context,
                   value=committed, baseline=limit, level=level, action=action, budget=budget, per=per, key=key,
                   dimension=dimension, limit=limit, committed=committed, fraction=fraction)  # fmt: skip

    @property
    def context(self) -> dict[str, Any]:
        """The scope's attribution (``trace_id``, ``session_id``, ``user_id``, ``feature``, ``agent_id``)."""
        return self.attribution

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "level": self.level,
            "action": self.action,
            "budget": self.budget,
            "per": self.per,
            "key": self.key,
            "dimension": self.dimension,
            "limit": str(self.limit),
            "committed": str(self.committed),
            "fraction": round(self.fraction, 4),
            "message": self.message,
            **{k: v for k, v in self.attribution.items() if v is not None},
        }
