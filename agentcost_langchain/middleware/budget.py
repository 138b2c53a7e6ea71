"""``BudgetMiddleware``: budgets for a ``create_agent`` agent, with a graceful wrap-up.

Each model call reserves its worst case in ``wrap_model_call`` (prompt tokens counted from the
request + the model's ``max_tokens``) and settles the real usage after. When a ``wrap_up`` budget
refuses a call, the agent ends with a final AIMessage stating the best answer found so far and
why it stopped (``additional_kwargs["agentcost_termination_reason"] == "budget"``); a ``block``
budget raises :class:`BudgetExceeded` instead. ``tool_calls`` limits are enforced in
``wrap_tool_call``.
"""

from __future__ import annotations

from typing import Any

from agentcost_core.guards.run_guard import Controls

from ._base import GuardMiddleware

__all__ = ["BudgetMiddleware"]


class BudgetMiddleware(GuardMiddleware):
    """``BudgetMiddleware(budgets, *, ledger=None, alerts=None, default_max_tokens=4096, **attribution)``."""

    def __init__(self, budgets: Any, *, ledger: Any = None, **options: Any) -> None:
        attribution = {k: options.pop(k) for k in ("user_id", "session_id", "feature", "agent_id") if k in options}
        super().__init__(Controls(budgets=budgets, **options), ledger=ledger, **attribution)
