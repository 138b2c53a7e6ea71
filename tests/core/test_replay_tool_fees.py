"""Replay re-prices a call's server-side tool requests (web searches) with its tokens: a recorded fee
is never reported as a saving, and a remap prices the searches at the new model's fee."""

from __future__ import annotations

from decimal import Decimal

from agentcost_core import PriceCatalog, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.replay import Remap, Scenario, Scope, replay

M = Decimal(1_000_000)
PRICES = {
    "models": {
        "searcher": {"provider": "test", "input": "3", "output": "15", "tool_fees": {"web_search": "0.01"}},
        "cheap-searcher": {"provider": "test", "input": "1", "output": "5", "tool_fees": {"web_search": "0.025"}},
        "no-search": {"provider": "test", "input": "1", "output": "5"},
    }
}
USAGE = Usage(input=1000, output=400)
TOKENS = (1000 * Decimal(3) + 400 * Decimal(15)) / M  # 0.009
FEES = 3 * Decimal("0.01")  # three searches


def catalog() -> PriceCatalog:
    return PriceCatalog.from_dict(PRICES)


def recorded():
    """A call with three web searches, recorded by the call path's accountant: $0.039."""
    event, _ = Accountant(catalog()).event(
        ModelCall("searcher"), Outcome(usage=USAGE, model="searcher", server_tools={"web_search": 3})
    )
    assert event.cost == TOKENS + FEES == Decimal("0.039")
    return [event]


def after(scenario: Scenario):
    return replay(recorded(), scenario, catalog=catalog()).total


def test_a_repriced_call_keeps_its_web_search_fee():
    for scenario in (
        Scenario(remaps=[Remap("searcher", "searcher")]),  # no change at all
        Scenario(prices=catalog(), prices_replace=True),  # the same catalog
        Scenario(cache_hit_rate=Decimal(0)),
    ):
        total = after(scenario)
        assert total.after.cost == total.before.cost == Decimal("0.039"), scenario.describe()
        assert total.delta == 0
    # a prompt delta changes the tokens only: the searches still cost $0.03
    total = after(Scenario(prompt_deltas=[(1, Scope())]))
    assert total.after.cost == TOKENS + 3 / M + FEES == Decimal("0.039003")


def test_a_remap_prices_the_searches_at_the_new_models_fee():
    total = after(Scenario(remaps=[Remap("searcher", "cheap-searcher")]))
    tokens = (1000 * Decimal(1) + 400 * Decimal(5)) / M  # 0.003
    assert total.after.cost == tokens + 3 * Decimal("0.025") == Decimal("0.078")
    assert total.after.unpriced_calls == 0


def test_a_remap_to_a_model_without_that_tools_fee_is_unpriced_not_cheaper():
    total = after(Scenario(remaps=[Remap("searcher", "no-search")]))
    assert total.after.unpriced_calls == 1 and total.after.cost == 0
    assert total.before.cost == Decimal("0.039")
