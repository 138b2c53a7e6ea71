"""Contract: budget a call. Under a hard cap on every store, both adapters stop before the cap,
hold nothing afterwards, and the budget's spent equals what the ledger recorded."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from contract_drivers import MALFORMED, hand_cost

from agentcost_core import Budget, BudgetExceeded
from agentcost_core.halts import TerminationReason

# LlamaIndex workflows discover their steps with inspect.getmembers over pydantic objects, which warns.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CAP = Decimal("0.02")


def _ledger_cost(events: list[Any]) -> Decimal:
    return sum((e.cost for e in events if e.cost is not None), Decimal(0))


def test_a_hard_cap_is_never_exceeded_and_nothing_stays_held(adapter: Any, budget_store: Any) -> None:
    budget = Budget(usd=CAP, per="user_day", store=budget_store)
    result, events = adapter.guarded_run(budgets=budget, user_id="u-cap", turns=200, model="gpt-4o", max_tokens=256)

    assert result.termination_reason is TerminationReason.BUDGET
    assert isinstance(result.halt, BudgetExceeded)
    status = budget.status(user_id="u-cap")
    assert status.held == Decimal(0)
    assert status.spent == _ledger_cost(events) == result.cost
    assert Decimal(0) < status.spent <= CAP
    assert status.model_calls == len(events) >= 2
    assert all(e.priced and not e.estimated and e.user_id == "u-cap" for e in events)


def test_a_priority_tier_call_is_reserved_at_its_tier_price(adapter: Any, budget_store: Any) -> None:
    budget = Budget(usd=CAP, per="user_day", store=budget_store)
    result, events = adapter.guarded_run(budgets=budget, user_id="u-prio", turns=200, model="gpt-4o",
                                         max_tokens=256, service_tier="priority")  # fmt: skip

    assert result.termination_reason is TerminationReason.BUDGET
    status = budget.status(user_id="u-prio")
    assert status.held == Decimal(0)
    assert status.spent == _ledger_cost(events) <= CAP
    first = events[0]
    assert first.cost > hand_cost("gpt-4o", input=first.usage.input, output=first.usage.output)  # the tier's price


def test_a_run_within_its_budget_settles_exactly_what_it_recorded(adapter: Any, budget_store: Any) -> None:
    budget = Budget(usd="5", per="user_day", store=budget_store)
    result, events = adapter.guarded_run(budgets=budget, user_id="u-ok", turns=3, model="gpt-4o-mini", max_tokens=256)

    assert result.termination_reason is None
    assert len(events) == 4  # three tool calls and the answer
    status = budget.status(user_id="u-ok")
    assert status.held == Decimal(0) and status.spent == _ledger_cost(events) > 0
    assert status.remaining == Decimal(5) - status.spent


@pytest.mark.parametrize("usage", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_usage_under_a_budget_settles_an_estimate_and_holds_nothing(adapter: Any, usage: Any) -> None:
    from agentcost_core.budgets import MemoryStore

    budget = Budget(usd="1", per="user_day", store=MemoryStore())
    result, events = adapter.guarded_run(budgets=budget, user_id="u-bad", turns=1, model="gpt-4o", max_tokens=200,
                                         malformed_usage=usage)  # fmt: skip

    assert result.termination_reason is None  # the run went on
    assert len(events) == 2
    assert all(e.estimated and e.extra["usage_error"] and e.cost > 0 for e in events)
    status = budget.status(user_id="u-bad")
    assert status.held == Decimal(0) and status.spent == _ledger_cost(events)


def test_an_llm_cache_hit_is_charged_nothing_to_the_budget(adapter: Any, budget_store: Any) -> None:
    budget = Budget(usd="1", per="user_day", store=budget_store)
    paid, hit = adapter.same_call_twice_with_llm_cache(usage={"input": 1000, "output": 100}, budgets=budget,
                                                       user_id="u-cache")  # fmt: skip
    assert hit.cache_hit and hit.cost == Decimal(0)
    status = budget.status(user_id="u-cache")
    assert status.held == Decimal(0) and status.spent == paid.cost == hand_cost("gpt-4o", input=1000, output=100)
