"""``CircuitBreakerMiddleware``: per-tool circuit breakers for a ``create_agent`` agent.

A failing tool answers the agent with its error (an error ToolMessage) and the breaker counts it;
after ``failure_threshold`` consecutive failures the circuit opens and the agent receives "tool
unavailable, try another approach" instead of a call, until a half-open probe succeeds.
"""

from __future__ import annotations

from typing import Any

from agentcost_core.guards.circuit_breaker import CircuitBreaker
from agentcost_core.guards.run_guard import Controls

from ._base import GuardMiddleware

__all__ = ["CircuitBreakerMiddleware"]


class CircuitBreakerMiddleware(GuardMiddleware):
    """``CircuitBreakerMiddleware(breaker=None, *, ledger=None)`` (default: 5 failures, 60 s)."""

    def __init__(self, breaker: CircuitBreaker | None = None, *, ledger: Any = None, **attribution: Any) -> None:
        super().__init__(Controls(breaker=breaker or CircuitBreaker()), ledger=ledger, **attribution)
