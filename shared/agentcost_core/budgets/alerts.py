"""Budget alerts: what is sent when a budget crosses its warning threshold or its limit.

A sink is any callable taking a :class:`BudgetAlert` (Slack webhook, pager, metrics). The default
sink logs. A sink that raises is logged and skipped: alerting never breaks a call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

__all__ = ["AlertSink", "BudgetAlert", "log_alert"]

logger = logging.getLogger("agentcost.budgets")


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """``level`` is ``"warning"`` (crossed ``warn_at``) or ``"exceeded"`` (a call did not fit, or a
    soft budget went over); ``action`` is what was done (``notify``, ``downgrade``, ``wrap_up``,
    ``block``)."""

    level: str
    action: str
    budget: str  # the budget's name
    per: str
    key: str
    dimension: str  # usd, tokens, model_calls, tool_calls, seconds
    limit: Decimal | int | float
    committed: Decimal | int | float  # spent + held (+ the refused request, for "exceeded")
    fraction: float
    message: str
    context: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
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
            **{k: v for k, v in self.context.items() if v is not None},
        }


AlertSink = Callable[[BudgetAlert], Any]


def log_alert(alert: BudgetAlert) -> None:
    """The default sink: a WARNING on the ``agentcost.budgets`` logger."""
    logger.warning("agentcost budget %s: %s", alert.level, alert.message)
