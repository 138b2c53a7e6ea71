"""What every alert is: an :class:`Alert` (a budget threshold, a spend anomaly) delivered to sinks.

A sink is any callable taking an :class:`Alert` (a :class:`~agentcost_core.alerts.WebhookSink`, a
pager, a metrics counter); the default sink logs. A sink that raises is logged and skipped:
alerting never breaks a call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError

__all__ = ["SEVERITIES", "Alert", "AlertSink", "deliver", "log_alert", "sinks_of"]

logger = logging.getLogger("agentcost.alerts")

#: From mild to urgent: a budget's warning threshold is ``warning``, its limit ``error``, its
#: escalation threshold ``critical``; an anomaly is ``error`` (``critical`` when it trips the kill switch).
SEVERITIES = ("info", "warning", "error", "critical")
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """``kind`` says what happened (``budget.warning``, ``budget.exceeded``, ``budget.escalated``,
    ``anomaly.spike``, ``anomaly.burst``, ``anomaly.rate``, ``anomaly.user_budget``); ``value`` is
    what was observed and ``baseline`` what it is compared with (a limit, an average), in USD when
    the dimension is money; ``attribution`` names who spent it (``agent_id``, ``feature``,
    ``user_id`` …); ``at`` is the wall-clock time in epoch seconds."""

    kind: str
    severity: str
    message: str
    attribution: dict[str, Any] = field(default_factory=dict)
    value: Decimal | int | float | None = None
    baseline: Decimal | int | float | None = None
    at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ConfigurationError(f"Alert severity must be one of {SEVERITIES}, got {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (Decimals as strings)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "value": None if self.value is None else str(self.value),
            "baseline": None if self.baseline is None else str(self.baseline),
            "at": self.at,
            **{k: v for k, v in self.attribution.items() if v is not None},
        }


AlertSink = Callable[[Alert], Any]


def log_alert(alert: Alert) -> None:
    """The default sink: one line on the ``agentcost.alerts`` logger at the alert's severity
    (budget alerts log on ``agentcost.budgets``, as they always have)."""
    name = "agentcost.budgets" if alert.kind.startswith("budget.") else "agentcost.alerts"
    logging.getLogger(name).log(_LOG_LEVEL[alert.severity], "agentcost %s: %s", alert.kind, alert.message)


def sinks_of(alerts: AlertSink | Sequence[AlertSink] | None, *, what: str = "alerts") -> tuple[AlertSink, ...]:
    """The sinks an ``alerts=`` argument names: None is the logging sink, ``[]`` none at all."""
    if alerts is None:
        return (log_alert,)
    if callable(alerts):
        return (alerts,)
    if isinstance(alerts, (str, bytes)):
        raise ConfigurationError(f"{what}= takes callables (e.g. WebhookSink(url)), got the string {alerts!r}")
    sinks = tuple(alerts)
    for s in sinks:
        if not callable(s):
            raise ConfigurationError(f"{what}= takes callables, got {s!r}")
    return sinks


def deliver(alert: Alert, sinks: Sequence[AlertSink]) -> None:
    """Hand ``alert`` to every sink; a sink that raises is logged and the rest still get it."""
    for sink in sinks:
        try:
            sink(alert)
        except Exception as e:  # noqa: BLE001 - alerting never breaks a call
            logger.error("agentcost alert sink %r failed: %r", sink, e)
