"""``create_agent`` middleware (needs ``langchain`` >= 1.0): budgets with a graceful wrap-up, stuck
detection with one nudge, a kill switch, per-tool circuit breakers, and per-call model routing. One middleware per
module; they share :mod:`._base`."""

try:
    import langchain.agents.middleware  # noqa: F401  (LangChain >= 1.0; not part of langchain-core)
except ImportError as e:  # a bare ModuleNotFoundError would not say what to install
    raise ImportError(
        "agentcost_langchain.middleware needs LangChain >= 1.0 (the `langchain` package, which provides "
        f'langchain.agents.middleware): pip install "agentcost-control[langchain]" ({e})',
        name=e.name,
    ) from e

from ._base import TERMINATION_KEY, GuardMiddleware, termination_of
from .budget import BudgetMiddleware
from .circuit_breaker import CircuitBreakerMiddleware
from .kill_switch import KillSwitchMiddleware
from .router import RouterMiddleware
from .stuck import StuckMiddleware

__all__ = [
    "TERMINATION_KEY",
    "BudgetMiddleware",
    "CircuitBreakerMiddleware",
    "GuardMiddleware",
    "KillSwitchMiddleware",
    "RouterMiddleware",
    "StuckMiddleware",
    "termination_of",
]
