"""``Budget.status(**scope)``: where one scope stands, read from whichever store the budget uses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from agentcost_core import Budget, BudgetEnforcer, ConfigurationError, ScopeContext, Usage
from agentcost_core.prices import PriceCatalog
from budget_stores import ALL, opened

TOY = PriceCatalog.default().merged({"models": {"toy-1c": {"provider": "openai", "input": "10", "output": "10"}}})
CALL = Usage(input=500, output=500)
CENT = Decimal("0.01")


def call(e: BudgetEnforcer, ctx: ScopeContext):  # type: ignore[no-untyped-def]
    return e.reserve(ctx, model="toy-1c", input_tokens=500, max_tokens=500)


@pytest.mark.parametrize("kind", ALL)
async def test_status_reads_spent_and_held_of_one_scope(kind, request, tmp_path):
    with opened(kind, request, tmp_path) as (store, _):
        per_user = Budget(usd="0.05", per="user_day", store=store)
        per_run = Budget(model_calls=10, per="run", store=store)
        per_feature = Budget(usd=2, per="feature_month", store=store)
        e = BudgetEnforcer([per_user, per_run, per_feature], catalog=TOY, alerts=[])
        ann = ScopeContext(trace_id="r-1", user_id="ann", feature="chat")
        bob = ScopeContext(trace_id="r-2", user_id="bob", feature="chat")
        e.settle(call(e, ann), CALL, model="toy-1c")
        e.settle(call(e, ann), Usage(input=100, output=100), model="toy-1c")
        open_call = call(e, ann)
        e.settle(call(e, bob), CALL, model="toy-1c")

        ann_day = per_user.status(user_id="ann")
        assert (ann_day.spent, ann_day.held) == (Decimal("0.012"), CENT)
        assert (ann_day.limit, ann_day.remaining) == (Decimal("0.05"), Decimal("0.028"))
        assert (ann_day.tokens, ann_day.model_calls, ann_day.tool_calls) == (1_200, 2, 0)
        assert per_user.status(user_id="bob").spent == CENT
        assert per_user.status(user_id="nobody").spent == per_user.status(user_id="nobody").held == 0
        assert per_feature.status(feature="chat").spent == Decimal("0.022")
        run = per_run.status(run_id="r-1")
        assert (run.model_calls, run.limit, run.remaining) == (2, None, None)
        assert per_run.status(trace_id="r-1") == run
        assert (await per_user.astatus(user_id="ann")).as_dict()["held"] == CENT

        e.release(open_call)
        assert per_user.status(user_id="ann").held == 0


def test_status_refuses_unknown_keywords_and_request_budgets():
    budget = Budget(usd=1, per="user_day")
    with pytest.raises(ConfigurationError, match="unknown scope keyword.*user.*use user_id="):
        budget.status(user="ann")
    with pytest.raises(ConfigurationError, match="per='request'"):
        Budget(usd=1, per="request").status()
    with pytest.raises(ConfigurationError, match="trace_id= or run_id="):
        Budget(usd=1, per="run").status(trace_id="a", run_id="b")
