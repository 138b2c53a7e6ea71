"""guard(..., catalog=...) prices the budgets with the user's catalog, as it prices the ledger:
a house model the default catalog does not know runs under a small budget and settles at its
house price, the same number in the ledger and in the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent

from agentcost_core import Budget, Ledger, PriceCatalog
from agentcost_core.budgets import ScopeContext
from agentcost_llamaindex import guard
from agentcost_llamaindex.testing import ScriptedLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOUSE = "acme-house-llm-7"
HOUSE_PRICES = {HOUSE: {"provider": "acme", "input": "0.10", "output": "0.40"}}  # USD per 1M tokens


async def test_house_model_under_a_small_budget_settles_at_the_house_price() -> None:
    assert PriceCatalog.default().get(HOUSE) is None  # unknown to the default catalog
    catalog = PriceCatalog.default().merged(HOUSE_PRICES)
    llm = ScriptedLLM(model=HOUSE, script=["Paris."])  # no max_tokens: the default output cap is reserved
    agent = FunctionAgent(tools=[], llm=llm, streaming=False)
    ledger = Ledger("memory://", sync=True)
    budget = Budget(usd="0.01", per="user_day")
    guarded = guard(agent, budgets=budget, catalog=catalog, ledger=ledger, user_id="u1")

    result = await guarded.run("What is the capital of France?")

    assert result.termination_reason is None and result.answer == "Paris."
    [event] = result.events
    usage = event.usage
    house = (Decimal(usage.input) * Decimal("0.10") + Decimal(usage.output) * Decimal("0.40")) / 1_000_000
    assert event.model == HOUSE and event.cost == house > 0 and not event.estimated
    assert result.cost == house
    [status] = guarded.controls.enforcer.spent(ScopeContext(user_id="u1")).values()
    assert status["usd"] == house and status["held_usd"] == 0
    ledger.flush()
    assert [e.cost for e in ledger.events(kind="llm")] == [house]
