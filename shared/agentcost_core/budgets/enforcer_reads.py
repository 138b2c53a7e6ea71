"""What the router and the adapters ask a :class:`~.enforcer.BudgetEnforcer` without reserving
anything: whether a ``downgrade`` budget wants a cheaper tier, and what each budget has spent in a
call's scopes (read from the budgets' stores; the async forms read off the event loop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .budget import Budget, ScopeContext
from .notices import limits_of
from .off_loop import off_loop
from .stores.base import BudgetStoreUnavailable, read_counters, units_to_usd

__all__ = ["BudgetReads"]

_USD, _TOKENS, _CALLS, _TOOLS = range(4)


class BudgetReads:
    """The enforcer's read-only questions (a mixin of :class:`~.enforcer.BudgetEnforcer`)."""

    budgets: Sequence[Budget]
    clock: Callable[[], float]
    local: bool

    def downgrade_requested(self, ctx: ScopeContext) -> bool:
        """True when a ``downgrade`` budget of this call's scopes is at or above ``warn_at``
        (or its limit, without ``warn_at``): the router should pick a cheaper tier."""
        now = self.clock()
        for b in self.budgets:
            if b.on_exceed != "downgrade" or b.per == "request":
                continue
            key, _ = b.scope_key(ctx, now)
            try:
                c = read_counters(b.store, key, now)
            except BudgetStoreUnavailable:
                continue
            threshold = b.warn_at or 1.0
            for i, limit in enumerate(limits_of(b)):
                if limit and c.committed(i) / limit >= threshold:
                    return True
        return False

    def spent(self, ctx: ScopeContext, budget: Budget | str | None = None) -> dict[str, Any]:
        """What each budget (or one) has spent in this call's scopes: ``{name: {dimension: value}}``."""
        now = self.clock()
        out: dict[str, Any] = {}
        for b in self.budgets:
            if budget is not None and b is not budget and b.name != budget:
                continue
            if b.per == "request":
                continue
            key, _ = b.scope_key(ctx, now)
            c = read_counters(b.store, key, now)
            out[b.name] = {
                "usd": units_to_usd(c.spent[_USD]),
                "tokens": c.spent[_TOKENS],
                "model_calls": c.spent[_CALLS],
                "tool_calls": c.spent[_TOOLS],
                "held_usd": units_to_usd(c.held[_USD]),
            }
        return out

    async def adowngrade_requested(self, ctx: ScopeContext) -> bool:
        """:meth:`downgrade_requested` for async code (off the event loop when a store does I/O)."""
        if self.local:
            return self.downgrade_requested(ctx)
        return await off_loop(self.downgrade_requested, ctx)  # type: ignore[no-any-return]

    async def aspent(self, ctx: ScopeContext, budget: Budget | str | None = None) -> dict[str, Any]:
        """:meth:`spent` for async code (off the event loop when a store does I/O)."""
        if self.local:
            return self.spent(ctx, budget)
        return await off_loop(self.spent, ctx, budget)  # type: ignore[no-any-return]
