"""Why an agent stopped, and the exceptions that stop it on purpose.

Every deliberate halt (budget, kill switch, stuck agent, open circuit, timeout) raises an
:class:`AgentHalted` carrying a :class:`TerminationReason`; the adapters' ``guard()`` turns it
into a normal result with the best answer found so far. Internal faults of agentcost never
raise these: they are logged and counted.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from .errors import AgentCostError

__all__ = ["AgentHalted", "BudgetExceeded", "CallRefused", "TerminationReason", "passes_through"]


class TerminationReason(str, Enum):
    """Why a guarded agent stopped before finishing on its own."""

    MAX_ITERATIONS = "max_iterations"
    BUDGET = "budget"
    SIMILARITY_LOOP = "similarity_loop"
    REPEATED_TOOL = "repeated_tool"
    NO_PROGRESS = "no_progress"
    KILL_SWITCH = "kill_switch"
    CIRCUIT_OPEN = "circuit_open"
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"

    def __str__(self) -> str:  # "budget", not "TerminationReason.BUDGET", in messages and JSON
        return self.value


class AgentHalted(AgentCostError):
    """A guard stopped the agent on purpose.

    ``reason`` is the :class:`TerminationReason`; ``details`` holds what the guard saw (the budget
    and its numbers, the repeated tool, the kill-switch source ...); ``partial`` is the best
    answer found so far when the raiser knows one (``guard()`` fills it in otherwise).
    """

    def __init__(
        self,
        reason: TerminationReason | str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        partial: Any = None,
    ) -> None:
        self.reason = TerminationReason(reason)
        self.details = dict(details or {})
        self.partial = partial
        super().__init__(message)

    def __reduce__(self) -> Any:  # picklable across processes, keyword arguments included
        return (_rebuild, (type(self), self.reason.value, str(self), self.details, self.partial))


def _rebuild(cls: type[AgentHalted], reason: str, message: str, details: dict[str, Any], partial: Any) -> AgentHalted:
    err = cls.__new__(cls)
    AgentHalted.__init__(err, reason, message, details=details, partial=partial)
    return err


class BudgetExceeded(AgentHalted):
    """A hard budget refused a model or tool call (action ``block``), or its wrap-up could not
    be done gracefully. ``details`` names the budget, the scope key, the dimension, the limit,
    what was already committed and what the call asked for."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, partial: Any = None) -> None:
        super().__init__(TerminationReason.BUDGET, message, details=details, partial=partial)

    def __reduce__(self) -> Any:
        return (_rebuild_budget, (str(self), self.details, self.partial))


def _rebuild_budget(message: str, details: dict[str, Any], partial: Any) -> BudgetExceeded:
    return BudgetExceeded(message, details=details, partial=partial)


class CallRefused(AgentHalted):
    """A hard budget could not be checked because of an internal error of agentcost before the
    call (``Controls(on_internal_error="refuse")``, the default with hard budgets): the call is
    refused rather than let through unreserved. The cause is chained (``__cause__``)."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, partial: Any = None) -> None:
        super().__init__(TerminationReason.INTERNAL_ERROR, message, details=details, partial=partial)

    def __reduce__(self) -> Any:
        return (_rebuild_refused, (str(self), self.details, self.partial))


def _rebuild_refused(message: str, details: dict[str, Any], partial: Any) -> CallRefused:
    return CallRefused(message, details=details, partial=partial)


#: Control-flow exceptions of the frameworks (LangGraph's interrupts, ``Command`` to a parent
#: graph): they are how a graph pauses or jumps, so no catch of ours may swallow them.
_CONTROL_FLOW = ("GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand")


def passes_through(exc: BaseException) -> bool:
    """True for exceptions that are framework control flow, not errors (LangGraph's
    ``GraphBubbleUp`` family), and for cancellation: re-raise them untouched."""
    if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit
        return True
    return any(c.__name__ in _CONTROL_FLOW and c.__module__.startswith("langgraph") for c in type(exc).__mro__)
