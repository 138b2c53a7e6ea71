"""Budgets that cannot be overspent: limits per scope, reserve → settle / release, thresholds,
actions and alerts, over pluggable counter stores (in-process, SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

from ..halts import BudgetExceeded
from .alerts import AlertSink, BudgetAlert, log_alert
from .budget import ACTIONS, SCOPES, Budget, BudgetStatus, ScopeContext
from .enforcer import BudgetEnforcer, Reservation
from .stores import BudgetStoreUnavailable, CounterStore, MemoryStore, open_store

__all__ = [
    "ACTIONS",
    "SCOPES",
    "AlertSink",
    "Budget",
    "BudgetAlert",
    "BudgetEnforcer",
    "BudgetExceeded",
    "BudgetStatus",
    "BudgetStoreUnavailable",
    "CounterStore",
    "MemoryStore",
    "Reservation",
    "ScopeContext",
    "log_alert",
    "open_store",
]
