"""Guards that stop a misbehaving agent: stuck detection, the kill switch, per-tool circuit
breakers and the retry classifier. Each is framework-free; :class:`Controls` / :class:`RunGuard`
combine them with budgets for one run, and the adapters drive that around every model and tool
call."""

from __future__ import annotations

from .circuit_breaker import CircuitBreaker, CircuitOpen
from .kill_switch import KillSwitch
from .result import GuardedResult
from .retry import RetryAction, RetryDecision, RetryPolicy, classify
from .run_guard import Controls, RunGuard
from .stuck import StuckDetector, StuckMonitor, StuckVerdict

__all__ = [
    "CircuitBreaker",
    "CircuitOpen",
    "Controls",
    "GuardedResult",
    "KillSwitch",
    "RetryAction",
    "RetryDecision",
    "RetryPolicy",
    "RunGuard",
    "StuckDetector",
    "StuckMonitor",
    "StuckVerdict",
    "classify",
]
