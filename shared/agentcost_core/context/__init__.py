"""Context budgeting: keep each model call inside a token budget by priority, summarize old history
into a structured summary, and order the prompt stable → volatile so provider prompt caches hit."""

from __future__ import annotations

from .summary import KeyFact, StructuredSummary, Summarizer, parse_summary, summary_prompt
from .tiered import ContextBudgetError, ContextPlan, ContextReport, Item, TieredContext

__all__ = [
    "ContextBudgetError",
    "ContextPlan",
    "ContextReport",
    "Item",
    "KeyFact",
    "StructuredSummary",
    "Summarizer",
    "TieredContext",
    "parse_summary",
    "summary_prompt",
]
