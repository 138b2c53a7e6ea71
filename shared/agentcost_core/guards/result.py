"""What ``guard()`` returns in either framework: the outcome of a guarded run."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..events import CostEvent
from ..halts import AgentHalted, TerminationReason

__all__ = ["GuardedResult", "stop_text"]


def stop_text(halt: AgentHalted, best: str | None) -> str:
    """The agent's last word when a guard stops it: why it stopped and the best answer so far."""
    stated = f"I had to stop before finishing ({halt.reason}): {halt}"
    stated = stated if stated.endswith(".") else stated + "."
    return f"{stated} The best answer I found so far: {best}" if best else f"{stated} I found no answer yet."


@dataclass
class GuardedResult:
    """What a guarded run produced. ``output`` is the agent's own output when it finished (graceful
    stops included); after a hard stop it is the best partial answer (a string, or None when there
    was none). ``final_message`` is the framework's message stating why the run stopped."""

    output: Any
    termination_reason: TerminationReason | None
    cost: Decimal
    events: list[CostEvent] = field(default_factory=list)
    answer: str | None = None  # the final answer text (the agent's, or the best partial one)
    final_message: Any = None  # set when a guard stopped the run
    halt: AgentHalted | None = None
    nudges: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return self.termination_reason is not None
