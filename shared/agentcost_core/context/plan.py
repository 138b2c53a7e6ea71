"""What a context budget works on and gives back: :class:`Item` (one message, framework-free),
:class:`ContextPlan` (the budgeted selection) and its :class:`ContextReport`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import AgentCostError
from .summary import StructuredSummary

__all__ = ["ContextBudgetError", "ContextPlan", "ContextReport", "Item"]


class ContextBudgetError(AgentCostError):
    """The protected messages alone (system prompt, pinned, current input, summary) exceed the
    token budget: nothing can be cut to make the call fit."""


@dataclass(slots=True, eq=False)
class Item:
    """A framework-free view of one message. ``ref`` is the framework's own message."""

    role: str  # system | user | assistant | tool
    text: str
    ref: Any = None
    name: str | None = None
    tool_call_ids: tuple[str, ...] = ()  # assistant: the tool calls it makes
    tool_call_id: str | None = None  # tool: the call it answers
    priority: str | None = None  # "pinned" (protected), "high", or "summary" (ours, skipped on reading)
    tokens: int = -1  # this message's tokens, framing included (set once by the context)
    clipped_text: str | None = None  # set on the copy the plan returns when a tool output is clipped

    def clipped(self, text: str) -> Item:
        return Item(self.role, self.text, self.ref, self.name, self.tool_call_ids, self.tool_call_id,
                    self.priority, self.tokens, text)  # fmt: skip


@dataclass
class ContextReport:
    """What one ``fit`` kept per tier and what it summarized, dropped or clipped."""

    budget: int
    total: int = 0
    protected: int = 0
    summary: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    full_history: int = 0  # what the whole history would have cost, unbudgeted
    summarized_turns: int = 0  # folded into the summary by this call
    dropped_turns: int = 0  # archived and dropped by this call (no summarizer)
    dropped_units: int = 0  # medium turns / steps left out of this call's view
    clipped_items: int = 0
    summary_calls: int = 0
    over_budget: bool = False  # protected alone exceeded the budget (on_overflow="warn")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ContextPlan:
    """The budgeted selection, in output order. ``n_stable`` leading items are the stable prefix
    (system, pinned, summary) where cache breakpoints belong."""

    items: list[Item]
    n_stable: int
    report: ContextReport
    summary: StructuredSummary | None = None
